"""A simulated clearinghouse on loopback, for tests and the ``make run`` demo.

HTTP API (stdlib ``ThreadingHTTPServer``, bound to 127.0.0.1):

* ``POST /clearing/messages`` with ``Idempotency-Key``: a FIXML TrdCaptRpt or FpML
  requestClearing. Answers 200 with a TrdCaptRptAck / clearingConfirmed / clearingRefused,
  400 for a message that is malformed or fails the XSDs (when a schema dir is configured),
  409 if the key was already used for different bytes. A repeated key replays the stored
  answer without processing the message again.
* ``GET /clearing/messages/{key}``: 200 with the stored answer, or 404 if never received.
* ``GET /clearing/register``: the trade register as CSV (format in :mod:`otc.clearing.recon`).

A FIXML TrdCaptRpt with ``TransTyp=2`` (replace) replaces the economics of the cleared trade
whose latest report is its ``RptRefID``; ``TransTyp=1`` (cancel) removes that trade from the
register. A replace or cancel naming a report the register does not hold as a trade's latest is
rejected (TradeReportRejectReason 99, with the reason in Txt).

Rules (:class:`SimulatorRules`) reject quantities above a limit or listed instruments, and
can drop the first N answers (the message IS processed; the reply is withheld until the
client gives up, or the connection is cut) to exercise timeout handling.

Run standalone: ``python -m gateway.clearinghouse.simulator --port 8787 [--schemas DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import signal
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fixspec.messages import utcnow
from gateway.clearinghouse.schemas import SchemaRegistry
from gateway.clearinghouse.transport import IDEMPOTENCY_HEADER, MESSAGES_PATH
from otc.clearing import fixml, fpml
from otc.clearing.codec import Submission, read_submission
from otc.clearing.fixml import TradeReportView
from otc.clearing.model import ClearingFormatError
from otc.clearing.recon import RegisterRow, format_register

MAX_BODY = 1 << 20
_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class DropMode(StrEnum):
    HANG = "hang"  # hold the reply past the client's timeout, then close
    DISCONNECT = "disconnect"  # close the connection without a reply


@dataclass(frozen=True, slots=True)
class SimulatorRules:
    max_quantity: Decimal | None = None
    rejected_instruments: frozenset[str] = frozenset()
    drop_first: int = 0
    drop_mode: DropMode = DropMode.HANG
    hang_seconds: float = 2.0


@dataclass
class _Stored:
    digest: str
    body: bytes


@dataclass
class SimulatorStats:
    processed: int = 0
    replayed: int = 0
    dropped: int = 0
    invalid: int = 0
    posts_by_key: Counter[str] = field(default_factory=Counter)


class ClearinghouseSimulator:
    def __init__(
        self,
        *,
        rules: SimulatorRules | None = None,
        schemas: SchemaRegistry | None = None,
        port: int = 0,
        party_id: str = "SIMCCP",
        clock: Callable[[], datetime] = utcnow,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.rules = rules or SimulatorRules()
        self.schemas = schemas
        self.party_id = party_id
        self.clock = clock
        self.tls = tls
        self.stats = SimulatorStats()
        self._port = port
        self._lock = threading.Lock()
        self._answers: dict[str, _Stored] = {}
        self._register: list[RegisterRow] = []
        self._latest_report: dict[str, str] = {}  # trade id -> RptID of its latest report
        self._seq: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> ClearinghouseSimulator:
        """Bind and serve; with schemas configured, compiles them first (raises
        :class:`SchemaSetError` on a broken set rather than answering 400 to every message)."""
        if self.schemas is not None:
            self.schemas.preload()
        handler = type("Handler", (_Handler,), {"sim": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        if self.tls is not None:  # handshake lazily, in the handler thread
            self._server.socket = self.tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # quick shutdown
            name="clearing-sim",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ClearinghouseSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    # --- register ------------------------------------------------------------------------

    def register_rows(self) -> list[RegisterRow]:
        with self._lock:
            return list(self._register)

    def register_csv(self) -> str:
        return format_register(self.register_rows())

    def write_register(self, path: Path | str) -> None:
        Path(path).write_text(self.register_csv(), encoding="utf-8")

    # --- processing (called from handler threads) ----------------------------------------

    def _next_id(self, prefix: str) -> str:
        self._seq[prefix] += 1
        return f"{self.party_id}-{prefix}{self._seq[prefix]:06d}"

    def _violation(self, sub: Submission) -> tuple[str, str] | None:
        econ = sub.economics()
        max_qty = self.rules.max_quantity
        if max_qty is not None and econ.quantity > max_qty:
            return "quantity", f"quantity {econ.quantity} above limit {max_qty}"
        for part in econ.instrument.split("|"):
            if part in self.rules.rejected_instruments:
                return "instrument", f"instrument {part} not eligible for clearing"
        return None

    def _answer(self, sub: Submission) -> bytes:
        """Decide, record, and build the answer. Caller holds the lock."""
        violation = self._violation(sub)
        econ = sub.economics()
        if isinstance(sub, TradeReportView):
            if sub.trans_type == fixml.TRANS_CANCEL:  # a cancel takes nothing on
                return self._amend(sub)
            if violation:
                code = (
                    fixml.REJECT_UNKNOWN_INSTRUMENT
                    if violation[0] == "instrument"
                    else fixml.REJECT_OTHER
                )
                return fixml.build_trade_capture_report_ack(
                    sub, accepted=False, reject_reason=code, reject_text=violation[1]
                )
            if sub.trans_type != fixml.TRANS_NEW:
                return self._amend(sub)
            clearing_id = self._next_id("T")
            self._register.append(RegisterRow(econ, clearing_id))
            self._latest_report[sub.trade_id] = sub.report_id
            return fixml.build_trade_capture_report_ack(
                sub, accepted=True, clearing_trade_id=clearing_id
            )
        now = self.clock()
        if violation:
            code = "ProductNotEligible" if violation[0] == "instrument" else "QuantityLimit"
            return fpml.build_clearing_refused(sub, self._next_id("M"), code, violation[1], now)
        cleared = [(party, self._next_id("T")) for party in sub.counterparties]
        self._register.append(RegisterRow(econ, ",".join(cid for _, cid in cleared)))
        return fpml.build_clearing_confirmed(sub, self._next_id("M"), cleared, now)

    def _amend(self, sub: TradeReportView) -> bytes:
        """A replace or cancel of a cleared trade. Caller holds the lock."""
        latest = self._latest_report.get(sub.trade_id)
        index = next(
            (i for i, r in enumerate(self._register) if r.economics.trade_id == sub.trade_id), None
        )
        if index is None or latest is None or latest != sub.ref_report_id:
            why = f"RptRefID {sub.ref_report_id} is not the latest report of a cleared trade"
            return fixml.build_trade_capture_report_ack(
                sub, accepted=False, reject_reason=fixml.REJECT_OTHER, reject_text=why
            )
        clearing_id = self._register[index].clearing_trade_id
        if sub.trans_type == fixml.TRANS_CANCEL:
            del self._register[index]
        else:
            self._register[index] = RegisterRow(sub.economics(), clearing_id)
        self._latest_report[sub.trade_id] = sub.report_id
        return fixml.build_trade_capture_report_ack(
            sub, accepted=True, clearing_trade_id=clearing_id
        )

    def handle_post(self, key: str, body: bytes) -> tuple[int, bytes, bool]:
        """(status, body, drop reply?) for one submission."""
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            self.stats.posts_by_key[key] += 1
            stored = self._answers.get(key)
            if stored is not None:
                if stored.digest != digest:
                    return 409, f"key {key} was used for a different message\n".encode(), False
                self.stats.replayed += 1
                return 200, stored.body, False
        if self.schemas is not None:
            errors = self.schemas.validate_bytes(body)
            if errors:
                with self._lock:
                    self.stats.invalid += 1
                return (
                    400,
                    ("schema validation failed:\n" + "\n".join(errors) + "\n").encode(),
                    False,
                )
        try:
            submission = read_submission(body)
            submission.economics()
        except (ClearingFormatError, ValueError) as exc:
            with self._lock:
                self.stats.invalid += 1
            return 400, f"unreadable submission: {exc}\n".encode(), False
        with self._lock:
            stored = self._answers.get(key)
            if stored is None:  # a concurrent duplicate may have won the race
                stored = _Stored(digest, self._answer(submission))
                self._answers[key] = stored
                self.stats.processed += 1
            drop = self.stats.dropped < self.rules.drop_first
            if drop:
                self.stats.dropped += 1
        return 200, stored.body, drop

    def lookup(self, key: str) -> bytes | None:
        with self._lock:
            stored = self._answers.get(key)
        return stored.body if stored else None


class _Handler(BaseHTTPRequestHandler):
    sim: ClearinghouseSimulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "fixbridge-clearing-sim/1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        return

    def _reply(self, status: int, body: bytes, content_type: str = "application/xml") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _text(self, status: int, text: str) -> None:
        self._reply(status, text.encode(), "text/plain; charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if self.path != MESSAGES_PATH:
            return self._text(404, f"no such endpoint {self.path}\n")
        key = self.headers.get(IDEMPOTENCY_HEADER, "")
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self.close_connection = True
            return self._text(411, "Content-Length required\n")
        length = int(length_text)
        if length > MAX_BODY:
            self.close_connection = True
            return self._text(413, f"body over {MAX_BODY} bytes\n")
        body = self.rfile.read(length)
        if not _KEY.match(key):
            return self._text(400, f"missing or malformed {IDEMPOTENCY_HEADER} header\n")
        status, answer, drop = self.sim.handle_post(key, body)
        if drop:
            if self.sim.rules.drop_mode is DropMode.HANG:
                self.sim._stopping.wait(self.sim.rules.hang_seconds)
            self.close_connection = True
            return
        content_type = "application/xml" if status == 200 else "text/plain; charset=utf-8"
        self._reply(status, answer, content_type)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path == "/clearing/register":
            return self._reply(200, self.sim.register_csv().encode(), "text/csv; charset=utf-8")
        if self.path == "/health":
            return self._text(200, "ok\n")
        prefix = MESSAGES_PATH + "/"
        if self.path.startswith(prefix):
            answer = self.sim.lookup(self.path[len(prefix) :])
            if answer is None:
                return self._text(404, "not received\n")
            return self._reply(200, answer)
        return self._text(404, f"no such endpoint {self.path}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--schemas", type=Path, help="schema root for XSD validation")
    parser.add_argument("--max-quantity", type=Decimal)
    parser.add_argument("--reject-instrument", action="append", default=[])
    parser.add_argument("--drop-first", type=int, default=0)
    parser.add_argument("--register-out", type=Path, help="write the register here on exit")
    args = parser.parse_args(argv)
    rules = SimulatorRules(
        max_quantity=args.max_quantity,
        rejected_instruments=frozenset(args.reject_instrument),
        drop_first=args.drop_first,
    )
    schemas = SchemaRegistry(args.schemas) if args.schemas else None
    sim = ClearinghouseSimulator(rules=rules, schemas=schemas, port=args.port).start()
    print(f"clearinghouse simulator listening on {sim.url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        sim.stop()
        if args.register_out:
            sim.write_register(args.register_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
