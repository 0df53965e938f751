"""OTC path benchmark, in process: FIX RFQ in -> 3 signed quotes out -> FIX accept -> trade + AE.

    python -m load.bench_otc [--iterations 5000] [--warmup 500]

What the gateway does for one RFQ, minus sockets and the audit/database sinks, on one thread:

* ``rfq``     the client's QuoteRequest (R) from wire text: QuickFIX parses it with the gateway's
              dictionary, ``to_raw``, ``rfq_inbound.decode_client``, ``NegotiationService.submit``
              (engine built by ``gateway.negotiation.engine_for``; routed to three desks);
* ``quote``   each desk's SubmitQuote (canonicalised, hashed, Ed25519-signed) and, in the
              service's sink as in ``GatewayApplication.rfq_sink``, the Quote (S) for the client:
              ``encode_for_client`` then ``gateway.fix.convert.OutboundBuilder`` and ``toString``;
* ``accept``  the client's QuoteResponse (AJ, hit the best offer) from wire text, decoded the same
              way, submitted, and the ExecutionReport, TradeCaptureReport (AE) and the losers'
              QuoteStatusReports (AI) encoded to FIX;
* ``path``    rfq + 3 quotes + accept for one RFQ.

The client side (reading each S to pick the best offer, building the AJ) is untimed and checks
that every S decodes and every path ends with an ER and an AE. Like the gateway, the service
keeps every RFQ (no archiving); ``gc.freeze()`` and the gateway's GC thresholds are applied after
set-up, as ``fixbridge run`` does.

Baseline, same run and interleaved RFQ by RFQ: ``core`` is the same commands submitted straight
to a second service (no FIX parsing or encoding), i.e. what the FIX edge adds on top of the core.

Target: ``path`` p99 <= 5 ms.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import quickfix as fix

from fixspec.codec import SOH, RawMessage
from fixspec.messages import Side
from gateway.config import Config
from gateway.fix import rfq_client, rfq_inbound, rfq_outbound
from gateway.fix.application import CLIENT_AUDIENCES
from gateway.fix.convert import OutboundBuilder, to_raw
from gateway.fix.dictionary import write_dictionary
from gateway.negotiation import NegotiationService, engine_for
from load.stats import latency_header, latency_row, percentile
from otc.negotiation import (
    AcceptQuote,
    AcceptVia,
    DeskKeyring,
    LegRequest,
    QuoteTerms,
    SubmitQuote,
    SubmitRfq,
    generate_desk_key,
)
from otc.negotiation import events as ev

PATH_TARGET_US = 5_000.0
GATEWAY, CLIENT = "FIXBRIDGE", "BENCHCLIENT"
DESKS = ("DESK_A", "DESK_B", "DESK_C")
SYMBOL = "BTC-27DEC26-100000-C"
QTY = Decimal(10)


def bench_config() -> Config:
    return Config.model_validate(
        {
            "otc": {"desks": list(DESKS), "routing": {CLIENT: {"*": list(DESKS)}}},
            "sessions": [{"comp_id": CLIENT}],
        }
    )


def wire(raw: RawMessage, seq: int, sender: str = CLIENT, target: str = GATEWAY) -> str:
    """``raw`` as the client puts it on the wire (header, BodyLength, CheckSum)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")
    body = f"35={raw.msg_type}{SOH}49={sender}{SOH}56={target}{SOH}34={seq}{SOH}52={stamp}{SOH}"
    body += "".join(f"{tag}={value}{SOH}" for tag, value in raw.fields if tag != 35)
    text = f"8=FIX.4.4{SOH}9={len(body)}{SOH}{body}"
    return f"{text}10={sum(text.encode('latin-1')) % 256:03d}{SOH}"


class FixEdge:
    """The gateway's FIX side of the negotiation, socket-free: what ``GatewayApplication._rfq``
    and ``rfq_sink`` do, with ``toString`` standing in for ``Session.sendToTarget``."""

    def __init__(self, service: NegotiationService, dictionary: fix.DataDictionary) -> None:
        self.service = service
        self.dictionary = dictionary
        self.build = OutboundBuilder(dictionary)
        self.answering: RawMessage | None = None
        self.sent: list[str] = []
        service.sinks.append(self.sink)

    def receive(self, text: str) -> list[ev.Event]:
        raw = to_raw(fix.Message(text, self.dictionary, False))
        command = rfq_inbound.decode_client(raw, CLIENT, self.service)
        self.answering = raw
        try:
            return self.service.submit(command)
        finally:
            self.answering = None

    def sink(self, events: list[ev.Event]) -> None:
        for event in events:
            if event.audience not in CLIENT_AUDIENCES:
                continue
            rfq = self.service.rfq_record(ev.rfq_id_of(event))
            for msg_type, fields in rfq_outbound.encode_for_client(
                event, rfq=rfq, answering=self.answering
            ):
                self.sent.append(self.build(msg_type, fields).toString())

    def take(self) -> list[RawMessage]:
        out = [RawMessage.parse(text) for text in self.sent]
        self.sent.clear()
        return out


def build_service() -> NegotiationService:
    keyring = DeskKeyring({d: generate_desk_key() for d in DESKS})
    return NegotiationService(engine_for(bench_config(), keyring), sinks=[])


@dataclass
class PathTimes:
    rfq: list[int] = field(default_factory=list)
    quote: list[int] = field(default_factory=list)
    accept: list[int] = field(default_factory=list)
    path: list[int] = field(default_factory=list)
    path_cpu: list[int] = field(default_factory=list)  # this thread's CPU time for the path


def _terms(i: int) -> QuoteTerms:
    bid = Decimal("4100") + 10 * i
    return QuoteTerms(datetime.now(UTC) + timedelta(seconds=60), bid, bid + 200)


def _rfq_id(events: list[ev.Event], n: int) -> str:
    for e in events:
        if isinstance(e, ev.RfqAcknowledged):
            return e.rfq.rfq_id
    raise RuntimeError(f"RFQ {n} was not acknowledged: {events!r}")


def _hit(n: int, quote_id: str, quote_hash: str) -> AcceptQuote:
    """The client lifts the offer (QuoteResponse 694=1) of ``quote_id``."""
    return AcceptQuote(CLIENT, quote_id, f"HIT-{n}", AcceptVia.QUOTE_RESPONSE, Side.BUY, quote_hash)


def _traded(events: list[ev.Event], n: int) -> None:
    if not any(isinstance(e, ev.TradeCaptured) for e in events):
        raise RuntimeError(f"RFQ {n} did not trade: {events[-1]!r}")


class Stopwatch:
    """Wall-clock and this thread's CPU nanoseconds over the timed regions of one path; on a
    shared machine the CPU figure shows what the code costs when preemption inflates wall time."""

    __slots__ = ("wall", "cpu", "last", "_wall0", "_cpu0")

    def __init__(self) -> None:
        self.wall = self.cpu = self.last = 0

    def __enter__(self) -> Stopwatch:
        self._cpu0 = time.thread_time_ns()
        self._wall0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter_ns()
        self.cpu += time.thread_time_ns() - self._cpu0
        self.last = wall - self._wall0
        self.wall += self.last


class FixDriver:
    """RFQ -> quotes -> accept -> trade, entering and leaving through FIX."""

    def __init__(self, dictionary: fix.DataDictionary) -> None:
        self.edge = FixEdge(build_service(), dictionary)
        self.times = PathTimes()
        self.seq = 1
        self.messages_out = 0

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def step(self, n: int) -> None:
        edge, times, watch = self.edge, self.times, Stopwatch()
        rfq = SubmitRfq(CLIENT, f"QR-{n}", (LegRequest(SYMBOL, Side.BUY),), QTY)
        text = wire(rfq_client.encode_client_rfq(rfq), self._next_seq())
        with watch:
            events = edge.receive(text)
        times.rfq.append(watch.last)
        rfq_id = _rfq_id(events, n)
        edge.take()  # nothing for the client: RfqAcknowledged is desk-side
        for i, desk in enumerate(DESKS):
            cmd = SubmitQuote(desk, rfq_id, _terms(i))
            with watch:
                edge.service.submit(cmd)
            times.quote.append(watch.last)
        quotes = [rfq_client.decode_quote(m) for m in edge.take() if m.msg_type == "S"]
        if len(quotes) != len(DESKS):
            raise RuntimeError(f"RFQ {n}: the client got {len(quotes)} quotes, not {len(DESKS)}")
        best = min(quotes, key=lambda q: q.offer_px or Decimal("Infinity"))
        hit = _hit(n, best.quote_id, best.quote_hash or "")
        order = rfq_client.encode_quote_response(hit, symbol=best.symbol, cl_ord_id=f"CL-{n}")
        text = wire(order, self._next_seq())
        with watch:
            events = edge.receive(text)
        _traded(events, n)
        times.accept.append(watch.last)
        times.path.append(watch.wall)
        times.path_cpu.append(watch.cpu)
        types = [m.msg_type for m in edge.take()]
        if "8" not in types or "AE" not in types:
            raise RuntimeError(f"RFQ {n}: the client got {types}, no ExecutionReport or AE")
        self.messages_out += len(types) + len(quotes)


class CoreDriver:
    """The same commands straight into a service: no FIX parsing or encoding (the baseline)."""

    def __init__(self) -> None:
        self.service = build_service()
        self.times = PathTimes()

    def step(self, n: int) -> None:
        service, times, watch = self.service, self.times, Stopwatch()
        rfq = SubmitRfq(CLIENT, f"QR-{n}", (LegRequest(SYMBOL, Side.BUY),), QTY)
        with watch:
            events = service.submit(rfq)
        times.rfq.append(watch.last)
        rfq_id = _rfq_id(events, n)
        sealed = []
        for i, desk in enumerate(DESKS):
            cmd = SubmitQuote(desk, rfq_id, _terms(i))
            with watch:
                events = service.submit(cmd)
            times.quote.append(watch.last)
            sealed += [e.sealed for e in events if isinstance(e, ev.QuoteToClient)]
        best = min(sealed, key=lambda s: s.quote.offer_px or Decimal("Infinity"))
        hit = _hit(n, best.quote.quote_id, best.quote_hash)
        with watch:
            events = service.submit(hit)
        _traded(events, n)
        times.accept.append(watch.last)
        times.path.append(watch.wall)
        times.path_cpu.append(watch.cpu)


@dataclass
class BenchResult:
    iterations: int
    fix: PathTimes
    core: PathTimes
    wall_s: float
    messages_out: int
    gen2_collections: int


def run_benchmark(iterations: int = 5_000, warmup: int = 500, progress=None) -> BenchResult:
    if iterations < 1 or warmup < 0:
        raise ValueError("iterations must be >= 1, warmup >= 0")
    say = progress or (lambda _text: None)
    with tempfile.TemporaryDirectory(prefix="bench-otc-") as tmp:
        dictionary = fix.DataDictionary(str(write_dictionary(Path(tmp))))
    fix_driver, core_driver = FixDriver(dictionary), CoreDriver()
    gc.collect()
    gc.freeze()  # as `fixbridge run` does once started
    gc.set_threshold(50_000, 20, 50)
    say(f"{warmup} warm-up + {iterations} RFQs, FIX path and core alone, interleaved")
    for n in range(warmup):
        fix_driver.step(n)
        core_driver.step(n)
    fix_driver.times, core_driver.times = PathTimes(), PathTimes()
    fix_driver.messages_out = 0
    gen2 = gc.get_stats()[2]["collections"]
    started = time.perf_counter()
    for n in range(warmup, warmup + iterations):
        fix_driver.step(n)
        core_driver.step(n)
    wall = time.perf_counter() - started
    gen2 = gc.get_stats()[2]["collections"] - gen2
    return BenchResult(
        iterations, fix_driver.times, core_driver.times, wall, fix_driver.messages_out, gen2
    )


def _row(name: str, values: list[int]) -> str:
    return latency_row(name, values, 40)


def report(r: BenchResult) -> str:
    f, c = r.fix, r.core
    p99 = percentile(f.path, 99) / 1_000
    mean_fix = sum(f.path) / len(f.path) / 1e9
    mean_core = sum(c.path) / len(c.path) / 1e9
    return "\n".join(
        [
            f"OTC path in process: {r.iterations} RFQs, 3 desks each (firm signed two-way quotes), "
            "best offer hit by QuoteResponse",
            latency_header("step", 40),
            _row("rfq: R wire -> decode -> submit", f.rfq),
            _row("quote: submit (signed) -> S encoded", f.quote),
            _row("accept: AJ wire -> trade -> ER+AE+AI", f.accept),
            _row("path: R -> 3 S -> AJ -> ER + AE", f.path),
            _row("path, this thread's CPU time", f.path_cpu),
            "baseline (same run): the same commands, core alone (no FIX):",
            _row("rfq", c.rfq),
            _row("quote (signed)", c.quote),
            _row("accept", c.accept),
            _row("path", c.path),
            _row("path, this thread's CPU time", c.path_cpu),
            f"FIX edge adds {(percentile(f.path, 50) - percentile(c.path, 50)) / 1_000:,.1f} µs "
            f"at p50 per path ({r.messages_out / r.iterations:.1f} FIX messages out per RFQ)",
            f"throughput, one thread, timed work only: {1 / mean_fix:,.0f} paths/s with FIX "
            f"({5 / mean_fix:,.0f} commands/s), {1 / mean_core:,.0f} paths/s core alone; "
            f"wall {r.wall_s:.1f} s for both incl. untimed client side",
            f"gen-2 GC collections during the timed paths: {r.gen2_collections} "
            "(gc.freeze() + gateway thresholds; every RFQ stays in memory, as in the gateway)",
            f"target path p99 <= {PATH_TARGET_US:,.0f} µs: {p99:,.1f} µs -> "
            f"{'met' if p99 <= PATH_TARGET_US else 'MISSED'}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m load.bench_otc",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--iterations", type=int, default=5_000, help="timed RFQ->trade paths")
    p.add_argument("--warmup", type=int, default=500, help="untimed RFQs first")
    args = p.parse_args(argv)
    try:
        result = run_benchmark(
            args.iterations,
            args.warmup,
            progress=lambda text: print(text, file=sys.stderr, flush=True),
        )
    except (RuntimeError, ValueError) as exc:
        print(f"bench_otc: {exc}", file=sys.stderr)
        return 1
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
