"""Memory and start-up against history: the gateway's resident memory as orders pile up, and its
start-up time over a database of few or many finished orders; bare QuickFIX as the baseline.

    python -m load.bench_memory [--orders 1000000] [--sessions 4] [--seed N] [--work-dir DIR]

1. ``fixbridge run`` (HTTP on, SQLite in the work dir, venue depth far above the order size, so
   every order is acknowledged and filled at once) takes ``--orders`` marketable limit orders
   pipelined over ``--sessions`` sessions (:mod:`load.fastclient`); the RSS of its whole
   process tree (psutil) is printed at 0, 10 %, 25 %, 50 % and 100 % of the orders, with the
   audit log's entries then and the gateway's RSS less the bare acceptor's (QuickFIX's own
   FileStore index grows in both; the audit log's Merkle tree is in files, not memory).
2. The same orders through ``load.bare_acceptor --ack`` (QuickFIX alone, ER New then the fill,
   with the same FileStore and FileLog): its RSS at the same points, in the same run.
3. Start-up, process start to ``/ready`` 200: on an empty database; on the database the run
   left (its orders are today's: start-up reloads the day's ClOrdIDs, see README); and on that
   database with ``--seed`` more finished orders of earlier trading days written straight into
   SQLite (rows as the writer writes them; much faster than trading them).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil

from gateway.audit.keys import generate_signing_key
from gateway.audit.store import ENTRIES_FILE
from gateway.fix.front import free_loopback_port
from load.bare_acceptor import READY as BARE_READY
from load.fastclient import FastSession, OrderTemplate
from load.procs import start_ready, terminate

GATEWAY_READY = "fixbridge ready"
COMP_ID, SYMBOL, PRICE = "FIXBRIDGE", "BTC-PERP", "65000"
CHECKPOINTS = (0.0, 0.1, 0.25, 0.5, 1.0)
CHUNK = 5000  # orders per session per pipelined burst (bounds the client's own memory)
# the audit log's in-memory Merkle tree (otc.audit.merkle.MerkleTree): each entry's 32-byte leaf
# plus the perfect-subtree hashes above it (32 bytes per leaf on average)


def clients(n: int) -> list[str]:
    return [f"MEM{i}" for i in range(1, n + 1)]


def gateway_config(fix_port: int, http_port: int, data_dir: Path, names: list[str]) -> str:
    sessions = "".join(
        f'\n[[sessions]]\ncomp_id = "{c}"\nauth = "none"\nheartbeat_max = 600\n'
        "[sessions.throttle]\nreject_above = 10000000\nlogout_above = 10000000\n"
        for c in names
    )
    return f"""
[gateway]
comp_id = "{COMP_ID}"
fix_listen = "127.0.0.1:{fix_port}"
http_listen = "127.0.0.1:{http_port}"
data_dir = "{data_dir}"

[venue]
depth = "1000000000"
[venue.reference_prices]
"{SYMBOL}" = "{PRICE}"
{sessions}"""


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class Gateway:
    work: Path
    names: list[str]
    data: Path
    fix_port: int = field(default_factory=free_loopback_port)
    http_port: int = field(default_factory=free_loopback_port)

    def __post_init__(self) -> None:
        self.config = self.work / f"{self.data.name}.toml"
        self.config.write_text(gateway_config(self.fix_port, self.http_port, self.data, self.names))
        if not (self.data / "audit" / "signing_key.pem").exists():
            generate_signing_key(self.data / "audit")

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "gateway.cli", "run", "--config", str(self.config)]

    def start(self):
        return start_ready(
            "gateway", self.argv(), GATEWAY_READY, self.work / f"{self.data.name}.stderr"
        )

    def startup_seconds(self, limit: float = 600) -> float:
        """Process start to the first ``/ready`` 200; the process is stopped afterwards."""
        url = f"http://127.0.0.1:{self.http_port}/ready"
        with open(self.work / f"{self.data.name}.stderr", "ab") as err:
            started = time.monotonic()
            proc = psutil.Popen(self.argv(), stdout=err, stderr=err)
        try:
            while time.monotonic() - started < limit:
                try:
                    if httpx.get(url, timeout=1).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"gateway exited with {proc.returncode} during start-up")
                time.sleep(0.02)
            raise RuntimeError("gateway not ready in time")
        finally:
            terminate(proc, 30)


def start_bare(work: Path, names: list[str]):
    port = free_loopback_port()
    argv = [sys.executable, "-m", "load.bare_acceptor", "--port", str(port)]
    argv += ["--data-dir", str(work / "bare"), "--comp-id", COMP_ID, "--ack"]
    for name in names:
        argv += ["--client", name]
    return start_ready("bare QuickFIX", argv, BARE_READY, work / "bare.stderr"), port


def drive(sessions: list[FastSession], count: int, first: int, ers_per_order: int) -> None:
    """``count`` orders spread over ``sessions``, each pipelining its share at once."""
    errors: list[BaseException] = []

    def one(session: FastSession, start: int, n: int) -> None:
        template = OrderTemplate(session.sender, COMP_ID, SYMBOL, quantity="1", price=PRICE)
        try:
            for lo in range(0, n, CHUNK):
                ids = [b"M%d" % (start + i) for i in range(lo, min(n, lo + CHUNK))]
                session.pipeline(session.prebuild(template, ids), len(ids))
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    share, extra = divmod(count, len(sessions))
    threads, at = [], first
    for i, session in enumerate(sessions):
        n = share + (1 if i < extra else 0)
        threads.append(threading.Thread(target=one, args=(session, at, n)))
        at += n
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    n = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def rss_curve(
    pid: int, port: int, names: list[str], orders: int, ers: int, audit: Path | None = None
) -> tuple[list[int], list[int]]:
    """RSS after each checkpoint's share of ``orders``, and the audit log's entries then."""
    sessions = []
    for name in names:
        s = FastSession("127.0.0.1", port, name, COMP_ID, timeout=120)
        s.logon(heartbeat=600)
        sessions.append(s)
    curve, entries, done = [], [], 0
    try:
        for point in CHECKPOINTS:
            target = int(orders * point)
            if target > done:
                drive(sessions, target - done, done, ers)
                done = target
            time.sleep(1.0)  # the writer and the audit trail catch up
            curve.append(tree_rss(pid))
            entries.append(count_lines(audit / ENTRIES_FILE) if audit else 0)
    finally:
        for s in sessions:
            s.logout()
    return curve, entries


def seed_finished(database: Path, count: int, owner: str) -> None:
    """``count`` filled orders (and their ClOrdIDs) of earlier trading days, as the writer
    writes them, straight into SQLite."""
    day = datetime.now(UTC) - timedelta(days=3)
    at = day.replace(tzinfo=None).isoformat(" ", "microseconds")
    with sqlite3.connect(database) as db:
        for lo in range(0, count, 50_000):
            ids = range(lo, min(count, lo + 50_000))
            db.executemany(
                f"INSERT INTO orders VALUES ({', '.join('?' * 17)})",
                (
                    (f"S{i}", owner, f"seed-{i}", None, SYMBOL, "1", "2", "0", "1", PRICE)
                    + ("2", "1", PRICE, None, None, at, at)
                    for i in ids
                ),
            )
            db.executemany(
                "INSERT INTO clordids (owner, trading_day, cl_ord_id) VALUES (?, ?, ?)",
                ((owner, day.date().isoformat(), f"seed-{i}") for i in ids),
            )


def mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def run(orders: int, n_sessions: int, seed: int, work: Path) -> str:
    names = clients(n_sessions)
    out = [
        f"bench_memory: {orders:,} orders over {n_sessions} sessions "
        "(marketable, each acknowledged and filled)",
        "",
    ]
    bare_proc, bare_port = start_bare(work, names)
    try:
        bare, _ = rss_curve(bare_proc.pid, bare_port, names, orders, 2)
    finally:
        terminate(bare_proc, 20)
    gw = Gateway(work, names, work / "gateway")
    proc = gw.start()
    try:
        gateway, entries = rss_curve(proc.pid, gw.fix_port, names, orders, 2, gw.data / "audit")
    finally:
        terminate(proc, 60)

    out.append(
        f"{'orders':>12} | {'bare QuickFIX (--ack)':>22} | {'gateway (process tree)':>22} | "
        f"{'gateway - bare':>15} | {'audit entries':>13}"
    )
    for point, b, g, n in zip(CHECKPOINTS, bare, gateway, entries, strict=True):
        out.append(
            f"{int(orders * point):>12,} | {mb(b):>22} | {mb(g):>22} | {mb(g - b):>15} | {n:>13,}"
        )
    tenth = CHECKPOINTS.index(0.1)

    def growth(curve: list[int]) -> float:
        return 100 * (curve[-1] - curve[tenth]) / curve[tenth]

    ours = [g - b for g, b in zip(gateway, bare, strict=True)]
    out.append(
        f"growth from 10 % to 100 % of the orders: gateway {growth(gateway):+.1f} %, "
        f"bare QuickFIX {growth(bare):+.1f} %, gateway - bare {growth(ours):+.1f} %"
    )
    out.append("")

    empty = Gateway(work, names, work / "gateway-empty")
    t_empty = empty.startup_seconds()
    t_run = gw.startup_seconds()
    seed_finished(gw.data / "fixbridge.db", seed, names[0])
    t_seeded = gw.startup_seconds()
    out.append("start-up, process start -> /ready 200:")
    out.append(f"  empty database:                                  {t_empty:6.2f} s")
    out.append(f"  after the run ({orders:,} finished orders today):     {t_run:6.2f} s")
    out.append(
        f"  + {seed:,} finished orders of earlier days:        {t_seeded:6.2f} s "
        f"({t_seeded - t_run:+.2f} s)"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load.bench_memory", description=__doc__)
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--sessions", type=int, default=4)
    p.add_argument("--seed", type=int, help="finished orders of earlier days (default: --orders)")
    p.add_argument("--work-dir", type=Path, help="keep data, logs and config here (default: temp)")
    args = p.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(run(args.orders, args.sessions, args.seed or args.orders, work), flush=True)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
