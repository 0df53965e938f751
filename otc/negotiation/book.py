"""The negotiation book: the engine's records and the transaction that changes them.

Records are frozen; a :class:`Txn` stages replacements in overlays (reads fall through to the
committed book) and :meth:`Book.commit` applies them all at once. A command that raises midway
simply drops its Txn, which is how a refused command leaves the book exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from otc.negotiation.commands import AcceptQuote, ClientPass, CounterQuote
from otc.negotiation.events import Event, LastLookOutcome, rfq_id_of
from otc.negotiation.ids import IdFactory, IdKind
from otc.negotiation.model import Acceptance, Counter, Quote, Rfq, SealedQuote
from otc.negotiation.protection import DeskGuard
from otc.negotiation.states import CounterState, QuoteState, RfqState
from otc.negotiation.timers import TimerKey, TimerService
from otc.trades import TradeCapture


@dataclass(frozen=True, slots=True)
class Hold:
    acceptance: Acceptance
    deadline: datetime


@dataclass(frozen=True, slots=True)
class RfqRecord:
    rfq: Rfq
    state: RfqState
    desk_ids: tuple[str, ...]
    quote_ids: tuple[str, ...] = ()
    counter_ids: tuple[str, ...] = ()
    passed: frozenset[str] = frozenset()
    pending_quote_id: str | None = None
    expiry_due: bool = False
    trade_id: str | None = None


@dataclass(frozen=True, slots=True)
class QuoteRecord:
    sealed: SealedQuote
    state: QuoteState
    hold: Hold | None = None
    open_counter_id: str | None = None
    last_look: LastLookOutcome | None = None

    @property
    def quote(self) -> Quote:
        return self.sealed.quote


@dataclass(frozen=True, slots=True)
class CounterRecord:
    counter: Counter
    state: CounterState


@dataclass(frozen=True, slots=True)
class ClientRef:
    """A used ClOrdID / QuoteRespID: the command, and for acceptances the current outcome."""

    command: AcceptQuote | CounterQuote | ClientPass
    outcome: tuple[Event, ...] = ()


@dataclass(frozen=True)
class EngineSnapshot:
    """Everything the engine knows, as comparable values (tests: before == after a refusal)."""

    rfqs: dict[str, Any]
    quotes: dict[str, Any]
    counters: dict[str, Any]
    quote_req_ids: dict[Any, str]
    client_refs: dict[Any, Any]
    trades: dict[str, TradeCapture]
    active_by_desk: dict[str, frozenset[str]]
    active_by_rfq: dict[str, tuple[str, ...]]
    id_counters: dict[IdKind, int]
    timers: dict[TimerKey, datetime]
    histories: dict[str, tuple[Event, ...]]
    guards: dict[str, DeskGuard]


K = TypeVar("K")
V = TypeVar("V")


class Overlay(Generic[K, V]):
    """Reads fall through to the committed dict; writes stay here until commit."""

    __slots__ = ("base", "changes")

    def __init__(self, base: dict[K, V]) -> None:
        self.base = base
        self.changes: dict[K, V] = {}

    def __getitem__(self, key: K) -> V:
        if key in self.changes:
            return self.changes[key]
        return self.base[key]

    def get(self, key: K, default: V | None = None) -> V | None:
        if key in self.changes:
            return self.changes[key]
        return self.base.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.changes or key in self.base

    def __setitem__(self, key: K, value: V) -> None:
        self.changes[key] = value

    def commit(self) -> None:
        self.base.update(self.changes)


class Txn:
    """One command's (or one timer's) changes, staged until :meth:`Book.commit`."""

    def __init__(self, book: Book, now: datetime, make_id: IdFactory) -> None:
        self.now = now
        self.rfqs = Overlay(book.rfqs)
        self.quotes = Overlay(book.quotes)
        self.counters = Overlay(book.counters)
        self.quote_req_ids = Overlay(book.quote_req_ids)
        self.client_refs = Overlay(book.client_refs)
        self.trades = Overlay(book.trades)
        self.active_by_desk = Overlay(book.active_by_desk)
        self.active_by_rfq = Overlay(book.active_by_rfq)
        self.id_counters = Overlay(book.id_counters)
        self.guards = Overlay(book.guards)
        self.timer_ops: list[tuple[TimerKey, datetime | None]] = []
        self.events: list[Event] = []
        self.replies: list[Event] = []  # returned but not recorded (idempotent replays)
        self._make_id = make_id

    def overlays(self) -> tuple[Overlay[Any, Any], ...]:
        return (
            self.rfqs,
            self.quotes,
            self.counters,
            self.quote_req_ids,
            self.client_refs,
            self.trades,
            self.active_by_desk,
            self.active_by_rfq,
            self.id_counters,
            self.guards,
        )

    def next_id(self, kind: IdKind) -> str:
        n = (self.id_counters.get(kind) or 0) + 1
        self.id_counters[kind] = n
        return self._make_id(kind, n)

    def schedule(self, key: TimerKey, at: datetime) -> None:
        self.timer_ops.append((key, at))

    def cancel(self, key: TimerKey) -> None:
        self.timer_ops.append((key, None))

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def put_quote(self, rec: QuoteRecord) -> None:
        """Store a quote record, keeping the per-desk and per-RFQ indexes of Active quotes in
        step (an RFQ's quotes include every one ever replaced: scanning them grew with use)."""
        quote_id = rec.quote.quote_id
        old = self.quotes.get(quote_id)
        was_active = old is not None and old.state is QuoteState.ACTIVE
        is_active = rec.state is QuoteState.ACTIVE
        if was_active != is_active:
            desk_id = rec.quote.desk_id
            current = self.active_by_desk.get(desk_id) or frozenset()
            self.active_by_desk[desk_id] = (
                current | {quote_id} if is_active else current - {quote_id}
            )
            rfq_id = rec.quote.rfq_id
            live = self.active_by_rfq.get(rfq_id) or ()
            self.active_by_rfq[rfq_id] = (
                (*live, quote_id) if is_active else tuple(q for q in live if q != quote_id)
            )
        self.quotes[quote_id] = rec


class Book:
    """Everything the engine knows: records by id, the uniqueness indexes, timers, history."""

    def __init__(self) -> None:
        self.rfqs: dict[str, RfqRecord] = {}
        self.quotes: dict[str, QuoteRecord] = {}
        self.counters: dict[str, CounterRecord] = {}
        self.quote_req_ids: dict[tuple[str, str], str] = {}
        self.client_refs: dict[tuple[str, str, str], ClientRef] = {}
        self.trades: dict[str, TradeCapture] = {}
        self.active_by_desk: dict[str, frozenset[str]] = {}
        self.active_by_rfq: dict[str, tuple[str, ...]] = {}
        self.id_counters: dict[IdKind, int] = {}
        self.timers = TimerService()
        self.history: dict[str, list[Event]] = {}
        self.guards: dict[str, DeskGuard] = {}  # market maker protection, per desk
        self.guards_changed: set[str] = set()  # since the edge last took them

    def commit(self, txn: Txn) -> None:
        self.guards_changed.update(txn.guards.changes)
        for overlay in txn.overlays():
            overlay.commit()
        for key, at in txn.timer_ops:
            if at is None:
                self.timers.cancel(key)
            else:
                self.timers.schedule(key, at)
        for event in txn.events:
            rfq_id = rfq_id_of(event)
            if rfq_id is not None:
                self.history.setdefault(rfq_id, []).append(event)

    def snapshot(self) -> EngineSnapshot:
        return EngineSnapshot(
            rfqs=dict(self.rfqs),
            quotes=dict(self.quotes),
            counters=dict(self.counters),
            quote_req_ids=dict(self.quote_req_ids),
            client_refs=dict(self.client_refs),
            trades=dict(self.trades),
            active_by_desk=dict(self.active_by_desk),
            active_by_rfq={k: v for k, v in self.active_by_rfq.items() if v},
            id_counters=dict(self.id_counters),
            timers=self.timers.pending(),
            histories={k: tuple(v) for k, v in self.history.items()},
            guards=dict(self.guards),
        )

    def archive(self, rfq_id: str) -> list[Event]:
        """Drop a finished RFQ's records and history; keep the id reservations (QuoteReqID,
        ClOrdID, QuoteRespID) so duplicates are still refused and retries still answered."""
        rec = self.rfqs.pop(rfq_id)
        self.active_by_rfq.pop(rfq_id, None)
        for quote_id in rec.quote_ids:
            quote = self.quotes.pop(quote_id)
            desk_id = quote.quote.desk_id
            active = self.active_by_desk.get(desk_id, frozenset())
            if quote_id in active:
                self.active_by_desk[desk_id] = active - {quote_id}
        for counter_id in rec.counter_ids:
            del self.counters[counter_id]
        if rec.trade_id is not None:
            del self.trades[rec.trade_id]
        return self.history.pop(rfq_id, [])
