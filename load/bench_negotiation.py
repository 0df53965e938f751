"""Negotiation core benchmark: RFQ -> signed quotes -> accept -> trade capture, in process.

    python -m load.bench_negotiation [--iterations 5000] [--desks 3] [--warmup 500]
        [--keep-history]

One :class:`~otc.negotiation.NegotiationEngine` serves the whole run (so its book grows as it
would over a day). Each iteration: the client submits an RFQ routed to ``--desks`` desks, every
desk submits a firm two-way quote (canonicalised, hashed, Ed25519-signed), and the client accepts
the best offer, which captures one TradeCapture and sends DoneAway/Cover to the losers. Each
``engine.handle`` call is timed with ``perf_counter_ns``; command construction is outside the
timed regions. Paths reported:

* ``rfq``    SubmitRfq -> RfqAcknowledged + RfqToDesk per desk
* ``quote``  one SubmitQuote -> signed QuoteToClient
* ``accept`` AcceptQuote -> TradeCaptured (+ DoneAway / Cover)
* ``path``   the sum for one RFQ: rfq + every quote + accept (the in-process RFQ -> trade path)

After each trade the RFQ is confirmed and archived (untimed), as the edge would once the trade is
persisted; ``--keep-history`` skips that to show what an ever-growing book costs in GC pauses.

Baselines measured in the same run, so the reader sees what the core adds:

* ``ed25519 sign+verify``  the bare crypto cost of one canonical quote (what a signed quote
  costs before any engine logic), and ``canonical+sha256`` (the hashing alone);
* ``path, signing off``    the same path with a keyring of None (hash still computed).

Target: ``path`` p99 <= 5 ms (the FIX encoding of the AE is added later by the gateway).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fixspec.messages import Side
from load.stats import latency_header, latency_row, percentile
from otc.negotiation import (
    AcceptQuote,
    AcceptVia,
    ConfirmTrade,
    DeskKeyring,
    LegRequest,
    NegotiationEngine,
    QuoteTerms,
    RoutingTable,
    SealedQuote,
    SubmitQuote,
    SubmitRfq,
    canonical_quote_bytes,
    generate_desk_key,
    quote_hash,
    sign_quote,
    verify_quote,
)
from otc.negotiation.events import QuoteToClient, RfqAcknowledged, TradeCaptured

PATH_TARGET_US = 5_000.0
CLIENT = "BENCH-CLIENT"
SYMBOL = "BTC-27DEC26-100000-C"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class PathTimes:
    rfq: list[int] = field(default_factory=list)
    quote: list[int] = field(default_factory=list)
    accept: list[int] = field(default_factory=list)
    path: list[int] = field(default_factory=list)
    wall_s: float = 0.0
    trades: int = 0


@dataclass
class BenchResult:
    iterations: int
    desks: int
    signed: PathTimes
    unsigned: PathTimes
    sign_verify: list[int]
    hash_only: list[int]
    gen2_collections: int
    archived: bool


def _engine(desks: list[str], signed: bool) -> NegotiationEngine:
    routing = RoutingTable.from_config({CLIENT: {"*": desks}})
    keyring = DeskKeyring({d: generate_desk_key() for d in desks}) if signed else None
    return NegotiationEngine(routing, keyring)


def _offer(sealed: SealedQuote) -> Decimal:
    offer = sealed.quote.offer_px
    if offer is None:
        raise RuntimeError(f"quote {sealed.quote.quote_id} has no offer")
    return offer


class _Driver:
    """One engine and its timings; drives one RFQ to a trade per :meth:`step`."""

    def __init__(self, desks: int, *, signed: bool, archive: bool = True) -> None:
        self.archive = archive
        self.desk_ids = [f"DESK-{i}" for i in range(desks)]
        self.engine = _engine(self.desk_ids, signed)
        self.times = PathTimes()
        self.now = START
        self.steps = 0

    def step(self, n: int) -> None:
        clock = time.perf_counter_ns
        engine, times, tick = self.engine, self.times, timedelta(milliseconds=1)
        started = clock()
        self.now += tick
        rfq_cmd = SubmitRfq(CLIENT, f"QR-{n}", (LegRequest(SYMBOL, Side.BUY),), Decimal("10"))
        t0 = clock()
        events = engine.handle(rfq_cmd, self.now)
        t1 = clock()
        rfq_id = next(e for e in events if isinstance(e, RfqAcknowledged)).rfq.rfq_id
        times.rfq.append(t1 - t0)
        path_ns = t1 - t0
        sealed = []
        for i, desk in enumerate(self.desk_ids):
            self.now += tick
            bid = Decimal("0.0500") + Decimal(i) / 10_000
            terms = QuoteTerms(self.now + timedelta(seconds=30), bid, bid + Decimal("0.0050"))
            cmd = SubmitQuote(desk, rfq_id, terms)
            t0 = clock()
            events = engine.handle(cmd, self.now)
            t1 = clock()
            sealed.append(next(e for e in events if isinstance(e, QuoteToClient)).sealed)
            times.quote.append(t1 - t0)
            path_ns += t1 - t0
        best = min(sealed, key=_offer)
        self.now += tick
        accept = AcceptQuote(
            CLIENT, best.quote.quote_id, f"ORD-{n}", AcceptVia.NEW_ORDER, Side.BUY, best.quote_hash
        )
        t0 = clock()
        events = engine.handle(accept, self.now)
        t1 = clock()
        if not any(isinstance(e, TradeCaptured) for e in events):
            raise RuntimeError(f"iteration {n} did not trade: {events[-1]!r}")
        times.accept.append(t1 - t0)
        times.path.append(path_ns + t1 - t0)
        times.trades += 1
        if self.archive:  # what the edge does once the trade is affirmed and persisted
            trade_id = next(e for e in events if isinstance(e, TradeCaptured)).trade.trade_id
            engine.handle(ConfirmTrade(trade_id), self.now)
            engine.archive(rfq_id)
        times.wall_s += (clock() - started) / 1e9
        self.steps += 1

    def reset_times(self) -> None:
        self.times = PathTimes()


def run_paths(
    iterations: int, desks: int, warmup: int, archive: bool = True
) -> tuple[PathTimes, PathTimes, int]:
    """Drive ``warmup + iterations`` RFQs to a trade on a signing and a non-signing engine,
    alternating RFQ by RFQ so machine noise hits both alike; keep the last ``iterations``.
    Returns (signed, unsigned, gen-2 GC collections during the timed part)."""
    signed = _Driver(desks, signed=True, archive=archive)
    unsigned = _Driver(desks, signed=False, archive=archive)
    gen2_before = 0
    for n in range(warmup + iterations):
        if n == warmup:
            signed.reset_times()
            unsigned.reset_times()
            gen2_before = gc.get_stats()[2]["collections"]
        signed.step(n)
        unsigned.step(n)
    gen2 = gc.get_stats()[2]["collections"] - gen2_before
    for driver in (signed, unsigned):
        kept = len(driver.engine.trades())
        if kept != (0 if archive else driver.steps):
            raise RuntimeError(f"{kept} trades in memory after {driver.steps} RFQs")
    return signed.times, unsigned.times, gen2


def run_crypto_baseline(samples: int) -> tuple[list[int], list[int]]:
    """Bare cost of signing+verifying, and of canonicalising+hashing, one quote."""
    engine = _engine(["DESK-0"], signed=True)
    engine.handle(SubmitRfq(CLIENT, "QR-B", (LegRequest(SYMBOL, Side.BUY),), Decimal(10)), START)
    terms = QuoteTerms(START + timedelta(seconds=30), Decimal("0.05"), Decimal("0.055"))
    events = engine.handle(SubmitQuote("DESK-0", "RFQ-00000001", terms), START)
    quote = next(e for e in events if isinstance(e, QuoteToClient)).sealed.quote
    key = generate_desk_key()
    public = key.public_key()
    clock = time.perf_counter_ns
    sign_verify: list[int] = []
    hashing: list[int] = []
    for _ in range(samples):
        t0 = clock()
        signature = sign_quote(quote, key)
        ok = verify_quote(quote, signature, public)
        t1 = clock()
        quote_hash(quote)
        t2 = clock()
        if not ok:
            raise RuntimeError("signature did not verify")
        sign_verify.append(t1 - t0)
        hashing.append(t2 - t1)
    assert canonical_quote_bytes(quote)
    return sign_verify, hashing


def run_benchmark(
    iterations: int = 5_000,
    desks: int = 3,
    warmup: int = 500,
    progress: Callable[[str], None] | None = None,
    archive: bool = True,
) -> BenchResult:
    if iterations < 1 or desks < 1 or warmup < 0:
        raise ValueError("iterations and desks must be >= 1, warmup >= 0")
    say = progress or (lambda _text: None)
    say(f"paths: {warmup} warm-up + {iterations} RFQs x {desks} desks, signed and not")
    signed, unsigned, gen2 = run_paths(iterations, desks, warmup, archive)
    say("ed25519 baseline")
    sign_verify, hashing = run_crypto_baseline(iterations)
    return BenchResult(iterations, desks, signed, unsigned, sign_verify, hashing, gen2, archive)


def _row(name: str, values: list[int]) -> str:
    return latency_row(name, values, 32)


def report(result: BenchResult) -> str:
    s, u = result.signed, result.unsigned
    p99 = percentile(s.path, 99) / 1_000
    lines = [
        f"negotiation core, in process: {result.iterations} RFQs, {result.desks} desks each "
        "(firm two-way quotes, best offer lifted)",
        latency_header("path", 32),
        _row("rfq (SubmitRfq)", s.rfq),
        _row("quote (SubmitQuote, signed)", s.quote),
        _row("accept (-> TradeCaptured)", s.accept),
        _row("path rfq->quotes->trade", s.path),
        "baselines (same run):",
        _row("ed25519 sign+verify, 1 quote", result.sign_verify),
        _row("canonical JSON + sha256", result.hash_only),
        _row("quote, signing off", u.quote),
        _row("path, signing off", u.path),
        f"throughput: {s.trades / s.wall_s:,.0f} RFQ->trade paths/s signed, "
        f"{u.trades / u.wall_s:,.0f}/s signing off "
        f"({(1 + result.desks + 1) * s.trades / s.wall_s:,.0f} handle() calls/s signed; "
        "one core, command construction included)",
        f"gen-2 GC collections during the timed paths: {result.gen2_collections} (max includes "
        + (
            "them; each RFQ is confirmed and archived after its trade, untimed)"
            if result.archived
            else "them; --keep-history: every RFQ stays in memory, so the heap grows)"
        ),
        f"target path p99 <= {PATH_TARGET_US:,.0f} µs: {p99:,.1f} µs -> "
        f"{'met' if p99 <= PATH_TARGET_US else 'MISSED'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m load.bench_negotiation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--iterations", type=int, default=5_000, help="timed RFQ->trade paths")
    p.add_argument("--desks", type=int, default=3, help="desks quoting each RFQ")
    p.add_argument("--warmup", type=int, default=500, help="untimed RFQs first")
    p.add_argument(
        "--keep-history",
        action="store_true",
        help="do not confirm+archive each RFQ after its trade (memory and GC pauses grow)",
    )
    args = p.parse_args(argv)
    try:
        result = run_benchmark(
            args.iterations,
            args.desks,
            args.warmup,
            progress=lambda text: print(text, file=sys.stderr, flush=True),
            archive=not args.keep_history,
        )
    except (RuntimeError, ValueError) as exc:
        print(f"bench_negotiation: {exc}", file=sys.stderr)
        return 1
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
