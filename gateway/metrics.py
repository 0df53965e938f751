"""Prometheus metrics: one :class:`Metrics` per gateway, with a registry of its own.

The gateway builds it and hands its parts to whatever observes (the FIX application, the
negotiation's sinks, the clearing worker); ``GET /metrics`` renders it. Nothing here is a module
global, so several gateways in one process (tests) never share a counter.

Two kinds of metric:

* **events**, counted where they happen: FIX messages in and out by type, rejects by reason, the
  RFQ funnel, clearing acks and rejects, and two latency histograms. Hot paths pay one dict
  lookup and one ``inc()``/``observe()``: label children are bound once per label value.
* **state**, read when Prometheus scrapes (:class:`StateCollector`): sessions logged on, queue
  depths, the clearing backlog, audit lag, checkpoint age, readiness. Nothing on a hot path
  updates them.

Labels are bounded: FIX MsgTypes (QuickFIX refuses types its dictionary lacks before the
application sees them), FIX reason codes, RFQ stages, clearing states, configured CompIDs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from otc.audit.canonical import parse_ts
from otc.clearing.outbox import ClearingMessage, ClearingState
from otc.negotiation import events as ev
from otc.negotiation.states import RfqState

if TYPE_CHECKING:
    from gateway.audit.feed import Auditor
    from gateway.store.writer import Writer

# order -> first ER: tens of µs (the order path alone) to a second (a stalled process)
ORDER_BUCKETS = (
    50e-6,
    100e-6,
    200e-6,
    350e-6,
    500e-6,
    750e-6,
    1e-3,
    2e-3,
    3.5e-3,
    5e-3,
    10e-3,
    25e-3,
    50e-3,
    100e-3,
    250e-3,
    1.0,
)
# RFQ -> first quote: a desk's answer, from a quoting engine's milliseconds to a person's minute
RFQ_BUCKETS = (
    1e-3,
    2.5e-3,
    5e-3,
    10e-3,
    25e-3,
    50e-3,
    100e-3,
    250e-3,
    500e-3,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
MAX_MSG_TYPES = 200  # per direction; the FIX 4.4 dictionary has fewer, this is a backstop

# where each FIX reject names its reason: Reject, OrderCancelReject, BusinessMessageReject,
# QuoteRequestReject (an ExecutionReport is a reject when OrdStatus(39) is 8; reason 103)
REJECT_REASON_TAG = {"3": 373, "9": 102, "j": 380, "AG": 658}


def reject_reason(msg_type: str, fields: Iterable[tuple[int, Any]]) -> str | None:
    """The reason code of an outgoing reject built from ``fields`` (our out-fields, in
    dictionary order), ``"none"`` for a reject that gives none; None if it is not a reject.

    An ExecutionReport stops being looked at once its OrdStatus shows it is not rejected (the
    fifth field or so), so the order path pays a few comparisons per ER."""
    if msg_type == "8":
        rejected, reason = False, "none"
        for tag, value in fields:
            if tag == 39:
                if value != "8":
                    return None
                rejected = True
            elif tag == 103:
                reason = value
        return reason if rejected else None
    tag = REJECT_REASON_TAG.get(msg_type)
    if tag is None:
        return None
    for t, value in fields:
        if t == tag:
            return value if isinstance(value, str) else "none"
    return "none"


class FixMetrics:
    """FIX messages in and out by MsgType, rejects by reason, order -> first ER."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self._messages = Counter(
            "fixbridge_fix_messages",
            "FIX messages the application received (in: those that "
            "passed the session layer's checks) and the gateway sent (out), by MsgType(35)",
            ["direction", "msg_type"],
            registry=registry,
        )
        self._rejects = Counter(
            "fixbridge_fix_rejects",
            "Rejects sent to FIX clients, by the reject's MsgType and "
            "its reason code (3: 373, 8 with OrdStatus 8: 103, 9: 102, j: 380, AG: 658)",
            ["msg_type", "reason"],
            registry=registry,
        )
        self.order_first_er = Histogram(
            "fixbridge_order_first_er_seconds",
            "From a NewOrderSingle's arrival in the FIX "
            "application to the send of its first ExecutionReport, on the gateway's clock",
            buckets=ORDER_BUCKETS,
            registry=registry,
        )
        self._in: dict[str, Any] = {}
        self._out: dict[str, Any] = {}
        self._reject_children: dict[tuple[str, str], Any] = {}
        for msg_type in ("0", "1", "2", "4", "5", "A", "D", "F", "G", "R", "AJ", "Z"):
            self._child(self._in, "in", msg_type)
        for msg_type in ("0", "1", "2", "3", "4", "5", "A", "8", "9", "j", "S", "AG", "AI", "AE"):
            self._child(self._out, "out", msg_type)

    def _child(self, children: dict[str, Any], direction: str, msg_type: str) -> Any:
        child = children.get(msg_type)
        if child is None:
            if len(children) >= MAX_MSG_TYPES:
                msg_type = "other"
            child = children[msg_type] = self._messages.labels(direction, msg_type)
        return child

    def received(self, msg_type: str) -> None:
        child = self._in.get(msg_type)
        (child if child is not None else self._child(self._in, "in", msg_type)).inc()

    def sent(self, msg_type: str, reject: str | None = None) -> None:
        """One message sent; ``reject``: its reason code if it is a reject."""
        child = self._out.get(msg_type)
        (child if child is not None else self._child(self._out, "out", msg_type)).inc()
        if reject is not None:
            key = (msg_type, reject)
            counter = self._reject_children.get(key)
            if counter is None:
                counter = self._reject_children[key] = self._rejects.labels(msg_type, reject)
            counter.inc()

    def sent_fields(self, msg_type: str, fields: list) -> None:
        """One message the gateway built from out-fields, sent."""
        self.sent(msg_type, reject_reason(msg_type, fields))


RFQ_STAGES = ("received", "quoted", "traded", "expired", "cancelled", "rejected", "refused")
_ENDS = {
    RfqState.EXPIRED: "expired",
    RfqState.CANCELLED: "cancelled",
    RfqState.REJECTED: "rejected",
}


class RfqMetrics:
    """The RFQ funnel and RFQ -> first quote, from the negotiation's events: :meth:`sink` is a
    negotiation sink (it runs with the negotiation's lock held, so its own state needs none).

    Stages: ``received`` (an RFQ opened), ``quoted`` (its first quote reached the client),
    ``traded``, ``expired``, ``cancelled``, ``rejected`` (an RFQ closed without trading), and
    ``refused`` (a request the negotiation refused before it became an RFQ: duplicate
    QuoteReqID, no route, pre-trade risk). A QuoteRequest the FIX edge cannot decode never
    reaches the negotiation: it is a FIX reject (AG) only."""

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float]) -> None:
        funnel = Counter(
            "fixbridge_rfqs",
            "RFQs by funnel stage: received, quoted (first quote to the "
            "client), traded, expired, cancelled, rejected; refused: requests the negotiation "
            "refused before they became an RFQ",
            ["stage"],
            registry=registry,
        )
        self._stage = {stage: funnel.labels(stage) for stage in RFQ_STAGES}
        self.first_quote = Histogram(
            "fixbridge_rfq_first_quote_seconds",
            "From an RFQ's acknowledgement (open and "
            "routed to desks) to the first quote sent to the client for it",
            buckets=RFQ_BUCKETS,
            registry=registry,
        )
        self._clock = clock
        self._opened: dict[str, float] = {}  # RFQs not quoted yet -> when they were routed

    def sink(self, events: list[ev.Event]) -> None:
        for event in events:
            if isinstance(event, ev.RfqStateChanged):
                if event.from_state is None:
                    self._stage["received"].inc()
                elif (end := _ENDS.get(event.to_state)) is not None:
                    self._stage[end].inc()
                    self._opened.pop(event.rfq_id, None)
            elif isinstance(event, ev.RfqAcknowledged):
                self._opened[event.rfq.rfq_id] = self._clock()
            elif isinstance(event, ev.QuoteToClient):
                started = self._opened.pop(event.sealed.quote.rfq_id, None)
                if started is not None:
                    self.first_quote.observe(self._clock() - started)
                    self._stage["quoted"].inc()
            elif isinstance(event, ev.TradeCaptured):
                self._stage["traded"].inc()
                self._opened.pop(event.trade.rfq_id, None)
            elif isinstance(event, ev.QuoteRequestRejected) and event.rfq_id is None:
                self._stage["refused"].inc()


class ClearingMetrics:
    """Clearing answers, from the clearing worker's results (``Clearing``'s on_change)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.acks = Counter(
            "fixbridge_clearing_acks",
            "Clearing messages the clearinghouse acknowledged",
            registry=registry,
        )
        self.rejects = Counter(
            "fixbridge_clearing_rejects",
            "Clearing messages the clearinghouse rejected (they go to GET /clearing/exceptions)",
            registry=registry,
        )
        self.given_up = Counter(
            "fixbridge_clearing_given_up",
            "Clearing messages given up after the last retry (also in GET /clearing/exceptions)",
            registry=registry,
        )
        self.delivery_errors = Counter(
            "fixbridge_clearing_delivery_errors",
            "Failed delivery attempts (transport errors), each retried with backoff",
            registry=registry,
        )

    def changed(self, msg: ClearingMessage) -> None:
        state = msg.state
        if state is ClearingState.ACKED:
            self.acks.inc()
        elif state is ClearingState.REJECTED:
            self.rejects.inc()
        elif state is ClearingState.FAILED:
            self.given_up.inc()
        elif state is ClearingState.PENDING:  # back to pending: the attempt just failed
            self.delivery_errors.inc()


# --- state, read at scrape time -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the state gauges come from; each may be None (that part is not there)."""

    sessions: Callable[[], list[dict[str, Any]]] | None = None  # every configured session
    auditor: Auditor | None = None
    writer: Writer | None = None
    clearing_counts: Callable[[], Mapping[str, int]] | None = None  # outbox rows by state
    readiness: Callable[[], Mapping[str, bool]] | None = None  # last verdict of each check
    # the order core: orders in memory (open ones), finished orders evicted since start
    orders: Callable[[], tuple[int, int]] | None = None


class StateCollector(Collector):
    """Reads the process's state when Prometheus scrapes. A source that fails is left out of
    that scrape (the others still answer)."""

    def __init__(self, sources: Sources, wall_clock: Callable[[], float] = time.time) -> None:
        self.sources = sources
        self.wall_clock = wall_clock

    def describe(self) -> Iterable[Metric]:
        return []  # unknown until collected; keeps registration from running collect()

    def collect(self) -> Iterator[Metric]:
        s = self.sources
        parts = (
            self._sessions,
            self._audit,
            self._writer,
            self._orders,
            self._clearing,
            self._ready,
        )
        for part in parts:
            try:
                yield from part(s)
            except Exception:  # a broken source must not break the scrape
                continue

    def _sessions(self, s: Sources) -> Iterator[Metric]:
        if s.sessions is None:
            return
        views = s.sessions()
        per = GaugeMetricFamily(
            "fixbridge_fix_session_logged_on",
            "1 while the configured FIX session is logged on",
            labels=["comp_id"],
        )
        for view in views:
            per.add_metric([view["comp_id"]], 1.0 if view.get("logged_on") else 0.0)
        yield GaugeMetricFamily(
            "fixbridge_fix_sessions_logged_on",
            "FIX sessions logged on",
            value=sum(1 for v in views if v.get("logged_on")),
        )
        yield per

    def _audit(self, s: Sources) -> Iterator[Metric]:
        if s.auditor is None:
            return
        log = s.auditor.log
        size, durable = log.size, log.durable_size
        checkpoint = log.latest_checkpoint
        sealed = checkpoint.size if checkpoint is not None else 0
        yield GaugeMetricFamily(
            "fixbridge_audit_lag_entries",
            "Audit entries handed over by the edges that are not "
            "durable yet (queued for the log, or written and awaiting fdatasync)",
            value=s.auditor.queued + size - durable,
        )
        yield GaugeMetricFamily(
            "fixbridge_audit_unsealed_entries",
            "Durable audit entries not yet covered by a signed checkpoint",
            value=max(durable - sealed, 0),
        )
        yield GaugeMetricFamily(
            "fixbridge_audit_entries",
            "Durable entries in the audit log",
            value=durable,
        )
        if checkpoint is not None:
            age = self.wall_clock() - parse_ts(checkpoint.ts).timestamp()
            yield GaugeMetricFamily(
                "fixbridge_audit_checkpoint_age_seconds",
                "Seconds since the last signed audit "
                "checkpoint (its own timestamp); grows while nothing new is logged",
                value=max(age, 0.0),
            )

    def _writer(self, s: Sources) -> Iterator[Metric]:
        if s.writer is None:
            return
        yield GaugeMetricFamily(
            "fixbridge_db_writer_queue_depth",
            "Records waiting for the database writer's next batch",
            value=s.writer.queued,
        )
        yield CounterMetricFamily(
            "fixbridge_db_write_failures",
            "Database writer transactions that failed (each is retried)",
            value=s.writer.failures,
        )

    def _orders(self, s: Sources) -> Iterator[Metric]:
        if s.orders is None:
            return
        in_memory, evicted = s.orders()
        yield GaugeMetricFamily(
            "fixbridge_orders_in_memory",
            "Orders the order core holds (not finished; finished ones are in the database)",
            value=in_memory,
        )
        yield CounterMetricFamily(
            "fixbridge_orders_evicted",
            "Finished orders that left the order core's memory since start",
            value=evicted,
        )

    def _clearing(self, s: Sources) -> Iterator[Metric]:
        if s.clearing_counts is None:
            return
        counts = s.clearing_counts()
        per = GaugeMetricFamily(
            "fixbridge_clearing_messages",
            "Clearing outbox messages by state",
            labels=["state"],
        )
        for state in ClearingState:
            per.add_metric([state.value], counts.get(state.value, 0))
        yield per
        yield GaugeMetricFamily(
            "fixbridge_clearing_backlog",
            "Clearing messages not yet acknowledged or rejected (pending, sent, unknown)",
            value=backlog(counts),
        )

    def _ready(self, s: Sources) -> Iterator[Metric]:
        if s.readiness is None:
            return
        verdicts = s.readiness()
        per = GaugeMetricFamily(
            "fixbridge_ready_check",
            "1 while the readiness check passes (as of its last run)",
            labels=["check"],
        )
        for name, ok in verdicts.items():
            per.add_metric([name], 1.0 if ok else 0.0)
        yield GaugeMetricFamily(
            "fixbridge_ready",
            "1 while every readiness check passes (GET /ready answers 200)",
            value=1.0 if verdicts and all(verdicts.values()) else 0.0,
        )
        yield per


BACKLOG_STATES = frozenset(
    {ClearingState.PENDING.value, ClearingState.SENT.value, ClearingState.UNKNOWN.value}
)


def backlog(counts: Mapping[str, int]) -> int:
    """Clearing messages not yet answered, from outbox counts by state."""
    return sum(n for state, n in counts.items() if state in BACKLOG_STATES)


class Metrics:
    """Every metric of one gateway process, in its own registry.

    ``fix``, ``rfqs`` and ``clearing`` go to the parts that observe; :meth:`watch` adds the state
    read at scrape time; :meth:`render` is the ``/metrics`` body."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.clock = clock  # monotonic: every latency here is measured on it
        self.fix = FixMetrics(self.registry)
        self.rfqs = RfqMetrics(self.registry, clock)
        self.clearing = ClearingMetrics(self.registry)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def watch(self, sources: Sources) -> None:
        """Read ``sources`` at every scrape."""
        self.registry.register(StateCollector(sources))

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition the scraper's ``Accept`` header asks for (Prometheus text 0.0.4 by
        default, OpenMetrics on request), and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
