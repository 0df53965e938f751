"""Locust load test of the OTC desk API, with the HTTP stack's own ceiling measured in the same run.

    python -m load.run_locust [--users 16] [--duration 20] [--warmup 3] [--rate 1500]
        [--processes 1] [--rfqs-per-user 32] [--fix-rfq-rate 20] [--pin]
        [--phases bare,bare-desk,health,desk,paced] [--ablation] [--work-dir DIR]

Starts ``fixbridge run`` with a temporary config: three desks with bearer tokens made up for
this run; one FIX client ``LOADCLIENT`` routed to all three, its FIX throttle and RFQ rate limit
far above any rate reached; SQLite, QuickFIX FileStore and FileLog in the work dir; clearing off
(nothing trades). Seeds ``--rfqs-per-user`` RFQs per desk user over ``POST /rfqs`` (QuoteReqIDs
``seed-*``, open for an hour), then runs locust headless (``load/locustfile.py``) in separate
process(es), one phase after another, each with ``--users`` users, counting ``--duration``
seconds that start ``--warmup`` seconds after every user is spawned.

Phases:

* ``bare``    baseline: a bare FastAPI + uvicorn app (same libraries and server settings as the
              gateway, no middleware) answering ``GET /health``;
* ``bare-desk`` baseline: the same app answering the desk users' quote/replace/cancel cycle with
              the gateway's body model and a like-sized answer, nothing behind it: the HTTP
              stack's own ceiling for the desk workload;
* ``health``  baseline: the gateway's ``GET /health`` (no token, no engine; the audit
              middleware still records each call);
* ``desk``    desk users cycling quote (POST) -> replace (PUT) -> cancel (DELETE) on the seeded
              RFQs as fast as answered (closed loop: saturation throughput), plus one FIX user
              sending ``--fix-rfq-rate`` QuoteRequests/s as LOADCLIENT and reading every Quote and
              QuoteStatusReport the desks' actions send it;
* ``paced``   the same, offered ``--rate`` quote submissions/s (POST + PUT; each puts a new
              signed Quote in front of the client): latency at the target load, not at saturation.

With ``--ablation``, the desk phase then runs against three more gateways, each with parts left
out by :mod:`load.ablated_gateway` (no audit trail; quotes not signed; neither), and a last table
compares them: where the time goes. (The desk cycle writes nothing to the database: quotes live
in the engine until their RFQ finishes.)

Reported per phase: requests/s, failures and p50/p95/p99/max latency per request kind (locust's
histogram: whole milliseconds), "quote submissions" (POST + PUT) combined, what the FIX client
received, and CPU: the server's and locust's process trees, everything else (other work on the
machine, kernel) and the whole machine (200 % = both cores busy), and the server's CPU time per
HTTP request (the figure least disturbed by other load). Without ``--pin`` the server and locust
share both cores as the scheduler likes; with ``--pin`` the server runs on CPU 0, locust on CPU 1.

Target: >= 1,500 quote submissions/s with p99 <= 50 ms. A default run takes ~2 min.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from gateway.audit.keys import generate_signing_key
from gateway.fix.front import free_loopback_port as free_port
from gateway.http.models import QuoteIn
from gateway.http.routes.desk import MAX_DESK_RFQS
from gateway.passwords import hash_token
from load import ablated_gateway
from load.procs import ROOT, cpu_seconds, start_ready, terminate

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
GATEWAY_READY = "fixbridge ready"
BARE_READY = "bare http ready"
COMP_ID, CLIENT = "FIXBRIDGE", "LOADCLIENT"
DESKS = ("DESK_A", "DESK_B", "DESK_C")
SYMBOL = "BTC-27DEC26-100000-C"
PHASES = ("bare", "bare-desk", "health", "desk", "paced")
# gateways with parts left out (switches of load.ablated_gateway), for --ablation
ABLATIONS = (("audit",), ("sign",), ("audit", "sign"))
QUOTE_NAMES = ("POST /desk/rfqs/{rfq_id}/quotes", "PUT /desk/quotes/{quote_id}")
TARGET_RATE, TARGET_P99_MS = 1_500.0, 50.0


@dataclass(frozen=True)
class Tokens:
    """Bearer tokens made up for one run (never stored anywhere but the run's config hashes)."""

    admin: str
    desks: dict[str, str]

    @classmethod
    def generate(cls) -> Tokens:
        return cls(secrets.token_urlsafe(24), {d: secrets.token_urlsafe(24) for d in DESKS})


def gateway_config(fix_port: int, http_port: int, data_dir: Path, tokens: Tokens) -> str:
    desk_tokens = "".join(
        f'[[api.tokens]]\nname = "{d.lower()}"\nrole = "desk"\ndesk_id = "{d}"\n'
        f'hash = "{hash_token(t)}"\n'
        for d, t in tokens.desks.items()
    )
    return f"""
[gateway]
comp_id = "{COMP_ID}"
fix_listen = "127.0.0.1:{fix_port}"
http_listen = "127.0.0.1:{http_port}"
data_dir = "{data_dir}"

[api]
[[api.tokens]]
name = "load-admin"
role = "admin"
hash = "{hash_token(tokens.admin)}"
{desk_tokens}
[otc]
desks = {json.dumps(list(DESKS))}
rfq_ttl_seconds = 3600
max_rfq_ttl_seconds = 7200
[otc.routing.{CLIENT}]
"*" = {json.dumps(list(DESKS))}

[clearing]
mode = "off"

[[sessions]]
comp_id = "{CLIENT}"
heartbeat_max = 120
rfq_rate = 10000000
[sessions.throttle]  # far above any rate reached here: the test measures, not the limit
reject_above = 10000000
logout_above = 10000000
"""


# --- processes -------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    http_port: int
    fix_port: int = 0
    without: tuple[str, ...] = ()  # parts left out (load.ablated_gateway)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> int | None:
        return terminate(self.proc, 30)


def _pinned(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _start(name: str, argv: list[str], ready: str, log: Path, cpu: int | None) -> subprocess.Popen:
    return start_ready(name, argv, ready, log, _pinned(cpu))


def start_gateway(
    work: Path, tokens: Tokens, cpu: int | None = None, without: tuple[str, ...] = ()
) -> Server:
    """``fixbridge run`` with this run's config; with ``without`` (switches of
    :mod:`load.ablated_gateway`, e.g. ``("audit",)``), the gateway with those parts left out."""
    work.mkdir(parents=True, exist_ok=True)
    fix_port, http_port = free_port(), free_port()
    config = work / "gateway.toml"
    config.write_text(gateway_config(fix_port, http_port, work / "gateway", tokens))
    audit = work / "gateway" / "audit"
    if not (audit / "signing_key.pem").exists():
        generate_signing_key(audit)  # as `fixbridge audit keygen` does before a first start
    switches = [f"--no-{part}" for part in without]
    argv = ablated_gateway.command(switches, ["run", "--config", str(config)])
    name = f"gateway without {', '.join(without)}" if without else "gateway"
    proc = _start(name, argv, GATEWAY_READY, work / "gateway.stderr", cpu)
    return Server(name, proc, http_port, fix_port, without)


def start_bare_http(work: Path, cpu: int | None = None) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "load.run_locust", "--serve-bare-http", str(port)]
    proc = _start("bare HTTP app", argv, BARE_READY, work / "bare.stderr", cpu)
    return Server("bare", proc, port)


def serve_bare_http(port: int) -> None:
    """The baseline server: FastAPI + uvicorn exactly as the gateway runs them, no middleware.

    ``GET /health``, and the desk routes the locust desk users call, shaped like the gateway's
    (the same ``QuoteIn`` body model, a JSON answer of a similar size) but with no token check,
    engine, signing, audit or FIX behind them: what the HTTP stack alone costs per request of
    the desk workload."""
    import itertools

    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    ids = itertools.count(1)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/desk/rfqs")
    async def rfqs() -> list[dict]:
        return [
            {
                "rfq": {"rfq_id": f"R{i}", "quote_req_id": f"seed-{i}"},
                "state": "Open",
                "my_quotes": [],
            }
            for i in range(1, 1025)
        ]

    def quote(rfq_id: str, body: QuoteIn) -> dict:
        quote = {"quote_id": f"Q{next(ids)}", "rfq_id": rfq_id, "desk_id": "DESK"}
        quote |= body.model_dump(mode="json")
        return {"quote": quote, "hash": "0" * 64, "signature": "0" * 128}

    @app.post("/desk/rfqs/{rfq_id}/quotes", status_code=201)
    async def submit_quote(rfq_id: str, body: QuoteIn) -> dict:
        return quote(rfq_id, body)

    @app.put("/desk/quotes/{quote_id}")
    async def replace_quote(quote_id: str, body: QuoteIn) -> dict:
        return quote("R", body)

    @app.delete("/desk/quotes/{quote_id}")
    async def cancel_quote(quote_id: str) -> dict:
        return {"quote_id": quote_id, "cancelled": True}

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    print(BARE_READY, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.should_exit = True


# --- seeding and cleaning up -----------------------------------------------------------------


def seed_rfqs(gw: Server, tokens: Tokens, count: int, valid_for: timedelta) -> list[str]:
    """``count`` open RFQs for LOADCLIENT, entered over ``POST /rfqs`` as a desk would."""
    expire = (datetime.now(UTC) + valid_for).isoformat()
    ids = []
    with httpx.Client(
        base_url=gw.http, timeout=30, headers={"Authorization": f"Bearer {tokens.admin}"}
    ) as http:
        for i in range(count):
            body = {
                "client_id": CLIENT,
                "quote_req_id": f"seed-{i:06d}",
                "legs": [{"symbol": SYMBOL, "side": "buy"}],
                "quantity": "10",
                "expire_at": expire,
            }
            r = http.post("/rfqs", json=body)
            if r.status_code != 201:
                raise RuntimeError(f"seeding RFQ {i} failed: HTTP {r.status_code} {r.text}")
            ids.append(r.json()["rfq"]["rfq_id"])
    return ids


def cancel_all_quotes(gw: Server, tokens: Tokens) -> int:
    """Withdraw every desk's live quotes (a phase stopped mid-cycle leaves some behind)."""
    cancelled = 0
    for token in tokens.desks.values():
        r = httpx.delete(
            gw.http + "/desk/quotes", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        r.raise_for_status()
        cancelled += r.json()["cancelled"]
    return cancelled


# --- CPU accounting --------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parts = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(parts[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (nor waiting for I/O) since boot."""
    parts = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(x) for x in parts]
    busy = sum(ticks) - ticks[3] - ticks[4]  # idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuSample:
    at: float
    server: float
    locust: float
    machine: float


class TreeCpu:
    """CPU seconds used by a process and all its descendants (a child that has exited keeps
    counting with the last value seen)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._seen: dict[int, float] = {}

    def seconds(self) -> float:
        for pid in _tree(self.pid):
            self._seen[pid] = max(self._seen.get(pid, 0.0), cpu_seconds(pid))
        return sum(self._seen.values())


class CpuSampler:
    """Samples CPU seconds of the server's and locust's process trees and of the whole machine,
    every 0.25 s (the gateway may run its FIX front as a child process)."""

    def __init__(self, server_pid: int, locust_pid: int) -> None:
        self.server, self.locust = TreeCpu(server_pid), TreeCpu(locust_pid)
        self.samples: list[CpuSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()  # after locust's exit, so after its measured window

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(0.25)

    def _sample(self) -> None:
        sample = CpuSample(
            time.time(), self.server.seconds(), self.locust.seconds(), machine_busy_seconds()
        )
        self.samples.append(sample)

    def window(self, start: float, end: float) -> dict[str, float]:
        """CPU % (100 = one core) of each, from the samples just around [start, end]."""
        before = [s for s in self.samples if s.at <= start]
        after = [s for s in self.samples if s.at >= end]
        if not before or not after:
            return {}
        a, b = before[-1], after[0]  # the samples just around the window
        wall = b.at - a.at
        return {
            "server": 100 * (b.server - a.server) / wall,
            "locust": 100 * (b.locust - a.locust) / wall,
            "machine": 100 * (b.machine - a.machine) / wall,
        }


# --- locust ----------------------------------------------------------------------------------


@dataclass
class Entry:
    """One request kind's stats for the measured window (response times in whole ms)."""

    kind: str
    name: str
    requests: int
    failures: int
    seconds: float
    histogram: dict[int, int]
    max_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        return histogram_percentile(self.histogram, p)


def histogram_percentile(histogram: dict[int, int], p: float) -> float:
    """Nearest-rank percentile of a {value: count} histogram."""
    total = sum(histogram.values())
    if total == 0:
        return math.nan
    rank = max(1, math.ceil(total * p / 100))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))


def merge(kind: str, name: str, entries: list[Entry]) -> Entry:
    histogram: dict[int, int] = {}
    for e in entries:
        for value, count in e.histogram.items():
            histogram[value] = histogram.get(value, 0) + count
    return Entry(
        kind,
        name,
        sum(e.requests for e in entries),
        sum(e.failures for e in entries),
        max((e.seconds for e in entries), default=0.0),
        histogram,
        max((e.max_ms for e in entries), default=0.0),
    )


@dataclass
class PhaseResult:
    phase: str
    target: str
    users: int
    processes: int
    seconds: float
    entries: list[Entry]
    cpu: dict[str, float]
    errors: dict[str, int] = field(default_factory=dict)

    def entry(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)

    def http(self) -> list[Entry]:
        return [e for e in self.entries if not e.kind.startswith("FIX")]

    def http_rate(self) -> float:
        """HTTP requests/s over the measured window."""
        return sum(e.requests for e in self.http()) / self.seconds

    def server_ms_per_request(self) -> float:
        """The server's CPU time per HTTP request, in ms (NaN without CPU figures or requests);
        cpu["server"] is in % of one core."""
        rate = self.http_rate()
        return 10 * self.cpu["server"] / rate if self.cpu and rate else math.nan

    def quotes(self) -> Entry:
        return merge(
            "HTTP",
            "quote submissions (POST + PUT)",
            [e for e in self.entries if e.name in QUOTE_NAMES],
        )


def _entry(s: dict, window: float) -> Entry:
    """One of locust's JSON stats entries, counted over the measured ``window`` (seconds)."""
    histogram = {int(k): v for k, v in s["response_times"].items()}
    requests, failures = s["num_requests"], s["num_failures"]
    max_ms = float(s["max_response_time"] or 0)
    return Entry(s["method"] or "", s["name"], requests, failures, window, histogram, max_ms)


def run_locust(
    phase: str,
    server: Server,
    users: list[str],
    n_users: int,
    args: argparse.Namespace,
    work: Path,
    env: dict[str, str],
) -> PhaseResult:
    """One headless locust run against ``server``; its stats for the measured window."""
    marks = work / f"{phase}.marks"
    marks.unlink(missing_ok=True)
    marks.with_name(marks.name + ".errors.json").unlink(missing_ok=True)
    stats_file = work / f"{phase}.json"
    limit = args.warmup + args.duration + 60  # a safety limit: the users end the run
    options = (
        f"--headless --only-summary -u {n_users} -r {n_users} -t {limit}s --loglevel WARNING "
        "--stop-timeout 0 --exit-code-on-error 0"
    ).split()
    if args.processes > 1:
        options += ["--processes", str(args.processes)]
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *options]
    argv += ["--host", server.http, "--json-file", str(stats_file.with_suffix("")), *users]
    child_env = os.environ | env
    child_env["FIXBRIDGE_MARK_FILE"] = str(marks)
    child_env["FIXBRIDGE_WARMUP_S"] = str(args.warmup)
    child_env["FIXBRIDGE_DURATION_S"] = str(args.duration)
    child_env["FIXBRIDGE_PROCESSES"] = str(args.processes)
    log = work / f"{phase}.locust.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_pinned(args.locust_cpu),
        )
        with CpuSampler(server.proc.pid, proc.pid) as sampler:
            try:
                code = proc.wait(args.warmup + args.duration + 120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"locust phase {phase} did not end; see {log}") from None
    if code != 0:
        raise RuntimeError(f"locust phase {phase} exited {code}:\n{log.read_text()[-3000:]}")
    times = dict(line.split() for line in marks.read_text().splitlines()) if marks.exists() else {}
    if "start" not in times or "end" not in times:
        raise RuntimeError(f"locust phase {phase} never reached its measured window; see {log}")
    start, end = float(times["start"]), float(times["end"])
    stats = json.loads(stats_file.read_text())  # a list of per-request-kind entries
    problems = marks.with_name(marks.name + ".errors.json")
    errors = json.loads(problems.read_text()) if problems.exists() else {}
    window = end - start
    entries = [_entry(s, window) for s in stats]
    cpu = sampler.window(start, end)
    return PhaseResult(phase, server.name, n_users, args.processes, window, entries, cpu, errors)


# --- the run ---------------------------------------------------------------------------------


def partition(rfq_ids: list[str], slot: int, desks: int, max_slots: int) -> list[str]:
    """The RFQs that user ``slot`` quotes: slots ``slot % desks`` share a desk, and the desk's
    RFQs (sorted, so every user computes the same split) are dealt out among them."""
    sharing = max(1, math.ceil(max_slots / desks))
    mine = (slot // desks) % sharing
    return [rfq_id for i, rfq_id in enumerate(sorted(rfq_ids)) if i % sharing == mine]


def desk_slots(users: int, processes: int) -> int:
    """Upper bound on the desk-user slots locust can hand out (it balances users across
    processes, the FIX user included, so one process may get one more)."""
    return processes * math.ceil((users + 1) / processes)


def seeded_per_desk(args: argparse.Namespace) -> int:
    """RFQs seeded for the desk phases (each is routed to every desk): ``--rfqs-per-user`` for
    each desk user of the busiest desk."""
    return args.rfqs_per_user * math.ceil(desk_slots(args.users, args.processes) / len(DESKS))


def run(args: argparse.Namespace, work: Path, say: Callable[[str], None]) -> list[PhaseResult]:
    tokens = Tokens.generate()
    results: list[PhaseResult] = []
    phases = args.phases
    if {"bare", "bare-desk"} & set(phases):
        bare = start_bare_http(work, args.server_cpu)
        try:
            if "bare" in phases:
                say("phase bare: FastAPI + uvicorn alone, GET /health")
                results.append(run_locust("bare", bare, ["HealthUser"], args.users, args, work, {}))
            if "bare-desk" in phases:
                say("phase bare-desk: FastAPI + uvicorn alone, the desk users' routes")
                env = {
                    "FIXBRIDGE_DESK_TOKENS": "bare",
                    "FIXBRIDGE_MAX_DESK_SLOTS": str(args.users),
                    "FIXBRIDGE_CYCLE_RATE": "0",
                }
                results.append(
                    run_locust("bare-desk", bare, ["DeskUser"], args.users, args, work, env)
                )
        finally:
            bare.stop()
    if {"health", "desk", "paced"} & set(phases):
        results += gateway_phases(
            start_gateway(work, tokens, args.server_cpu), phases, tokens, args, work, say
        )
    for without in ABLATIONS if args.ablation else ():
        variant = start_gateway(work / "-".join(without), tokens, args.server_cpu, without)
        results += gateway_phases(variant, ["desk"], tokens, args, work, say)
    return results


def gateway_phases(
    gw: Server,
    phases: list[str],
    tokens: Tokens,
    args: argparse.Namespace,
    work: Path,
    say: Callable[[str], None],
) -> list[PhaseResult]:
    """The gateway phases among ``phases`` against ``gw``, which is stopped at the end."""
    results: list[PhaseResult] = []
    tag = "".join(f"-{part}" for part in gw.without)
    try:
        slots = desk_slots(args.users, args.processes)
        desk_env = {
            "FIXBRIDGE_DESK_TOKENS": ",".join(tokens.desks.values()),
            "FIXBRIDGE_MAX_DESK_SLOTS": str(slots),
            "FIXBRIDGE_QUOTE_VALID_MS": str(3_600_000),
            "FIXBRIDGE_FIX": f"127.0.0.1:{gw.fix_port}:{CLIENT}:{COMP_ID}",
            "FIXBRIDGE_FIX_RFQ_RATE": str(args.fix_rfq_rate),
        }
        if "health" in phases:
            say("phase health: the gateway's GET /health")
            results.append(run_locust("health", gw, ["HealthUser"], args.users, args, work, {}))
        if {"desk", "paced"} & set(phases):
            count = seeded_per_desk(args)
            say(f"seeding {count} RFQs over POST /rfqs ({gw.name})")
            seed_rfqs(gw, tokens, count, timedelta(hours=1))
            desk_env["FIXBRIDGE_SEEDED_RFQS"] = str(count)
        for phase in ("desk", "paced"):
            if phase not in phases:
                continue
            # each cycle (POST + PUT + DELETE) submits two quotes
            rate = args.rate / 2 / args.users if phase == "paced" else 0.0
            say(
                f"phase {phase}{tag}: {args.users} desk users"
                + (f" offering {args.rate:,.0f} quote submissions/s" if rate else ", closed loop")
                + f" + 1 FIX user sending {args.fix_rfq_rate:g} RFQs/s ({gw.name})"
            )
            env = desk_env | {"FIXBRIDGE_CYCLE_RATE": f"{rate:.6f}"}
            results.append(
                run_locust(
                    phase + tag, gw, ["DeskUser", "FixRfqUser"], args.users + 1, args, work, env
                )
            )
            cancel_all_quotes(gw, tokens)
    finally:
        code = gw.stop()
        if code not in (0, None):
            say(f"{gw.name} exited {code}; see its gateway.stderr in {work}")
    return results


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def _row(e: Entry) -> str:
    return (
        f"  {e.name:<34}{e.requests:>9,}{e.failures:>7,}{e.per_second:>10,.0f}"
        f"{_ms(e.percentile(50)):>7}{_ms(e.percentile(95)):>7}{_ms(e.percentile(99)):>7}"
        f"{_ms(e.max_ms):>7}"
    )


def report(results: list[PhaseResult], args: argparse.Namespace) -> str:
    cores = os.cpu_count() or 0
    pin = (
        "gateway/bare server pinned to CPU 0, locust to CPU 1"
        if args.pin
        else "no pinning: server and locust share the cores as the scheduler likes"
    )
    lines = [
        f"OTC desk API under locust: {cores} cores, {pin}; locust {args.processes} process(es); "
        f"{args.users} users per phase, {args.duration:g} s measured after {args.warmup:g} s "
        "warm-up",
    ]
    for r in results:
        title = {
            "bare": "baseline: bare FastAPI+uvicorn GET /health",
            "bare-desk": "baseline: bare FastAPI+uvicorn, desk routes with nothing behind them",
            "health": "baseline: gateway GET /health",
            "desk": "desk quote/replace/cancel, closed loop (saturation)",
            "paced": f"desk quote/replace/cancel, offered {args.rate:,.0f} quotes/s",
        }.get(r.phase, f"desk quote/replace/cancel, closed loop, {r.target}")
        lines.append(f"\n[{r.phase}] {title}: {r.users} users, {r.seconds:.1f} s window")
        lines.append(
            f"  {'request':<34}{'n':>9}{'fail':>7}{'req/s':>10}{'p50':>7}{'p95':>7}"
            f"{'p99':>7}{'max':>7}  (ms)"
        )
        for e in r.http():
            lines.append(_row(e))
        http_rate = r.http_rate()
        if r.phase in ("paced", "bare-desk") or r.phase.startswith("desk"):
            lines.append(_row(r.quotes()))
            lines.append(f"  all HTTP requests: {http_rate:,.0f}/s")
        if r.phase == "paced" or r.phase.startswith("desk"):
            fix_in = {e.name: e.requests for e in r.entries if e.kind == "FIX-in"}
            sent = r.entry("R QuoteRequest")
            lines.append(
                f"  FIX client: sent {sent.requests if sent else 0:,} QuoteRequests; received "
                + ", ".join(f"{n} x{c:,}" for n, c in sorted(fix_in.items()))
                + " (S = Quote, AI = QuoteStatusReport, 0 = Heartbeat)"
            )
        if r.cpu:
            other = r.cpu["machine"] - r.cpu["server"] - r.cpu["locust"]
            lines.append(
                f"  CPU (100 % = one core): {r.target} {r.cpu['server']:.0f} %, "
                f"locust {r.cpu['locust']:.0f} %, anything else {max(other, 0):.0f} %; "
                f"machine {r.cpu['machine']:.0f} % of {100 * cores} %"
            )
            if http_rate > 0:
                lines.append(
                    f"  {r.target} CPU per HTTP request: {r.server_ms_per_request():.2f} ms"
                )
        for what, n in list(r.errors.items())[:5]:
            lines.append(f"  error x{n}: {what}")
    desk = [r for r in results if r.phase.startswith("desk") and r.cpu]
    if len(desk) > 1:
        lines.append("\nwhere the time goes (closed-loop desk phases; load.ablated_gateway):")
        lines.append(f"  {'gateway':<44}{'submissions/s':>14}{'p99 ms':>8}{'CPU/request':>13}")
        for r in desk:
            q = r.quotes()
            lines.append(
                f"  {r.target:<44}{q.per_second:>14,.0f}{_ms(q.percentile(99)):>8}"
                f"{r.server_ms_per_request():>10.2f} ms"
            )
    verdicts = [r for r in results if r.phase in ("desk", "paced")]
    for r in verdicts:
        q = r.quotes()
        ok = q.per_second >= TARGET_RATE and q.percentile(99) <= TARGET_P99_MS
        lines.append(
            f"target [{r.phase}] >= {TARGET_RATE:,.0f} quote submissions/s with p99 <= "
            f"{TARGET_P99_MS:.0f} ms: {q.per_second:,.0f}/s, p99 {_ms(q.percentile(99))} ms -> "
            f"{'met' if ok else 'MISSED'}"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def workdir(path: str | None) -> Iterator[Path]:
    if path:
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        yield p
        return
    p = Path(tempfile.mkdtemp(prefix="fixbridge-locust-"))
    try:
        yield p
    finally:
        shutil.rmtree(p, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m load.run_locust",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--users", type=int, default=16, help="locust users per phase (desk users)")
    p.add_argument("--duration", type=int, default=20, help="measured seconds per phase")
    p.add_argument("--warmup", type=int, default=3, help="uncounted seconds after spawning")
    p.add_argument(
        "--rate",
        type=float,
        default=TARGET_RATE,
        help="quote submissions/s offered in the paced phase",
    )
    p.add_argument("--processes", type=int, default=1, help="locust processes (--processes)")
    p.add_argument("--rfqs-per-user", type=int, default=32, help="seeded RFQs per desk user")
    p.add_argument("--fix-rfq-rate", type=float, default=20, help="FIX QuoteRequests/s")
    p.add_argument("--pin", action="store_true", help="server on CPU 0, locust on CPU 1")
    p.add_argument("--phases", default=",".join(PHASES), help=f"subset of {','.join(PHASES)}")
    p.add_argument("--work-dir", help="keep configs, logs and locust stats here")
    p.add_argument(
        "--ablation",
        action="store_true",
        help="then the desk phase against gateways with parts left out (load.ablated_gateway)",
    )
    p.add_argument("--serve-bare-http", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.phases = [x for x in args.phases.split(",") if x]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        p.error(f"unknown phase(s) {sorted(unknown)}; choose from {', '.join(PHASES)}")
    if args.users < 1 or args.duration <= 0 or args.warmup < 0 or args.processes < 1:
        p.error("--users and --processes must be >= 1, --duration > 0, --warmup >= 0")
    if args.rfqs_per_user < 1 or args.rate <= 0 or args.fix_rfq_rate <= 0:
        p.error("--rfqs-per-user, --rate and --fix-rfq-rate must be positive")
    if seeded_per_desk(args) > MAX_DESK_RFQS:
        p.error(
            f"--rfqs-per-user x desk users per desk must stay <= {MAX_DESK_RFQS}: each desk "
            "user reads every seeded RFQ in one GET /desk/rfqs"
        )
    if args.pin and (os.cpu_count() or 1) < 2:
        p.error("--pin needs two CPUs")
    args.server_cpu, args.locust_cpu = (0, 1) if args.pin else (None, None)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_bare_http:
        serve_bare_http(args.serve_bare_http)
        return 0
    with workdir(args.work_dir) as work:
        try:
            results = run(args, work, lambda text: print(text, file=sys.stderr, flush=True))
        except (RuntimeError, OSError, httpx.HTTPError) as exc:
            print(f"run_locust: {exc}", file=sys.stderr)
            return 1
    print(report(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
