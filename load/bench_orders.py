"""Order benchmark: the gateway against a bare QuickFIX acceptor, measured in the same run.

    python -m load.bench_orders [--orders 20000] [--latency-samples 2000] [--rounds 3]
        [--warmup 2000] [--batch 64] [--work-dir DIR]

Starts three subprocesses on loopback: ``load.bare_acceptor`` (QuickFIX alone: FileStore,
FileLog, stock FIX44.xml validation, one filled ExecutionReport per order), the same with
``--ack`` (ER New, then the fill: the protocol work the gateway does per order, and nothing
else, i.e. the ceiling for any gateway that acknowledges orders) and ``fixbridge run``
with a temporary config (one session, auth none, throttle far above any rate reached, HTTP off,
SQLite in the work dir, venue depth far above the order size, so each order is acknowledged
(ER New) and then filled in ONE fill (ER Trade): two ExecutionReports per order). One lean
client (:mod:`load.fastclient`) drives all three, in turn in every round, after a
warm-up of each:

* throughput: ``--orders`` limit orders pipelined over one session while a reader thread
  consumes the ExecutionReports; orders/s = N / (first send -> the last order's fill ER).
  Also the server's CPU time per order, summed over its whole process tree (psutil: a
  gateway that runs several processes is measured whole), which the client's own CPU use on
  a 2-core machine distorts less than wall-clock rates.
* latency: ``--latency-samples`` orders one at a time; p50/p99 of order -> first ER (the
  gateway's ack, the bare acceptor's only ER: the like-for-like comparison) and order -> fill.

With ``--ablation``, five more gateways run in the same rounds, each with parts left out or
changed by :mod:`load.ablated_gateway` (no front relay; no audit trail; no database; none of
the three; the audit trail with one entry per message instead of one per command): where the
time goes, measured rather than guessed. The product itself has no such switches.

Targets, against bare QuickFIX answering as the gateway does (ack + fill): throughput >= 0.5x,
server CPU per order (every gateway process together) <= 3x, p50 order->first ER <= + 100 µs,
p99 <= 1.5 ms.
On a 2-core machine client and servers share the CPUs, so absolute figures are lower than on a
dedicated host and anything else running skews them; the gateway/bare ratios are the figures
that matter. A default run takes about a minute and a half.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.audit.keys import generate_signing_key
from gateway.fix.front import free_loopback_port
from load import ablated_gateway
from load.bare_acceptor import READY as BARE_READY
from load.fastclient import FastSession, LatencySample, OrderTemplate, PipelineResult
from load.procs import start_ready, terminate, tree_cpu_seconds
from load.stats import percentile

GATEWAY_READY = "fixbridge ready"
COMP_ID, CLIENT, SYMBOL, PRICE = "FIXBRIDGE", "BENCH", "BTC-PERP", "65000"
# against bare QuickFIX ack + fill (the FIX work an acknowledging gateway cannot avoid)
THROUGHPUT_TARGET = 0.5  # gateway orders/s >= this x bare ack + fill
CPU_TARGET = 3.0  # gateway server CPU per order <= this x bare ack + fill
LATENCY_TARGET_US = 100.0  # gateway p50 order->first ER <= bare ack + fill p50 + this
P99_TARGET_US = 1500.0  # gateway p99 order->first ER


def gateway_config(fix_port: int, http_port: int, data_dir: Path, depth: str) -> str:
    return f"""
[gateway]
comp_id = "{COMP_ID}"
fix_listen = "127.0.0.1:{fix_port}"
http_listen = "127.0.0.1:{http_port}"
http_enabled = false
data_dir = "{data_dir}"
fix_message_log = true

[venue]
depth = "{depth}"
[venue.reference_prices]
"{SYMBOL}" = "{PRICE}"

[[sessions]]
comp_id = "{CLIENT}"
auth = "none"
heartbeat_max = 120
[sessions.throttle]  # far above any rate reached here: the benchmark measures, not the limit
reject_above = 10000000
logout_above = 10000000
"""


# --- server processes ------------------------------------------------------------------------


def wait_idle(pid: int, quiet: float = 0.3, limit: float = 60.0) -> None:
    """Wait until the process stops using CPU (e.g. its database writer has caught up)."""
    deadline = time.monotonic() + limit
    last = tree_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = tree_cpu_seconds(pid)
        if now - last < 0.02:
            return
        last = now


@dataclass
class Server:
    """A started server subprocess and the client session logged on to it."""

    name: str
    proc: subprocess.Popen
    port: int
    ers_per_order: int
    stderr_path: Path
    session: FastSession | None = None

    def connect(self) -> FastSession:
        self.session = FastSession("127.0.0.1", self.port, CLIENT, COMP_ID)
        self.session.logon()
        return self.session

    def stop(self) -> None:
        if self.session is not None:
            self.session.logout()
        terminate(self.proc, 20)


def _start(
    name: str, argv: list[str], ready: str, stderr_path: Path, port: int, ers: int
) -> Server:
    return Server(name, start_ready(name, argv, ready, stderr_path), port, ers, stderr_path)


def start_bare(work: Path, ack: bool = False) -> Server:
    """``ack``: ER New before the fill, as the gateway answers (two ERs per order)."""
    port = free_loopback_port()
    name = "bare QuickFIX, ack + fill" if ack else "bare QuickFIX"
    argv = [
        sys.executable,
        "-m",
        "load.bare_acceptor",
        "--port",
        str(port),
        "--data-dir",
        str(work / "bare"),
        "--comp-id",
        COMP_ID,
        "--client",
        CLIENT,
        *(["--ack"] if ack else []),
    ]
    data = "bare-ack" if ack else "bare"
    argv[argv.index(str(work / "bare"))] = str(work / data)
    return _start(name, argv, BARE_READY, work / f"{data}.stderr", port, 2 if ack else 1)


ABLATIONS: dict[str, tuple[str, ...]] = {
    "gateway, no front relay": ("--no-front",),
    "gateway, no audit trail": ("--no-audit",),
    "gateway, no database": ("--no-db",),
    "gateway, none of the three": ("--no-front", "--no-audit", "--no-db"),
    # the audit trail before command entries: one entry per message and per order change
    "gateway, audit entry per message": ("--per-message-audit",),
}


def gateway_dir(work: Path, without: tuple[str, ...] = ()) -> Path:
    """Where a gateway (``without`` those parts) keeps its data, config and stderr."""
    return work / ("gateway" + "".join(without))


def start_gateway(
    work: Path, depth: str = "1000000000", name: str = "gateway", without: tuple[str, ...] = ()
) -> Server:
    """``without``: switches of :mod:`load.ablated_gateway` (parts of the gateway left out)."""
    port = free_loopback_port()
    data = gateway_dir(work, without)
    config = work / f"{data.name}.toml"
    config.write_text(gateway_config(port, free_loopback_port(), data, depth))
    audit = data / "audit"
    if not (audit / "signing_key.pem").exists():
        generate_signing_key(audit)  # as `fixbridge audit keygen` does before a first start
    switches: list[str] = []
    for switch in without:
        switches += [switch]
        if switch == "--no-front":  # the client connects to the acceptor's own port
            port = free_loopback_port()
            switches.append(str(port))
    argv = ablated_gateway.command(switches, ["run", "--config", str(config)])
    return _start(name, argv, GATEWAY_READY, work / f"{data.name}.stderr", port, 2)


# --- measurements ----------------------------------------------------------------------------


@dataclass
class TargetStats:
    name: str
    ers_per_order: int
    throughput: list[PipelineResult] = field(default_factory=list)
    server_cpu_us_per_order: list[float] = field(default_factory=list)
    server_cpu_drained_us_per_order: list[float] = field(default_factory=list)
    latency: list[LatencySample] = field(default_factory=list)

    @property
    def orders_per_second(self) -> float:
        return statistics.median(r.orders_per_second for r in self.throughput)

    @property
    def cpu_us_per_order(self) -> float:
        return statistics.median(self.server_cpu_us_per_order)

    @property
    def cpu_drained_us_per_order(self) -> float:
        return statistics.median(self.server_cpu_drained_us_per_order)

    def first_er_us(self, p: float) -> float:
        return percentile([s.first_er_ns for s in self.latency], p) / 1000

    def fill_us(self, p: float) -> float:
        return percentile([s.fill_ns for s in self.latency], p) / 1000

    @property
    def execution_reports(self) -> int:
        return sum(r.execution_reports for r in self.throughput) + sum(
            s.execution_reports for s in self.latency
        )

    @property
    def orders(self) -> int:
        return sum(r.orders for r in self.throughput) + len(self.latency)


class OrderIds:
    """ClOrdIDs unique across the run (and across runs: the gateway keeps its orders)."""

    def __init__(self) -> None:
        self._prefix = b"B%x-" % time.time_ns()
        self._n = itertools.count(1)

    def take(self, count: int) -> list[bytes]:
        return [self._prefix + b"%d" % next(self._n) for _ in range(count)]


TEMPLATE = OrderTemplate(CLIENT, COMP_ID, SYMBOL, side="1", quantity="1", price=PRICE)


def pipelined(
    server: Server, ids: OrderIds, n: int, batch: int
) -> tuple[PipelineResult, float, float]:
    """One throughput run: the result and the server's CPU µs per order, up to the last fill
    and until the server is idle again."""
    session = server.session
    assert session is not None
    session.heartbeat()
    cl_ord_ids = ids.take(n)
    orders = session.prebuild(TEMPLATE, cl_ord_ids)
    wait_idle(server.proc.pid)
    cpu0 = tree_cpu_seconds(server.proc.pid)
    result = session.pipeline(orders, fills_expected=n, batch=batch)
    cpu = tree_cpu_seconds(server.proc.pid) - cpu0
    wait_idle(server.proc.pid)  # work left behind (e.g. the database writer) counts too
    drained = tree_cpu_seconds(server.proc.pid) - cpu0
    if result.fills != n or result.execution_reports != n * server.ers_per_order:
        raise RuntimeError(
            f"{server.name}: {n} orders gave {result.fills} fills and "
            f"{result.execution_reports} ExecutionReports (expected {n * server.ers_per_order})"
        )
    if result.last_fill_cl_ord_id != cl_ord_ids[-1]:
        raise RuntimeError(
            f"{server.name}: the last fill was for {result.last_fill_cl_ord_id!r}, "
            f"not the last order {cl_ord_ids[-1]!r}"
        )
    return result, cpu * 1e6 / n, drained * 1e6 / n


def sequential(server: Server, ids: OrderIds, n: int) -> list[LatencySample]:
    session = server.session
    assert session is not None
    session.heartbeat()
    wait_idle(server.proc.pid)
    samples = []
    for cl_ord_id in ids.take(n):
        (order,) = session.prebuild(TEMPLATE, [cl_ord_id])
        sample = session.round_trip(order, cl_ord_id)
        if sample.execution_reports != server.ers_per_order:
            raise RuntimeError(f"{server.name}: {sample.execution_reports} ERs for one order")
        samples.append(sample)
    return samples


@dataclass
class BenchResult:
    orders: int
    latency_samples: int
    rounds: int
    bare: TargetStats
    gateway: TargetStats
    bare_ack: TargetStats | None = None  # bare QuickFIX answering as the gateway does (2 ERs)
    ablations: list[TargetStats] = field(default_factory=list)  # gateway with parts left out

    @property
    def throughput_ratio(self) -> float:
        return self.gateway.orders_per_second / self.bare.orders_per_second

    @property
    def p50_difference_us(self) -> float:
        return self.gateway.first_er_us(50) - self.bare.first_er_us(50)


def run_benchmark(
    orders: int = 20_000,
    latency_samples: int = 2_000,
    rounds: int = 3,
    warmup: int = 2_000,
    batch: int = 64,
    work_dir: Path | None = None,
    progress: Callable[[str], None] = lambda text: None,
    ablation: bool = False,
) -> BenchResult:
    """Start both servers, warm them up, measure them alternately, stop them."""
    if orders < 1 or latency_samples < rounds or rounds < 1:
        raise ValueError("need orders >= 1, rounds >= 1 and latency_samples >= rounds")
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="bench-orders-"))
    work.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    try:
        servers.append(start_bare(work))
        servers.append(start_bare(work, ack=True))
        servers.append(start_gateway(work))
        if ablation:
            for name, without in ABLATIONS.items():
                servers.append(start_gateway(work, name=name, without=without))
        stats = {s.name: TargetStats(s.name, s.ers_per_order) for s in servers}
        ids = OrderIds()
        for s in servers:
            s.connect()
            progress(f"warm-up {s.name}: {warmup} pipelined + {warmup // 10} sequential")
            pipelined(s, ids, max(1, warmup), batch)
            sequential(s, ids, max(1, warmup // 10))
        per_round = [latency_samples // rounds] * rounds
        per_round[-1] += latency_samples - sum(per_round)
        for r in range(rounds):
            for s in servers:
                progress(f"round {r + 1}/{rounds} {s.name}: {per_round[r]} sequential orders")
                stats[s.name].latency += sequential(s, ids, per_round[r])
            for s in servers:
                progress(f"round {r + 1}/{rounds} {s.name}: {orders} pipelined orders")
                result, cpu, drained = pipelined(s, ids, orders, batch)
                stats[s.name].throughput.append(result)
                stats[s.name].server_cpu_us_per_order.append(cpu)
                stats[s.name].server_cpu_drained_us_per_order.append(drained)
                progress(
                    f"  {result.orders_per_second:,.0f} orders/s; server CPU/order "
                    f"{cpu:.0f} µs to the last fill, {drained:.0f} µs until idle"
                )
        bare, bare_ack, gateway, *ablations = (stats[s.name] for s in servers)
        return BenchResult(orders, latency_samples, rounds, bare, gateway, bare_ack, ablations)
    finally:
        for s in reversed(servers):
            s.stop()
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def report(result: BenchResult) -> str:
    b, g = result.bare, result.gateway
    a = result.bare_ack
    ratio, diff = result.throughput_ratio, result.p50_difference_us
    targets = [b] + ([a] if a else []) + [g]

    def row(label: str, cells: list[str], cmp: str = "") -> str:
        return f"{label:<34}" + "".join(f"{c:>16}" for c in cells) + f"   {cmp}"

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    names = ["bare QuickFIX"] + (["bare ack+fill"] if a else []) + ["gateway"]
    lines = [
        f"fixbridge order benchmark: {result.orders} pipelined orders x {result.rounds} rounds, "
        f"{result.latency_samples} sequential orders; {os.cpu_count()} CPUs, client and servers "
        "on one host",
        row("", names, "gateway vs bare QuickFIX"),
        row(
            "ExecutionReports per order",
            ["1 (fill)"] + (["2 (new+fill)"] if a else []) + ["2 (new+fill)"],
        ),
        row(
            "throughput (orders/s, median)",
            [f"{t.orders_per_second:,.0f}" for t in targets],
            f"{ratio:.2f}x",
        ),
        "  per round: "
        + "; ".join(
            f"{n} " + " / ".join(f"{r.orders_per_second:,.0f}" for r in t.throughput)
            for n, t in zip(names, targets, strict=True)
        ),
        row(
            "server CPU µs/order, to last fill",
            [f"{t.cpu_us_per_order:.0f}" for t in targets],
            f"{g.cpu_us_per_order / b.cpu_us_per_order:.2f}x" if b.cpu_us_per_order else "",
        ),
        row(
            "  ... until the server is idle",
            [f"{t.cpu_drained_us_per_order:.0f}" for t in targets],
            f"{g.cpu_drained_us_per_order / b.cpu_drained_us_per_order:.2f}x"
            if b.cpu_drained_us_per_order
            else "",
        ),
        row(
            "p50 order -> first ER (µs)",
            [f"{t.first_er_us(50):.0f}" for t in targets],
            f"{diff:+.0f} µs",
        ),
        row(
            "p99 order -> first ER (µs)",
            [f"{t.first_er_us(99):.0f}" for t in targets],
            f"{g.first_er_us(99) - b.first_er_us(99):+.0f} µs",
        ),
        row(
            "p50 order -> fill ER (µs)",
            [f"{t.fill_us(50):.0f}" for t in targets],
            f"{g.fill_us(50) - b.fill_us(50):+.0f} µs",
        ),
        row(
            "p99 order -> fill ER (µs)",
            [f"{t.fill_us(99):.0f}" for t in targets],
            f"{g.fill_us(99) - b.fill_us(99):+.0f} µs",
        ),
    ]
    if a is not None:
        t_ratio = g.orders_per_second / a.orders_per_second
        # a tiny run may not last one clock tick of the baseline's CPU: no ratio, then
        base_cpu = a.cpu_drained_us_per_order
        c_ratio = g.cpu_drained_us_per_order / base_cpu if base_cpu else float("inf")
        p50 = g.first_er_us(50) - a.first_er_us(50)
        p99 = g.first_er_us(99)
        lines += [
            "targets, gateway vs bare ack+fill:",
            f"  throughput {t_ratio:.2f}x (>= {THROUGHPUT_TARGET}x): "
            f"{verdict(t_ratio >= THROUGHPUT_TARGET)}",
            f"  server CPU per order, all processes "
            f"{f'{c_ratio:.2f}x' if base_cpu else 'n/a (baseline CPU below one clock tick)'}"
            f" (<= {CPU_TARGET}x): {verdict(c_ratio <= CPU_TARGET)}",
            f"  p50 order -> first ER {p50:+.0f} µs (<= +{LATENCY_TARGET_US:.0f} µs): "
            f"{verdict(p50 <= LATENCY_TARGET_US)}",
            f"  p99 order -> first ER {p99:.0f} µs (<= {P99_TARGET_US:.0f} µs): "
            f"{verdict(p99 <= P99_TARGET_US)}",
        ]
        ack_ratio = a.orders_per_second / b.orders_per_second
        lines.append(
            f"bare QuickFIX answering as the gateway does (ER New, then the fill) reaches "
            f"{ack_ratio:.2f}x of bare QuickFIX: no gateway that acknowledges orders does more "
            f"here;\nthe gateway reaches {g.orders_per_second / a.orders_per_second:.2f}x "
            "of that, with normalisation, risk, persistence, audit and the front relay on."
        )
    if result.ablations:
        lines.append(
            "where the time goes: the gateway with parts left out (load.ablated_gateway), same run"
        )
        lines.append(row("", ["orders/s", "CPU µs/order", "p50 first ER"], "vs bare QuickFIX"))
        for t in [g, *result.ablations]:
            lines.append(
                row(
                    f"  {t.name}",
                    [
                        f"{t.orders_per_second:,.0f}",
                        f"{t.cpu_us_per_order:.0f}",
                        f"{t.first_er_us(50):.0f} µs",
                    ],
                    f"{t.orders_per_second / b.orders_per_second:.2f}x, "
                    f"{t.first_er_us(50) - b.first_er_us(50):+.0f} µs",
                )
            )
    lines.append(
        "first ER: the gateway's ack (ER New) vs the bare acceptor's only ER (its fill) -- the "
        "like-for-like round trip;\nfill ER: the gateway's second ER (the same ER for bare). "
        "Server CPU per order is summed over all the server's threads and processes."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m load.bench_orders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--orders", type=int, default=20_000, help="pipelined orders per round")
    p.add_argument("--latency-samples", type=int, default=2_000, help="sequential orders, total")
    p.add_argument("--rounds", type=int, default=3, help="alternating bare/gateway rounds")
    p.add_argument("--warmup", type=int, default=2_000, help="pipelined warm-up orders each")
    p.add_argument("--batch", type=int, default=64, help="orders per socket write when pipelining")
    p.add_argument("--work-dir", type=Path, help="keep data, logs and config here (default: temp)")
    p.add_argument(
        "--ablation",
        action="store_true",
        help="also measure the gateway without its front relay, audit trail, database, and "
        "without all three (load.ablated_gateway): where the time goes",
    )
    args = p.parse_args(argv)
    try:
        result = run_benchmark(
            args.orders,
            args.latency_samples,
            args.rounds,
            args.warmup,
            args.batch,
            args.work_dir,
            progress=lambda text: print(text, file=sys.stderr, flush=True),
            ablation=args.ablation,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"bench_orders: {exc}", file=sys.stderr)
        return 1
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
