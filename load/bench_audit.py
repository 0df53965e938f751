"""Audit log benchmark: durable appends/s and verified entries/s, against a raw fsync baseline.

    python -m load.bench_audit [--entries 60000] [--threads 64] [--producers 4] [--window 256]
        [--baseline-entries 5000] [--work-dir DIR]

Measured in one run, on the same file system (a temporary directory, or ``--work-dir``):

* baseline: one ``write()`` + ``fsync()`` (and, separately, ``fdatasync()``) per entry to a
  plain file, with lines of the same size as the audit entries: what durability costs without
  group commit;
* blocking appends: ``--threads`` threads each calling ``AuditLog.append`` (returns once the
  entry is durable); the group-commit batch is bounded by the number of waiting threads;
* pipelined appends: ``--producers`` threads using ``append_nowait`` and waiting for each
  receipt once ``--window`` entries are in flight, the way a gateway thread acknowledges a
  message only after its audit entry is durable without stalling the next message;
* export + verify: a full export of the pipelined log, then ``verify_bundle`` over it
  (every entry decoded, canonical form, hashes, chain, Merkle roots, signatures).

Payloads look like RFQ state changes (Decimal quantities and prices, an aware datetime), so
normalisation to canonical JSON is part of every append. Targets (issue): >= 20,000 durable
appends/s and >= 50,000 verified entries/s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from gateway.audit.export import export_bundle
from gateway.audit.keys import generate_signing_key
from gateway.audit.log import AuditLog
from gateway.audit.verify import verify_bundle

APPEND_TARGET = 20_000.0
VERIFY_TARGET = 50_000.0
_VALID_UNTIL = datetime(2025, 6, 27, 8, 0, tzinfo=UTC)


def payload(i: int) -> dict[str, object]:
    return {
        "rfq_id": f"RFQ-{i // 8:08d}",
        "quote_id": f"Q-{i:08d}",
        "client": "CLIENT1",
        "desk": "DESK-7",
        "side": "BUY",
        "instrument": "BTC-27JUN25-70000-C",
        "qty": Decimal("25"),
        "price": Decimal("0.0425"),
        "state": "QUOTED",
        "valid_until": _VALID_UNTIL,
    }


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class BenchResult:
    baseline_fsync: Rate
    baseline_fdatasync: Rate
    blocking: Rate
    blocking_batches: int
    pipelined: Rate
    pipelined_batches: int
    export: Rate
    verify: Rate
    checkpoints: int


def baseline(directory: Path, count: int, line: bytes, sync) -> Rate:  # noqa: ANN001
    """One write + one sync per entry: durability without group commit."""
    path = directory / f"baseline-{sync.__name__}.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(count):
            os.write(fd, line)
            sync(fd)
        seconds = time.perf_counter() - start
    finally:
        os.close(fd)
    path.unlink()
    return Rate(count, seconds)


def _open(directory: Path) -> AuditLog:
    generate_signing_key(directory)
    return AuditLog.open(directory)


def blocking(directory: Path, count: int, threads: int) -> tuple[Rate, int]:
    log = _open(directory)
    per_thread = count // threads
    barrier = threading.Barrier(threads + 1)

    def produce(worker: int) -> None:
        barrier.wait()
        base = worker * per_thread
        for i in range(base, base + per_thread):
            log.append("rfq.state", f"api:user{worker}", payload(i))

    workers = [threading.Thread(target=produce, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - start
    batches = log.stats["batches"]
    log.close()
    return Rate(per_thread * threads, seconds), batches


def pipelined(directory: Path, count: int, producers: int, window: int) -> tuple[Rate, int]:
    log = _open(directory)
    per_producer = count // producers
    barrier = threading.Barrier(producers + 1)

    def produce(worker: int) -> None:
        in_flight: deque = deque()
        barrier.wait()
        base = worker * per_producer
        for i in range(base, base + per_producer):
            in_flight.append(log.append_nowait("rfq.state", f"fix:session{worker}", payload(i)))
            if len(in_flight) >= window:
                in_flight.popleft().wait()
        while in_flight:
            in_flight.popleft().wait()

    workers = [threading.Thread(target=produce, args=(w,)) for w in range(producers)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - start
    batches = log.stats["batches"]
    log.close()
    return Rate(per_producer * producers, seconds), batches


def run_benchmark(
    *,
    entries: int = 60_000,
    threads: int = 64,
    producers: int = 4,
    window: int = 256,
    baseline_entries: int = 5_000,
    work_dir: Path | None = None,
) -> BenchResult:
    root = Path(tempfile.mkdtemp(prefix="bench-audit-", dir=work_dir))
    try:
        sample_dir = root / "sample"
        with _open(sample_dir) as log:
            log.append("rfq.state", "api:user0", payload(0))
        line = (sample_dir / "entries.jsonl").read_bytes()
        base_fsync = baseline(root, baseline_entries, line, os.fsync)
        base_fdatasync = baseline(root, baseline_entries, line, os.fdatasync)
        block, block_batches = blocking(root / "blocking", entries, threads)
        pipe, pipe_batches = pipelined(root / "pipelined", entries, producers, window)
        checkpoints = len((root / "pipelined" / "checkpoints.jsonl").read_bytes().splitlines())
        start = time.perf_counter()
        summary = export_bundle(root / "pipelined", root / "bundle")
        exported = Rate(summary.count, time.perf_counter() - start)
        start = time.perf_counter()
        report = verify_bundle(root / "bundle")
        verified = Rate(report.entries, time.perf_counter() - start)
        if not report.ok:
            raise RuntimeError(f"benchmark bundle does not verify: {report.problem}")
        return BenchResult(
            base_fsync,
            base_fdatasync,
            block,
            block_batches,
            pipe,
            pipe_batches,
            exported,
            verified,
            checkpoints,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(result: BenchResult, threads: int, producers: int, window: int) -> str:
    base = result.baseline_fsync.per_second

    def row(name: str, rate: Rate, extra: str = "") -> str:
        return (
            f"  {name:<44} {rate.per_second:>10,.0f} /s  ({rate.count:,} in {rate.seconds:.2f} s,"
            f" {rate.per_second / base:5.1f}x baseline){extra}"
        )

    best = max(result.blocking.per_second, result.pipelined.per_second)
    lines = [
        "audit log benchmark (same run, same file system)",
        row("baseline: write+fsync per entry", result.baseline_fsync),
        row("baseline: write+fdatasync per entry", result.baseline_fdatasync),
        row(
            f"durable appends, blocking append(), {threads} threads",
            result.blocking,
            f", avg batch {result.blocking.count / max(result.blocking_batches, 1):.1f}",
        ),
        row(
            f"durable appends, pipelined, {producers} x window {window}",
            result.pipelined,
            f", avg batch {result.pipelined.count / max(result.pipelined_batches, 1):.1f}",
        ),
        row("export (full log, verified while copying)", result.export),
        row("verify_bundle (entries verified)", result.verify),
        f"  checkpoints signed during the pipelined run: {result.checkpoints}",
        f"  target durable appends >= {APPEND_TARGET:,.0f}/s: best {best:,.0f}/s "
        f"-> {'met' if best >= APPEND_TARGET else 'NOT met'} "
        f"(blocking {'met' if result.blocking.per_second >= APPEND_TARGET else 'not met'})",
        f"  target verified entries >= {VERIFY_TARGET:,.0f}/s: {result.verify.per_second:,.0f}/s "
        f"-> {'met' if result.verify.per_second >= VERIFY_TARGET else 'NOT met'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=60_000)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--baseline-entries", type=int, default=5_000)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run_benchmark(
        entries=args.entries,
        threads=args.threads,
        producers=args.producers,
        window=args.window,
        baseline_entries=args.baseline_entries,
        work_dir=args.work_dir,
    )
    print(report(result, args.threads, args.producers, args.window))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
