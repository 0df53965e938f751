"""The clearing worker: a thread that runs the outbox dispatcher, which delivers captured
trades' clearing messages, retries them and applies the clearinghouse's answers; and its wiring
from ``[clearing]``.

The outbox state machine and the renderers live in ``otc.clearing``, the senders and the
simulated clearinghouse in :mod:`gateway.clearinghouse`, the outbox table in
:mod:`gateway.store.clearing`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from fixspec.messages import utcnow
from gateway.clearinghouse.schemas import SchemaRegistry
from gateway.clearinghouse.simulator import ClearinghouseSimulator, SimulatorRules
from gateway.clearinghouse.transport import FileDropSender, HttpSender
from gateway.config import ClearingSection
from gateway.metrics import ClearingMetrics
from gateway.store.clearing import SqlOutbox, message_view
from otc.audit.wire import body_record
from otc.clearing.delivery import ClearingSender, SendOutcome, StatusResult, WireAnswer
from otc.clearing.dispatcher import ClearingDispatcher
from otc.clearing.model import OutgoingMessage
from otc.clearing.outbox import ClearingMessage, ClearingState, StaleMessage, sequenced

log = logging.getLogger("fixbridge.clearing")


class ClearingWorker:
    """Runs the dispatcher every ``interval`` seconds on its own thread."""

    def __init__(
        self,
        dispatcher: ClearingDispatcher,
        interval: float = 0.2,
        on_change: Callable[[ClearingMessage], None] | None = None,
        before_pass: Callable[[], list[ClearingMessage]] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.interval = interval
        self.on_change = on_change or (lambda msg: None)
        self.before_pass = before_pass or (lambda: [])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clearing", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                for msg in [*self.before_pass(), *self.dispatcher.run_once()]:
                    self.on_change(msg)
            except Exception:  # keep delivering; the failure is logged and retried next tick
                log.exception("clearing dispatcher pass failed")


Audit = Callable[[str, str, dict[str, Any]], None]


class AuditedSender:
    """A sender whose every exchange goes into the audit trail byte for byte: the message body
    as sent, with its idempotency key (``clearing.out``, recorded before it leaves, so a crash
    mid-send cannot lose it), the status queries (``clearing.query``) and every answer body as
    received (``clearing.in``). Bodies are text if they are UTF-8, else base64
    (:func:`otc.audit.wire.body_record`)."""

    def __init__(self, inner: ClearingSender, audit: Audit, transport: str) -> None:
        self.inner = inner
        self.audit = audit
        self.transport = transport

    def send(self, msg: OutgoingMessage) -> SendOutcome:
        self.audit(
            "clearing.out",
            "clearing",
            {
                "key": msg.key,
                "idempotency_key": msg.key,
                "trade_id": msg.trade_id,
                "format": msg.fmt.value,
                "content_type": msg.content_type,
                "transport": self.transport,
                **body_record(msg.body),
            },
        )
        outcome = self.inner.send(msg)
        if outcome.wire is not None:
            self._answer(msg.key, msg.trade_id, "send", outcome.result.value, outcome.wire)
        return outcome

    def query_status(self, key: str) -> StatusResult:
        self.audit("clearing.query", "clearing", {"key": key, "transport": self.transport})
        result = self.inner.query_status(key)
        if result.wire is not None:
            self._answer(key, None, "status", result.answer.value, result.wire)
        return result

    def _answer(
        self, key: str, trade_id: str | None, exchange: str, result: str, wire: WireAnswer
    ) -> None:
        payload: dict[str, Any] = {
            "key": key,
            "exchange": exchange,
            "result": result,
            "status": wire.status,
            "content_type": wire.content_type,
            "transport": self.transport,
            **body_record(wire.body),
        }
        if trade_id is not None:
            payload["trade_id"] = trade_id
        self.audit("clearing.in", "clearing", payload)


class Clearing:
    """Clearing as ``[clearing] mode`` asks: nothing (``off``: trades are stored, not sent), or a
    worker delivering the outbox to the built-in simulated clearinghouse (started here), an HTTP
    endpoint or a drop directory. Every change of a message's state is audited, counted
    (``metrics``) and, when delivery fails or the clearinghouse refuses, logged; so is every
    message and answer exactly as sent and received (:class:`AuditedSender`)."""

    def __init__(
        self,
        config: ClearingSection,
        outbox: SqlOutbox,
        audit: Audit,
        metrics: ClearingMetrics | None = None,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.audit = audit
        self.metrics = metrics
        self.simulator: ClearinghouseSimulator | None = None
        self.worker: ClearingWorker | None = None
        self.last_error: str | None = None  # the last failed delivery's, until one succeeds

    def start(self) -> None:
        cfg = self.config
        if cfg.mode == "off":
            return
        if cfg.mode == "simulator":
            rules = SimulatorRules(max_quantity=cfg.simulator_reject_above)
            schemas = SchemaRegistry(cfg.schema_dir) if cfg.schema_dir else None
            self.simulator = ClearinghouseSimulator(rules=rules, schemas=schemas).start()
            sender: HttpSender | FileDropSender = HttpSender(self.simulator.url, verify=False)
            log.info("clearing to the built-in simulated clearinghouse at %s", self.simulator.url)
        elif cfg.mode == "http":
            sender = HttpSender(cfg.url, verify=cfg.verify_tls)
        else:
            assert cfg.drop_dir is not None  # the configuration requires it for mode "file"
            sender = FileDropSender(cfg.drop_dir)
        audited = AuditedSender(sender, self.audit, "file" if cfg.mode == "file" else "http")
        self.worker = ClearingWorker(
            ClearingDispatcher(self.outbox, audited),
            on_change=self._changed,
            before_pass=self.sequence,
        )
        self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.simulator is not None:
            self.simulator.stop()

    def sequence(self) -> list[ClearingMessage]:
        """Release held later versions whose trade's earlier messages are all acked, reject
        those whose predecessor was rejected (:func:`otc.clearing.outbox.sequenced`)."""
        changed = []
        for msg in self.outbox.held():
            history = self.outbox.for_trade(msg.trade_id)
            earlier = [m for m in history if m.created_at < msg.created_at]
            moved = sequenced(msg, earlier, utcnow())
            if moved is msg:
                continue
            try:
                self.outbox.update(moved)
            except StaleMessage:
                continue
            changed.append(moved)
        return changed

    @property
    def running(self) -> bool:
        """The worker's thread runs (for /ready)."""
        return self.worker is not None and self.worker.alive

    def _changed(self, msg: ClearingMessage) -> None:
        self.audit("clearing.state", "clearing", message_view(msg))
        if self.metrics is not None:
            self.metrics.changed(msg)
        state = msg.state
        if state is ClearingState.PENDING and msg.last_error:  # back to pending: a failed send
            self.last_error = msg.last_error
            log.warning(
                "clearing message %s (trade %s): delivery attempt %d failed: %s; retrying",
                msg.key,
                msg.trade_id,
                msg.attempts,
                msg.last_error,
            )
        elif state is ClearingState.ACKED:
            self.last_error = None
        elif state is ClearingState.REJECTED:
            log.warning(
                "clearing message %s (trade %s) rejected by the clearinghouse: %s",
                msg.key,
                msg.trade_id,
                msg.reject_reason,
            )
        elif state is ClearingState.FAILED:
            log.error(
                "clearing message %s (trade %s) given up after %d attempts: %s",
                msg.key,
                msg.trade_id,
                msg.attempts,
                msg.last_error,
            )
