"""Mass quote benchmark: a desk quotes over its WebSocket, 100 quotes a message, against a running
gateway, and a FIX client reads every Quote (S) the desk's quotes put in front of it.

    python -m load.bench_mass_quote [--rfqs 1000] [--rounds 6] [--warmup 1] [--in-flight 4]
        [--rest-quotes 500] [--pin] [--work-dir DIR]

Starts ``fixbridge run`` (the locust run's configuration: three desks, client ``LOADCLIENT``,
clearing off), logs the FIX client on, and seeds ``--rfqs`` RFQs from it (QuoteRequest R); desk
DESK_A reads them off its stream. Then, in phases:

* ``ws``    every round quotes every RFQ once, in mass quotes of 100 (the first round new
            quotes, later ones replace the desk's live quote), as fast as acknowledged with at
            most ``--in-flight`` messages unanswered; ``--warmup`` rounds are not counted;
* ``rest``  baseline: ``--rest-quotes`` of the same quotes, one ``PUT /desk/quotes/{id}`` at a
            time (what a desk does without mass quotes);
* ``echo``  baseline: a bare FastAPI + uvicorn WebSocket that answers each mass quote with an
            ack of the same shape (100 results), nothing behind it: the transport's own cost.

The client timestamps each S as it reads it; a quote's latency runs from sending the desk's
message (or request) that carried it to its S at the client (each round's bid is its own price,
so an S is matched to the message that caused it). Reported: quotes/s sustained (accepted quotes
over the measured rounds, first send to last S), p50/p99/max latency, and the gateway's CPU per
quote summed over its process tree. With ``--pin`` the servers run on CPU 0, the benchmark on
CPU 1.

Target: >= 5,000 quotes/s, each signed, audited and sent as an S; p99 desk message -> S <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect as ws_connect

from fixspec.messages import Side
from gateway.fix import rfq_client
from gateway.fix.front import free_loopback_port as free_port
from load.fastclient import FastSession, field_value, fix_stamp, frame
from load.procs import start_ready, terminate
from load.run_locust import (
    CLIENT,
    COMP_ID,
    SYMBOL,
    Server,
    Tokens,
    TreeCpu,
    start_gateway,
    workdir,
)
from load.stats import percentile
from otc.negotiation.commands import LegRequest, SubmitRfq

BATCH = 100
DESK = "DESK_A"
ECHO_READY = "bare websocket ready"
TARGET_RATE, TARGET_P99_MS = 5_000.0, 20.0


# --- the FIX client --------------------------------------------------------------------------


class QuoteReader:
    """The client's session: sends the RFQs, then reads everything the gateway sends on a
    thread of its own, timestamping each Quote (S) by (QuoteReqID, BidPx)."""

    def __init__(self, port: int) -> None:
        self.session = FastSession("127.0.0.1", port, CLIENT, COMP_ID)
        self.session.logon()
        self.arrivals: dict[tuple[bytes, bytes], int] = {}
        self.quotes = 0
        self.other = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fix-reader", daemon=True)

    def send_rfqs(self, count: int) -> list[str]:
        run = time.strftime("%H%M%S")  # a reused work directory keeps earlier runs' RFQs
        req_ids = [f"mq-{run}-{i:06d}" for i in range(count)]
        out = []
        for req_id in req_ids:
            raw = rfq_client.encode_client_rfq(
                SubmitRfq(CLIENT, req_id, (LegRequest(SYMBOL, Side.BUY),), Decimal(10)),
                details=False,
            )
            body = b"35=R\x0149=%s\x0156=%s\x0134=%d\x0152=%s\x01" % (
                CLIENT.encode(),
                COMP_ID.encode(),
                self.session.next_seq,
                fix_stamp(),
            )
            body += b"".join(b"%d=%s\x01" % (t, v.encode()) for t, v in raw.fields if t != 35)
            self.session.next_seq += 1
            out.append(frame(body))
        self.session.sock.sendall(b"".join(out))
        return req_ids

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        session = self.session
        try:
            while not self._stop.is_set():
                try:
                    msg = session._next_message(time.monotonic() + 0.5)
                except TimeoutError:
                    continue
                now = time.perf_counter_ns()
                msg_type = field_value(msg, b"35")
                if msg_type == b"S":
                    key = (field_value(msg, b"131") or b"", field_value(msg, b"132") or b"")
                    self.arrivals[key] = now
                    self.quotes += 1
                elif not session._answer_admin(msg, msg_type):
                    self.other += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the benchmark
            self.error = exc

    def wait_for(self, quotes: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.quotes < quotes and time.monotonic() < deadline and self.error is None:
            time.sleep(0.005)
        if self.error is not None:
            raise RuntimeError(f"FIX client failed: {self.error!r}")
        if self.quotes < quotes:
            raise RuntimeError(f"the client saw {self.quotes} quotes of {quotes} expected")

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(5)
        self.session.logout()


# --- the desk over its WebSocket --------------------------------------------------------------


@dataclass
class Phase:
    name: str
    quotes: int = 0  # accepted and measured
    refused: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    latencies_us: list[float] = field(default_factory=list)
    messages: int = 0

    @property
    def per_second(self) -> float:
        return self.quotes / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_quote(self) -> float:
        return 1e6 * self.cpu_seconds / self.quotes if self.quotes else 0.0

    def latency_ms(self, p: float) -> float:
        return percentile(self.latencies_us, p) / 1000 if self.latencies_us else 0.0


def bid_of(round_no: int) -> str:
    return f"{4100 + round_no}"


def quote_item(rfq_id: str, round_no: int, live: str | None) -> dict:
    bid = 4100 + round_no
    item = {"rfq_id": rfq_id, "bid_px": str(bid), "offer_px": str(bid + 200)}
    item["valid_for_ms"] = 600_000  # type: ignore[assignment]
    if live is not None:
        item["replaces_quote_id"] = live
    return item


async def desk_rfqs(
    url: str, token: str, count: int, connected: asyncio.Event, timeout: float = 120
) -> dict[str, str]:
    """QuoteReqID -> RFQ id for the ``count`` RFQs the stream announces to the desk; sets
    ``connected`` once the stream is open (send the RFQs after that)."""
    found: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with ws_connect(url, additional_headers=headers, max_size=None) as ws:
        connected.set()
        while len(found) < count:
            event = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if event.get("event") == "RfqToDesk":
                found[event["rfq"]["quote_req_id"]] = event["rfq"]["rfq_id"]
    return found


async def mass_quote_rounds(
    url: str,
    token: str | None,
    rfqs: list[tuple[str, str]],
    rounds: int,
    in_flight: int,
    live: dict[str, str],
    sent_at: dict[tuple[bytes, bytes], int],
    first_round: int,
) -> tuple[int, int, int]:
    """Quote every RFQ ``rounds`` times in messages of ``BATCH``, at most ``in_flight``
    unanswered; ``live`` (rfq id -> live quote id) is read for replacements and updated from
    the acks. Returns (accepted, refused, messages)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    chunks = [rfqs[i : i + BATCH] for i in range(0, len(rfqs), BATCH)]
    if len(chunks) < in_flight:
        raise ValueError(f"--rfqs must be at least {in_flight * BATCH} for {in_flight} in flight")
    accepted = refused = 0
    slots = asyncio.Semaphore(in_flight)
    pending: dict[str, list[tuple[str, str]]] = {}
    total = rounds * len(chunks)
    done = asyncio.Event()
    async with ws_connect(url, additional_headers=headers, max_size=None) as ws:

        async def read() -> None:
            nonlocal accepted, refused
            answered = 0
            async for text in ws:
                reply = json.loads(text)
                kind = reply.get("type")
                if kind == "error":
                    raise RuntimeError(f"mass quote refused: {reply}")
                if kind != "mass_quote_ack":
                    continue  # the stream's own events
                chunk = pending.pop(reply["id"])
                for (rfq_id, _), result in zip(chunk, reply["results"], strict=True):
                    if result["status"] == "accepted":
                        live[rfq_id] = result["quote_id"]
                        accepted += 1
                    else:
                        refused += 1
                slots.release()
                answered += 1
                if answered == total:
                    done.set()
                    return

        reader = asyncio.create_task(read())
        n = 0
        for r in range(rounds):
            round_no = first_round + r
            bid = bid_of(round_no).encode()
            for chunk in chunks:
                await slots.acquire()
                if reader.done():
                    reader.result()
                msg_id = f"m{round_no}-{n}"
                n += 1
                pending[msg_id] = chunk
                body = {
                    "type": "mass_quote",
                    "id": msg_id,
                    "quotes": [quote_item(rid, round_no, live.get(rid)) for rid, _ in chunk],
                }
                text = json.dumps(body)
                now = time.perf_counter_ns()
                for _, req_id in chunk:
                    sent_at[(req_id.encode(), bid)] = now
                await ws.send(text)
        await asyncio.wait_for(reader, 120)
    return accepted, refused, total


def latencies(
    sent_at: dict[tuple[bytes, bytes], int], arrivals: dict[tuple[bytes, bytes], int]
) -> tuple[list[float], int]:
    """Microseconds from send to S for each sent quote; and the last S's arrival."""
    out, last = [], 0
    for key, t0 in sent_at.items():
        t1 = arrivals.get(key)
        if t1 is None:
            raise RuntimeError(f"no Quote reached the client for {key!r}")
        out.append((t1 - t0) / 1000)
        last = max(last, t1)
    return out, last


def run_ws_phase(
    gw: Server, tokens: Tokens, reader: QuoteReader, rfqs: list[tuple[str, str]], args
) -> Phase:
    url = f"ws://127.0.0.1:{gw.http_port}/desk/stream"
    live: dict[str, str] = {}
    token = tokens.desks[DESK]
    warm_sent: dict[tuple[bytes, bytes], int] = {}
    if args.warmup:
        seen = reader.quotes
        asyncio.run(
            mass_quote_rounds(url, token, rfqs, args.warmup, args.in_flight, live, warm_sent, 0)
        )
        reader.wait_for(seen + args.warmup * len(rfqs))
    sent_at: dict[tuple[bytes, bytes], int] = {}
    cpu = TreeCpu(gw.proc.pid)
    seen = reader.quotes
    cpu0, t0 = cpu.seconds(), time.perf_counter_ns()
    accepted, refused, messages = asyncio.run(
        mass_quote_rounds(url, token, rfqs, args.rounds, args.in_flight, live, sent_at, args.warmup)
    )
    reader.wait_for(seen + accepted)
    cpu1 = cpu.seconds()
    lat, last = latencies(sent_at, reader.arrivals)
    return Phase("ws", accepted, refused, (last - t0) / 1e9, cpu1 - cpu0, lat, messages)


def run_rest_phase(
    gw: Server, tokens: Tokens, reader: QuoteReader, rfqs: list[tuple[str, str]], args
) -> Phase:
    """The same quotes one request at a time: each replaces the desk's live quote."""
    headers = {"Authorization": f"Bearer {tokens.desks[DESK]}"}
    listed = httpx.get(
        f"{gw.http}/desk/rfqs", params={"limit": 1000}, headers=headers, timeout=30
    ).json()
    live = {
        r["rfq"]["rfq_id"]: r["my_quotes"][0]["quote"]["quote_id"] for r in listed if r["my_quotes"]
    }
    targets = [(rid, req) for rid, req in rfqs if rid in live][: args.rest_quotes]
    round_no = args.warmup + args.rounds
    bid = bid_of(round_no).encode()
    sent_at: dict[tuple[bytes, bytes], int] = {}
    cpu = TreeCpu(gw.proc.pid)
    seen = reader.quotes
    with httpx.Client(base_url=gw.http, headers=headers, timeout=30) as http:
        cpu0, t0 = cpu.seconds(), time.perf_counter_ns()
        for rfq_id, req_id in targets:
            item = quote_item(rfq_id, round_no, None)
            del item["rfq_id"]
            sent_at[(req_id.encode(), bid)] = time.perf_counter_ns()
            r = http.put(f"/desk/quotes/{live[rfq_id]}", json=item)
            if r.status_code != 200:
                raise RuntimeError(f"REST quote refused: {r.status_code} {r.text}")
        reader.wait_for(seen + len(targets))
        cpu1 = cpu.seconds()
    lat, last = latencies(sent_at, reader.arrivals)
    return Phase("rest", len(targets), 0, (last - t0) / 1e9, cpu1 - cpu0, lat, len(targets))


# --- the bare WebSocket baseline ---------------------------------------------------------------


def serve_echo(port: int) -> None:
    """A bare FastAPI + uvicorn WebSocket, as the gateway runs them: each mass quote is parsed
    and answered with an ack of the same shape; no token, engine, signing, audit or FIX."""
    import uvicorn

    app = FastAPI()

    @app.websocket("/desk/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        n = 0
        try:
            while True:
                message = json.loads(await ws.receive_text())
                results = []
                for q in message["quotes"]:
                    n += 1
                    results.append(
                        {
                            "rfq_id": q["rfq_id"],
                            "status": "accepted",
                            "quote_id": f"Q-{n:08d}",
                            "quote_hash": "0" * 64,
                            "signature": "0" * 128,
                        }
                    )
                await ws.send_json(
                    {"type": "mass_quote_ack", "id": message["id"], "results": results}
                )
        except WebSocketDisconnect:
            pass

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    print(ECHO_READY, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.should_exit = True


def run_echo_phase(work: Path, rfqs: list[tuple[str, str]], args) -> Phase:
    port = free_port()
    argv = [sys.executable, "-m", "load.bench_mass_quote", "--serve-echo", str(port)]
    proc = start_ready("bare websocket", argv, ECHO_READY, work / "echo.stderr", _pin(args, 0))
    try:
        cpu = TreeCpu(proc.pid)
        url = f"ws://127.0.0.1:{port}/desk/stream"
        sent: dict[tuple[bytes, bytes], int] = {}
        asyncio.run(mass_quote_rounds(url, None, rfqs, 1, args.in_flight, {}, sent, 0))
        cpu0, t0 = cpu.seconds(), time.perf_counter_ns()
        accepted, refused, messages = asyncio.run(
            mass_quote_rounds(url, None, rfqs, args.rounds, args.in_flight, {}, {}, 1)
        )
        seconds = (time.perf_counter_ns() - t0) / 1e9
        return Phase("echo", accepted, refused, seconds, cpu.seconds() - cpu0, [], messages)
    finally:
        terminate(proc, 10)


# --- the run ------------------------------------------------------------------------------------


def _pin(args, cpu: int):
    if not args.pin:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


@dataclass
class Result:
    rfqs: int
    ws: Phase
    rest: Phase
    echo: Phase


def run_benchmark(args, work: Path) -> Result:
    if args.pin:
        os.sched_setaffinity(0, {1})
    tokens = Tokens.generate()
    gw = start_gateway(work / "gw", tokens, 0 if args.pin else None)
    try:
        reader = QuoteReader(gw.fix_port)
        try:
            url = f"ws://127.0.0.1:{gw.http_port}/desk/stream"
            seen = asyncio.new_event_loop()
            try:
                connected = asyncio.Event()
                task = seen.create_task(desk_rfqs(url, tokens.desks[DESK], args.rfqs, connected))
                seen.run_until_complete(asyncio.wait_for(connected.wait(), 60))
                seen.run_until_complete(asyncio.sleep(0.1))  # the stream subscribes on accept
                reader.send_rfqs(args.rfqs)
                by_req = seen.run_until_complete(task)
            finally:
                seen.close()
            reader.start()
            rfqs = sorted((rfq_id, req) for req, rfq_id in by_req.items())
            ws = run_ws_phase(gw, tokens, reader, rfqs, args)
            rest = run_rest_phase(gw, tokens, reader, rfqs, args)
        finally:
            reader.close()
    finally:
        code = gw.stop()
        if code not in (0, None):
            raise RuntimeError(f"gateway exited {code}: {(work / 'gw' / 'gateway.stderr')}")
    echo = run_echo_phase(work, rfqs, args)
    return Result(len(rfqs), ws, rest, echo)


def report(result: Result) -> str:
    ws, rest, echo = result.ws, result.rest, result.echo
    rows = [
        f"mass quote benchmark: {result.rfqs} RFQs, {BATCH} quotes a message",
        f"{'phase':<6} {'quotes':>8} {'refused':>7} {'quotes/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8} {'CPU us/quote':>13}",
    ]
    for p in (ws, rest, echo):
        lat = (
            f"{p.latency_ms(50):>8.2f} {p.latency_ms(99):>8.2f} {p.latency_ms(100):>8.2f}"
            if p.latencies_us
            else f"{'-':>8} {'-':>8} {'-':>8}"
        )
        rows.append(
            f"{p.name:<6} {p.quotes:>8} {p.refused:>7} {p.per_second:>10.0f} {lat} "
            f"{p.cpu_us_per_quote:>13.1f}"
        )
    rows.append(
        f"ws vs rest: {ws.per_second / rest.per_second if rest.per_second else 0:.1f}x quotes/s, "
        f"{ws.cpu_us_per_quote / rest.cpu_us_per_quote if rest.cpu_us_per_quote else 0:.2f}x "
        "CPU per quote; transport (echo) "
        f"{echo.cpu_us_per_quote:.1f} us of the ws phase's {ws.cpu_us_per_quote:.1f} us"
    )
    rows.append(
        f"target: >= {TARGET_RATE:,.0f} quotes/s ({_met(ws.per_second >= TARGET_RATE)}), "
        f"p99 <= {TARGET_P99_MS:.0f} ms ({_met(ws.latency_ms(99) <= TARGET_P99_MS)})"
    )
    return "\n".join(rows)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rfqs", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--in-flight", type=int, default=4)
    p.add_argument("--rest-quotes", type=int, default=500)
    p.add_argument("--pin", action="store_true")
    p.add_argument("--work-dir")
    p.add_argument("--serve-echo", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


@contextlib.contextmanager
def _work(path: str | None) -> Iterator[Path]:
    with workdir(path) as work:
        yield work


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_echo:
        serve_echo(args.serve_echo)
        return 0
    with _work(args.work_dir) as work:
        print(report(run_benchmark(args, work)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
