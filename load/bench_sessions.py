"""Many sessions: logon storm, idle memory per session, and order latency at a steady rate; bare
QuickFIX with as many sessions as the baseline, in the same run.

    python -m load.bench_sessions [--sessions 100] [--rate 10] [--duration 20] [--work-dir DIR]

For each server (``load.bare_acceptor --ack`` with one session per client, then ``fixbridge
run`` with as many configured sessions, auth none):

1. logon storm: the server is started; once it prints its ready line, every session connects
   and sends its Logon at once; the time until the last Logon answer, and from the process's
   start to that moment;
2. idle memory: RSS of the server's whole process tree (psutil) before the logons and after
   all sessions have idled logged on for a few seconds; the difference per session (and the
   RSS after step 3);
3. steady load: each session sends marketable NewOrderSingles at ``--rate`` per second, each
   session starting at a random phase of the interval, for ``--duration`` seconds; order ->
   first ExecutionReport, p50 / p99 / max.

The client is one Python process: non-blocking sockets on one selector, orders from byte
templates (:mod:`load.fastclient`). Its own CPU use during the load is printed: it must stay
well below one core for the latencies to be the server's.
"""

from __future__ import annotations

import argparse
import heapq
import random
import selectors
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.audit.keys import generate_signing_key
from gateway.fix.front import free_loopback_port
from load.bare_acceptor import READY as BARE_READY
from load.bench_memory import tree_rss
from load.fastclient import SOH, TRAILER, OrderTemplate, field_value, fix_stamp, frame
from load.procs import start_ready, terminate
from load.stats import percentile

GATEWAY_READY = "fixbridge ready"
COMP_ID, SYMBOL, PRICE = "FIXBRIDGE", "BTC-PERP", "65000"
IDLE_SECONDS = 3.0


def clients(n: int) -> list[str]:
    return [f"S{i:03d}" for i in range(1, n + 1)]


def gateway_config(fix_port: int, http_port: int, data_dir: Path, names: list[str]) -> str:
    sessions = "".join(
        f'\n[[sessions]]\ncomp_id = "{c}"\nauth = "none"\nheartbeat_max = 600\n' for c in names
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


@dataclass
class Session:
    """One client session on the shared selector."""

    name: str
    sock: socket.socket
    template: OrderTemplate
    seq: int = 1
    buf: bytes = b""
    logged_on: float = 0.0
    sent: dict[bytes, int] = field(default_factory=dict)  # ClOrdID -> send time (ns)

    def admin(self, msg_type: bytes, fields: bytes = b"") -> bytes:
        body = b"35=%s\x0149=%s\x0156=%s\x0134=%d\x0152=%s\x01%s" % (
            msg_type,
            self.name.encode(),
            COMP_ID.encode(),
            self.seq,
            fix_stamp(),
            fields,
        )
        self.seq += 1
        return frame(body)


class Client:
    """Every session on one selector: one thread, non-blocking sockets."""

    def __init__(self, port: int, names: list[str]) -> None:
        self.port = port
        self.names = names
        self.sel = selectors.DefaultSelector()
        self.sessions: list[Session] = []
        self.latencies_ns: list[int] = []
        self.errors: list[bytes] = []

    def logon_all(self, timeout: float = 60) -> float:
        """Connect every session and send every Logon at once; seconds until all answered."""
        start = time.monotonic()
        for name in self.names:
            sock = socket.create_connection(("127.0.0.1", self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            template = OrderTemplate(name, COMP_ID, SYMBOL, quantity="1", price=PRICE)
            session = Session(name, sock, template)
            sock.sendall(session.admin(b"A", b"98=0\x01108=600\x01141=Y\x01"))
            sock.setblocking(False)
            self.sel.register(sock, selectors.EVENT_READ, session)
            self.sessions.append(session)
        while not all(s.logged_on for s in self.sessions):
            if time.monotonic() - start > timeout:
                missing = [s.name for s in self.sessions if not s.logged_on]
                raise RuntimeError(f"sessions not logged on in {timeout} s: {missing[:5]}")
            self.poll(0.5)
        return max(s.logged_on for s in self.sessions) - start

    def poll(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            session: Session = key.data
            try:
                data = session.sock.recv(1 << 16)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError(f"{session.name}: connection closed")
            self._read(session, session.buf + data, time.perf_counter_ns())

    def _read(self, session: Session, buf: bytes, now: int) -> None:
        pos = 0
        while (k := buf.find(TRAILER, pos)) >= 0 and (e := buf.find(SOH, k + 4)) >= 0:
            msg = buf[pos : e + 1]
            pos = e + 1
            msg_type = field_value(msg, b"35")
            if msg_type == b"8":
                sent = session.sent.pop(field_value(msg, b"11") or b"", None)
                if sent is not None:  # the first ER of that order
                    self.latencies_ns.append(now - sent)
            elif msg_type == b"A":
                session.logged_on = time.monotonic()
            elif msg_type == b"1":
                test_id = field_value(msg, b"112") or b""
                session.sock.sendall(session.admin(b"0", b"112=" + test_id + SOH))
            elif msg_type != b"0":
                self.errors.append(msg)
        session.buf = buf[pos:]

    def steady(self, rate: float, duration: float, seed: int = 1) -> float:
        """Each session sends ``rate`` orders/s from a random phase for ``duration`` s; returns
        this process's CPU seconds meanwhile."""
        rng = random.Random(seed)
        interval = 1.0 / rate
        begin = time.monotonic() + 0.2
        queue = [(begin + rng.random() * interval, i) for i in range(len(self.sessions))]
        heapq.heapify(queue)
        end = begin + duration
        n = 0
        cpu = time.process_time()
        while queue:
            due, i = queue[0]
            wait = due - time.monotonic()
            if wait > 0:
                self.poll(min(wait, 0.05))
                continue
            heapq.heappop(queue)
            session = self.sessions[i]
            n += 1
            cl = b"L%d" % n
            order = session.template.build(session.seq, cl, fix_stamp())
            session.seq += 1
            session.sent[cl] = time.perf_counter_ns()
            session.sock.sendall(order)
            if due + interval < end:
                heapq.heappush(queue, (due + interval, i))
        drain = time.monotonic() + 10
        while any(s.sent for s in self.sessions) and time.monotonic() < drain:
            self.poll(0.05)
        used = time.process_time() - cpu
        unanswered = sum(len(s.sent) for s in self.sessions)
        if unanswered or self.errors:
            raise RuntimeError(f"{unanswered} orders unanswered; errors {self.errors[:3]}")
        return used

    def close(self) -> None:
        for s in self.sessions:
            try:
                s.sock.setblocking(True)
                s.sock.sendall(s.admin(b"5"))
            except OSError:
                pass
        time.sleep(0.5)
        for s in self.sessions:
            s.sock.close()
        self.sel.close()


@dataclass
class Result:
    name: str
    start_to_logged_on: float = 0.0
    logon_storm: float = 0.0
    rss_before: int = 0
    rss_idle: int = 0
    rss_loaded: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    client_cpu: float = 0.0
    orders: int = 0

    @property
    def per_session(self) -> float:
        return (self.rss_idle - self.rss_before) / max(1, self.sessions)

    sessions: int = 0


def measure(name: str, argv: list[str], ready: str, port: int, work: Path, names: list[str],
            rate: float, duration: float) -> Result:  # fmt: skip
    result = Result(name, sessions=len(names))
    started = time.monotonic()
    proc = start_ready(name, argv, ready, work / f"{name.split()[0]}.stderr")
    spawn_to_ready = time.monotonic() - started
    try:
        time.sleep(1.0)  # let start-up settle before the baseline reading
        result.rss_before = tree_rss(proc.pid)
        client = Client(port, names)
        result.logon_storm = client.logon_all()
        result.start_to_logged_on = spawn_to_ready + result.logon_storm
        time.sleep(IDLE_SECONDS)
        result.rss_idle = tree_rss(proc.pid)
        result.client_cpu = client.steady(rate, duration)
        result.rss_loaded = tree_rss(proc.pid)
        result.latencies_ns = client.latencies_ns
        result.orders = len(client.latencies_ns)
        client.close()
    finally:
        terminate(proc, 30)
    return result


def run(n: int, rate: float, duration: float, work: Path) -> str:
    names = clients(n)
    bare_port = free_loopback_port()
    bare_argv = [sys.executable, "-m", "load.bare_acceptor", "--port", str(bare_port)]
    bare_argv += ["--data-dir", str(work / "bare"), "--comp-id", COMP_ID, "--ack"]
    for c in names:
        bare_argv += ["--client", c]
    bare = measure("bare QuickFIX --ack", bare_argv, BARE_READY, bare_port, work, names, rate,
                   duration)  # fmt: skip

    fix_port, http_port, data = free_loopback_port(), free_loopback_port(), work / "gateway"
    config = work / "gateway.toml"
    config.write_text(gateway_config(fix_port, http_port, data, names))
    generate_signing_key(data / "audit")
    gw_argv = [sys.executable, "-m", "gateway.cli", "run", "--config", str(config)]
    gateway = measure("gateway", gw_argv, GATEWAY_READY, fix_port, work, names, rate, duration)

    lines = [
        f"bench_sessions: {n} sessions, {rate:g} orders/s each (random phases) for {duration:g} s",
        "",
        f"{'':36} | {'bare QuickFIX --ack':>20} | {'gateway':>20}",
    ]

    def row(label: str, f) -> None:
        lines.append(f"{label:36} | {f(bare):>20} | {f(gateway):>20}")

    row("process start -> ready + logon storm", lambda r: f"{r.start_to_logged_on:.2f} s")
    row("logon storm (connect -> all on)", lambda r: f"{r.logon_storm:.2f} s")
    row("RSS before logons", lambda r: f"{r.rss_before / 1e6:.1f} MB")
    row(f"RSS, {n} sessions idle", lambda r: f"{r.rss_idle / 1e6:.1f} MB")
    row("RSS per idle session", lambda r: f"{r.per_session / 1e3:,.0f} KB")
    row("RSS after the load", lambda r: f"{r.rss_loaded / 1e6:.1f} MB")
    row("orders answered", lambda r: f"{r.orders:,}")

    def first_er(p: float):
        return lambda r: f"{percentile(r.latencies_ns, p) / 1e3:,.0f} µs"

    row("order -> first ER p50", first_er(50))
    row("order -> first ER p99", first_er(99))
    row("order -> first ER max", lambda r: f"{max(r.latencies_ns) / 1e3:,.0f} µs")
    row("client CPU during the load", lambda r: f"{100 * r.client_cpu / duration:.0f} % of a core")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load.bench_sessions", description=__doc__)
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--rate", type=float, default=10.0, help="orders per second per session")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of steady load")
    p.add_argument("--work-dir", type=Path, help="keep data, logs and config here (default: temp)")
    args = p.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(run(args.sessions, args.rate, args.duration, work), flush=True)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
