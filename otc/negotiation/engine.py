"""The negotiation engine: commands and time in, events out, no I/O.

``engine.handle(command, now)`` first fires every timer due at ``now`` (RFQ expiry, quote
ValidUntil, last-look window), then applies the command. Each command runs in a transaction: all
reads and writes go through overlays that are committed only if the command succeeds, so a refused
command leaves the engine exactly as it was and returns one rejection event instead. Ids come from
per-kind counters inside that transaction, so a refusal never burns an id either.

Decisions that FIX leaves to the venue, as this engine takes them (see also ``states``):

* Last-look timeout is a **rejection** (reason ``LAST_LOOK_TIMEOUT``): a desk that does not answer
  within ``config.last_look_max_hold`` must not keep a free option on the client.
* After a last-look reject or timeout the held quote is Cancelled, the client's acceptance is
  rejected (ER 39=8 OrdRejReason 0 / QuoteStatus 5) and the RFQ goes back to Quoted (other live
  quotes) or Open (none), as FIX rejects the order, not the QuoteRequest; if the RFQ's expiry fell
  during the hold, it expires instead.
* Firm acceptances pass through PendingExecution to Filled inside one command, so the audit trail
  is the same shape for firm and last-look quotes.
* Filled -> Confirmed happens on :class:`~otc.negotiation.commands.ConfirmTrade` from post-trade.
* On a fill every other routed desk gets DoneAway, except the runner-up on the traded side, which
  gets Cover when ``config.send_cover`` (FIX QuoteRespType 4/5). Neither carries another desk's
  data.
* A client never learns whether an RFQ or quote of another client exists (UNKNOWN_RFQ /
  UNKNOWN_QUOTE); likewise a desk for another desk's quotes. Only a desk acting on an RFQ that was
  not routed to it gets the distinct DESK_NOT_ROUTED.
* An identical retry of an acceptance (same ClOrdID or QuoteRespID, same content) returns the
  acceptance's current outcome event again (TradeCaptured, AcceptancePending or AcceptanceRejected)
  and changes nothing; the same id with different content is a duplicate. Counters and passes are
  not idempotent: their QuoteRespID may be used once.
* Refused commands are not part of an RFQ's history (the edge's audit log records every inbound
  message); the history holds every event that changed the negotiation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fixspec.rfq_codes import QuoteStatus, QuoteType
from otc.negotiation.book import (
    Book,
    ClientRef,
    CounterRecord,
    EngineSnapshot,
    Hold,
    QuoteRecord,
    RfqRecord,
    Txn,
)
from otc.negotiation.capture import PartyResolver, default_party, runner_up, trade_capture
from otc.negotiation.commands import (
    MAX_MASS_QUOTES,
    AcceptQuote,
    AnswerCounter,
    CancelAllQuotes,
    CancelQuote,
    CancelRfq,
    ClientPass,
    Command,
    ConfirmLastLook,
    ConfirmTrade,
    CounterQuote,
    DeskPass,
    PullCause,
    PullDeskQuotes,
    QuoteTerms,
    RejectLastLook,
    ReplaceQuote,
    ResetDeskProtection,
    SubmitQuote,
    SubmitQuotes,
    SubmitRfq,
)
from otc.negotiation.errors import (
    NegotiationError,
    RejectReason,
    ord_rej_reason,
    quote_request_reject_reason,
    quote_status,
)
from otc.negotiation.events import (
    AcceptancePending,
    AcceptanceRejected,
    ClientPassed,
    CounterDeclined,
    CounterToDesk,
    Cover,
    DeskPassed,
    DeskProtectionReset,
    DeskProtectionTripped,
    DoneAway,
    Event,
    LastLookOutcome,
    LastLookRequested,
    LastLookResolved,
    QuoteAcknowledged,
    QuoteRequestRejected,
    QuoteStateChanged,
    QuoteStatusChanged,
    QuoteToClient,
    RfqAcknowledged,
    RfqEnded,
    RfqStateChanged,
    RfqToDesk,
    RfqWithdrawn,
    TradeCaptured,
)
from otc.negotiation.ids import IdFactory, IdKind, sequential_ids
from otc.negotiation.model import (
    Acceptance,
    AcceptVia,
    Counter,
    Firmness,
    Quote,
    Rfq,
    SealedQuote,
)
from otc.negotiation.protection import DeskGuard, Fill, ProtectionLimits, record_fill
from otc.negotiation.refusals import refusal_event
from otc.negotiation.routing import RoutingTable
from otc.negotiation.signing import DeskKeyring, seal_quote
from otc.negotiation.states import (
    LIVE_RFQ_STATES,
    TERMINAL_RFQ_STATES,
    CounterState,
    QuoteState,
    RfqState,
    counter_transition,
    quote_transition,
    rfq_transition,
)
from otc.negotiation.stats import DeskLastLookStats, last_look_stats
from otc.negotiation.timers import TimerFired, TimerKey, TimerKind
from otc.negotiation.validation import (
    build_quote,
    build_rfq,
    check_counter,
    require_decimal,
    require_id,
    require_positive,
    require_side,
)
from otc.trades import TradeCapture

R = RejectReason


@dataclass(frozen=True, slots=True)
class NegotiationConfig:
    rfq_ttl: timedelta = timedelta(minutes=5)
    """RFQ life when the request names no ExpireTime."""
    max_rfq_ttl: timedelta = timedelta(hours=1)
    """Longest ExpireTime a client may ask for."""
    last_look_max_hold: timedelta = timedelta(seconds=2)
    """How long a desk may hold a last-look fill before it is rejected as timed out."""
    send_cover: bool = True
    """Tell the runner-up desk it was the cover (QuoteRespType 4) instead of DoneAway."""

    def __post_init__(self) -> None:
        for name in ("rfq_ttl", "max_rfq_ttl", "last_look_max_hold"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"NegotiationConfig.{name} must be positive")
        if self.rfq_ttl > self.max_rfq_ttl:
            raise ValueError("NegotiationConfig.rfq_ttl exceeds max_rfq_ttl")


_CL_ORD_ID = "ClOrdID"
_QUOTE_RESP_ID = "QuoteRespID"
_REF_SPACE = {AcceptVia.NEW_ORDER: _CL_ORD_ID, AcceptVia.QUOTE_RESPONSE: _QUOTE_RESP_ID}


# --- public read models ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RfqView:
    rfq: Rfq
    state: RfqState
    desk_ids: tuple[str, ...]
    passed_desks: frozenset[str]
    quote_ids: tuple[str, ...]
    pending_quote_id: str | None
    trade_id: str | None


@dataclass(frozen=True, slots=True)
class QuoteView:
    sealed: SealedQuote
    state: QuoteState
    held_until: datetime | None  # last-look deadline while the desk holds an acceptance


# --- the engine ------------------------------------------------------------------------------


class NegotiationEngine:
    """Multi-dealer RFQ negotiation. Not thread-safe: the edge serialises calls (one event loop
    or one lock), which also gives "whichever is processed first wins" for races."""

    def __init__(
        self,
        routing: RoutingTable,
        keyring: DeskKeyring | None,
        config: NegotiationConfig | None = None,
        ids: IdFactory | None = None,
        parties: PartyResolver | None = None,
        protection: Mapping[str, ProtectionLimits] | None = None,
    ) -> None:
        """``keyring`` None switches quote signing off (benchmark baseline only): quotes are
        still hashed and acceptances still checked against the hash. ``protection``: market
        maker protection limits by desk id ("*": every desk not named)."""
        self._protection = dict(protection or {})
        self._routing = routing
        self._keyring = keyring
        self._config = config or NegotiationConfig()
        self._ids = ids or sequential_ids()
        self._party = parties or default_party
        self._book = Book()
        self._handlers: dict[type, Callable[[Txn, Any], None]] = {
            SubmitRfq: self._submit_rfq,
            CancelRfq: self._cancel_rfq,
            ClientPass: self._client_pass,
            CounterQuote: self._counter,
            AcceptQuote: self._accept,
            SubmitQuote: self._submit_quote,
            ReplaceQuote: self._replace_quote,
            CancelQuote: self._cancel_quote,
            CancelAllQuotes: self._cancel_all,
            DeskPass: self._desk_pass,
            AnswerCounter: self._answer_counter,
            ConfirmLastLook: self._confirm_last_look,
            RejectLastLook: self._reject_last_look,
            ConfirmTrade: self._confirm_trade,
            PullDeskQuotes: self._pull_quotes,
            ResetDeskProtection: self._reset_protection,
        }

    @property
    def config(self) -> NegotiationConfig:
        return self._config

    @property
    def keyring(self) -> DeskKeyring | None:
        return self._keyring

    @property
    def routing(self) -> RoutingTable:
        return self._routing

    def reconfigure(self, routing: RoutingTable, config: NegotiationConfig) -> None:
        """Route and time what comes next by ``routing`` and ``config``. What exists keeps what
        it was given (routed desks, ExpireTime, ValidUntil, last-look deadlines are absolute).
        A journal replay runs each stretch of commands under the configuration it ran under."""
        self._routing = routing
        self._config = config

    @property
    def protection(self) -> dict[str, ProtectionLimits]:
        return dict(self._protection)

    def set_protection(self, protection: Mapping[str, ProtectionLimits]) -> None:
        """Count fills against ``protection`` from now on (a journal replay runs with none: the
        journal restores each desk's guard as it was instead, see :meth:`restore_guard`)."""
        self._protection = dict(protection)

    def guard(self, desk_id: str) -> DeskGuard:
        """The desk's market maker protection state."""
        return self._book.guards.get(desk_id) or DeskGuard()

    def take_guard_changes(self) -> dict[str, DeskGuard]:
        """The guards changed since the last call, for the edge to persist."""
        changed = {d: self.guard(d) for d in sorted(self._book.guards_changed)}
        self._book.guards_changed.clear()
        return changed

    def restore_guard(self, desk_id: str, guard: DeskGuard) -> None:
        """Put back a desk's guard as the edge persisted it (journal replay)."""
        self._book.guards[desk_id] = guard

    # -- entry points -------------------------------------------------------------------------

    def handle(self, command: Command, now: datetime) -> list[Event]:
        """Fire timers due at ``now``, then apply ``command``. Never raises for bad input: a
        refused command yields exactly one rejection event and changes nothing."""
        return self.handle_checked(command, now)[0]

    def handle_checked(self, command: Command, now: datetime) -> tuple[list[Event], bool]:
        """:meth:`handle`, and whether ``command`` itself changed the engine. False: it was
        refused, or it changed nothing (an identical retry answered from what the engine already
        knew, a mass cancel with nothing to cancel); only the timers due at ``now`` moved the
        engine, as :meth:`tick` would. An edge that journals the engine's inputs for a replay
        needs to know which calls it must replay."""
        now = _utc(now)
        if type(command) is SubmitQuotes:
            return self._submit_quotes(command, now)
        handler = self._handlers.get(type(command))
        if handler is None:
            raise TypeError(f"not a negotiation command: {type(command).__name__}")
        events = self.tick(now)
        txn = Txn(self._book, now, self._ids)
        try:
            handler(txn, command)
        except NegotiationError as err:
            events.append(refusal_event(command, err, now, self._quote_of))
            return events, False
        self._book.commit(txn)
        events.extend(txn.events)
        events.extend(txn.replies)
        return events, bool(txn.events)  # every change a command makes is told by an event

    def handle_quotes(
        self, cmd: SubmitQuotes, now: datetime, entry_done: Callable[[], None]
    ) -> tuple[list[Event], bool]:
        """:meth:`handle_checked` for a mass quote, calling ``entry_done`` after each entry: an
        edge that journals ids can tell which entry asked for which (a replay may have to leave
        out the entries on RFQs that have since left the engine)."""
        return self._submit_quotes(cmd, _utc(now), entry_done)

    def _submit_quotes(
        self, cmd: SubmitQuotes, now: datetime, entry_done: Callable[[], None] | None = None
    ) -> tuple[list[Event], bool]:
        """A mass quote: each entry in a transaction of its own (a refused one leaves the others
        standing), answered by one QuoteAcknowledged or DeskActionRejected, in order."""
        events = self.tick(now)
        changed = False
        too_many = len(cmd.quotes) > MAX_MASS_QUOTES
        for entry in cmd.quotes:
            single = entry.command(cmd.desk_id)
            txn = Txn(self._book, now, self._ids)
            try:
                if too_many:
                    raise NegotiationError(
                        R.TOO_MANY_QUOTES, f"a mass quote carries at most {MAX_MASS_QUOTES} quotes"
                    )
                if isinstance(single, ReplaceQuote):
                    self._replace_on(txn, single, entry.rfq_id)
                else:
                    self._submit_quote(txn, single)
            except NegotiationError as err:
                events.append(refusal_event(single, err, now, self._quote_of))
            else:
                self._book.commit(txn)
                events.extend(txn.events)
                changed = changed or bool(txn.events)
            if entry_done is not None:
                entry_done()
        return events, changed

    def _replace_on(self, txn: Txn, cmd: ReplaceQuote, rfq_id: str) -> None:
        """A mass quote's replacement: the replaced quote must be the desk's, on ``rfq_id``."""
        desk_id = require_id(cmd.desk_id, "desk_id")
        qrec = self._desk_quote(txn, desk_id, cmd.quote_id)
        if qrec.quote.rfq_id != rfq_id:
            raise NegotiationError(
                R.UNKNOWN_QUOTE, f"quote {cmd.quote_id!r} is not on RFQ {rfq_id!r}"
            )
        self._replace(txn, qrec.quote.quote_id, cmd.terms, "replaced by desk")

    def refuse(
        self, command: Command, reason: RejectReason, text: str, now: datetime
    ) -> list[Event]:
        """The rejection event for a command refused before it reached the engine (pre-trade
        risk). Timers due at ``now`` fire first, as in :meth:`handle`; nothing else changes."""
        now = _utc(now)
        events = self.tick(now)
        events.append(refusal_event(command, NegotiationError(reason, text), now, self._quote_of))
        return events

    def tick(self, now: datetime) -> list[Event]:
        """Fire every timer due at or before ``now`` (each at its own deadline) and return the
        resulting events. The edge calls this at :meth:`next_deadline`."""
        now = _utc(now)
        events: list[Event] = []
        while fired := self._book.timers.due(now):
            for timer in fired:
                txn = Txn(self._book, timer.due_at, self._ids)
                self._on_timer(txn, timer)
                self._book.commit(txn)
                events.extend(txn.events)
        return events

    # -- queries ------------------------------------------------------------------------------

    def has_rfq(self, rfq_id: str) -> bool:
        """Whether ``rfq_id`` is in memory (not unknown, not archived)."""
        return rfq_id in self._book.rfqs

    def rfq(self, rfq_id: str) -> RfqView:
        rec = self._book.rfqs[rfq_id]
        return RfqView(
            rec.rfq,
            rec.state,
            rec.desk_ids,
            rec.passed,
            rec.quote_ids,
            rec.pending_quote_id,
            rec.trade_id,
        )

    def quote(self, quote_id: str) -> QuoteView:
        rec = self._book.quotes[quote_id]
        return QuoteView(rec.sealed, rec.state, rec.hold.deadline if rec.hold else None)

    def live_quotes(self, rfq_id: str) -> tuple[SealedQuote, ...]:
        """What the client sees: every Active quote on its RFQ, oldest first."""
        if rfq_id not in self._book.rfqs:
            raise KeyError(rfq_id)
        return tuple(self._book.quotes[q].sealed for q in self._book.active_by_rfq.get(rfq_id, ()))

    def desk_live_quotes(self, desk_id: str, rfq_id: str | None = None) -> tuple[SealedQuote, ...]:
        """What one desk sees: only its own Active quotes."""
        ids = sorted(self._book.active_by_desk.get(desk_id, frozenset()))
        return tuple(
            self._book.quotes[q].sealed
            for q in ids
            if rfq_id is None or self._book.quotes[q].quote.rfq_id == rfq_id
        )

    def history(self, rfq_id: str) -> tuple[Event, ...]:
        """Every event of the negotiation on ``rfq_id``, in order (empty if unknown)."""
        return tuple(self._book.history.get(rfq_id, ()))

    def trade(self, trade_id: str) -> TradeCapture:
        return self._book.trades[trade_id]

    def trades(self) -> tuple[TradeCapture, ...]:
        return tuple(self._book.trades.values())

    def next_deadline(self) -> datetime | None:
        """When the next timer falls due; the edge should call :meth:`tick` then."""
        return self._book.timers.next_due_at()

    def last_look_stats(self) -> dict[str, DeskLastLookStats]:
        return last_look_stats(e for events in self._book.history.values() for e in events)

    def snapshot(self) -> EngineSnapshot:
        """Everything the engine knows, as comparable values."""
        return self._book.snapshot()

    def archive(self, rfq_id: str) -> tuple[Event, ...]:
        """Forget a finished RFQ (Confirmed, Expired, Cancelled or Rejected) and return its
        history, for the edge to call once that history is persisted: it keeps memory (and
        garbage-collector pauses) flat over a trading day. Its QuoteReqID, ClOrdIDs and
        QuoteRespIDs stay reserved, and a retried acceptance still gets its original answer;
        last-look statistics then come from the persisted events (``last_look_stats``)."""
        state = self._book.rfqs[rfq_id].state
        if state not in TERMINAL_RFQ_STATES:
            raise ValueError(f"RFQ {rfq_id} is {state.value}; only a finished RFQ can be archived")
        return tuple(self._book.archive(rfq_id))

    # -- plumbing -----------------------------------------------------------------------------

    def _quote_of(self, quote_id: object) -> Quote | None:
        rec = self._book.quotes.get(quote_id) if isinstance(quote_id, str) else None
        return rec.quote if rec is not None else None

    # -- shared steps -------------------------------------------------------------------------

    @staticmethod
    def _client_rfq(txn: Txn, client_id: str, rfq_id: object) -> RfqRecord:
        rec = txn.rfqs.get(rfq_id) if isinstance(rfq_id, str) else None
        if rec is None or rec.rfq.client_id != client_id:
            raise NegotiationError(R.UNKNOWN_RFQ, f"no RFQ {rfq_id!r} for client {client_id!r}")
        return rec

    @staticmethod
    def _desk_rfq(txn: Txn, desk_id: str, rfq_id: object) -> RfqRecord:
        rec = txn.rfqs.get(rfq_id) if isinstance(rfq_id, str) else None
        if rec is None:
            raise NegotiationError(R.UNKNOWN_RFQ, f"no RFQ {rfq_id!r}")
        if desk_id not in rec.desk_ids:
            raise NegotiationError(
                R.DESK_NOT_ROUTED, f"RFQ {rfq_id} is not routed to desk {desk_id!r}"
            )
        return rec

    @staticmethod
    def _desk_quote(txn: Txn, desk_id: str, quote_id: object) -> QuoteRecord:
        rec = txn.quotes.get(quote_id) if isinstance(quote_id, str) else None
        if rec is None or rec.quote.desk_id != desk_id:
            raise NegotiationError(R.UNKNOWN_QUOTE, f"no quote {quote_id!r} for desk {desk_id!r}")
        return rec

    @staticmethod
    def _require_live(rec: RfqRecord) -> None:
        state, rfq_id = rec.state, rec.rfq.rfq_id
        if state in LIVE_RFQ_STATES:
            return
        if state is RfqState.PENDING_EXECUTION:
            raise NegotiationError(
                R.RFQ_EXECUTING, f"RFQ {rfq_id} has an acceptance pending execution"
            )
        if state in (RfqState.FILLED, RfqState.CONFIRMED):
            raise NegotiationError(R.RFQ_FILLED, f"RFQ {rfq_id} has traded ({rec.trade_id})")
        if state is RfqState.EXPIRED:
            raise NegotiationError(R.RFQ_EXPIRED, f"RFQ {rfq_id} expired")
        raise NegotiationError(R.RFQ_NOT_OPEN, f"RFQ {rfq_id} is {state.value}")

    @staticmethod
    def _require_active(rec: QuoteRecord) -> None:
        quote_id = rec.quote.quote_id
        if rec.state is not QuoteState.ACTIVE:
            raise NegotiationError(R.QUOTE_NOT_LIVE, f"quote {quote_id} is {rec.state.value}")
        if rec.hold is not None:
            raise NegotiationError(
                R.QUOTE_HELD,
                f"quote {quote_id} has an acceptance in its last-look window; confirm or reject it",
            )

    def _check_new_ref(self, txn: Txn, client_id: str, space: str, ref: str) -> None:
        if (client_id, space, ref) in txn.client_refs:
            reason = R.DUPLICATE_CL_ORD_ID if space == _CL_ORD_ID else R.DUPLICATE_QUOTE_RESP_ID
            raise NegotiationError(reason, f"{space} {ref!r} already used by client {client_id!r}")

    def _set_rfq_state(self, txn: Txn, rfq_id: str, target: RfqState, reason: str) -> RfqRecord:
        rec = txn.rfqs[rfq_id]
        new = replace(rec, state=rfq_transition(rec.state, target))
        txn.rfqs[rfq_id] = new
        txn.emit(RfqStateChanged(rfq_id, rec.rfq.client_id, rec.state, new.state, reason, txn.now))
        return new

    def _set_quote_state(
        self, txn: Txn, quote_id: str, target: QuoteState, reason: str
    ) -> QuoteRecord:
        rec = txn.quotes[quote_id]
        new = replace(rec, state=quote_transition(rec.state, target))
        txn.put_quote(new)
        q = rec.quote
        txn.emit(
            QuoteStateChanged(q.rfq_id, quote_id, q.desk_id, rec.state, new.state, reason, txn.now)
        )
        return new

    def _close_counter(self, txn: Txn, counter_id: str, target: CounterState) -> None:
        rec = txn.counters[counter_id]
        txn.counters[counter_id] = replace(rec, state=counter_transition(rec.state, target))
        quote_rec = txn.quotes[rec.counter.quote_id]
        if quote_rec.open_counter_id == counter_id:
            txn.put_quote(replace(quote_rec, open_counter_id=None))

    def _retire_quote(
        self,
        txn: Txn,
        quote_id: str,
        target: QuoteState,
        status: QuoteStatus | None,
        reason: str,
    ) -> None:
        """Take an Active quote out of the market: close its counter, drop its timers."""
        rec = txn.quotes[quote_id]
        if rec.open_counter_id is not None:
            self._close_counter(txn, rec.open_counter_id, CounterState.LAPSED)
        txn.cancel(TimerKey(TimerKind.QUOTE_EXPIRY, quote_id))
        txn.cancel(TimerKey(TimerKind.LAST_LOOK, quote_id))
        self._set_quote_state(txn, quote_id, target, reason)
        if status is not None:
            q = rec.quote
            txn.emit(
                QuoteStatusChanged(
                    q.client_id, q.desk_id, q.rfq_id, quote_id, status, reason, txn.now
                )
            )

    def _active_quote_ids(self, txn: Txn, rfq_id: str) -> list[str]:
        return list(txn.active_by_rfq.get(rfq_id) or ())

    def _desk_active_quote(self, txn: Txn, rfq_id: str, desk_id: str) -> str | None:
        for q in self._active_quote_ids(txn, rfq_id):
            if txn.quotes[q].quote.desk_id == desk_id:
                return q
        return None

    def _settle(self, txn: Txn, rfq_id: str, reason: str) -> None:
        """Move a live RFQ to the state its quotes and counters imply."""
        rec = txn.rfqs[rfq_id]
        if rec.state is RfqState.PENDING_EXECUTION:
            if rec.pending_quote_id is not None:
                return
        elif rec.state not in LIVE_RFQ_STATES:
            return
        if any(txn.counters[c].state is CounterState.OPEN for c in rec.counter_ids):
            target = RfqState.NEGOTIATING
        elif self._active_quote_ids(txn, rfq_id):
            target = RfqState.QUOTED
        else:
            target = RfqState.OPEN
        if target is not rec.state:
            self._set_rfq_state(txn, rfq_id, target, reason)

    def _close_rfq(
        self,
        txn: Txn,
        rfq_id: str,
        target: RfqState,
        reason: str,
        *,
        notify_desks: bool = True,
    ) -> None:
        """End a live RFQ without a trade: Expired, Cancelled (client cancel or pass) or
        Rejected (every desk passed). Notices go out per outcome."""
        rec = txn.rfqs[rfq_id]
        desk_quote = {txn.quotes[q].quote.desk_id: q for q in self._active_quote_ids(txn, rfq_id)}
        expired = target is RfqState.EXPIRED
        for quote_id in desk_quote.values():
            self._retire_quote(
                txn,
                quote_id,
                QuoteState.EXPIRED if expired else QuoteState.CANCELLED,
                QuoteStatus.EXPIRED if expired else QuoteStatus.REMOVED_FROM_MARKET,
                reason,
            )
        txn.cancel(TimerKey(TimerKind.RFQ_EXPIRY, rfq_id))
        self._set_rfq_state(txn, rfq_id, target, reason)
        rfq = rec.rfq
        if target is RfqState.REJECTED:
            txn.emit(
                QuoteRequestRejected(
                    rfq.client_id,
                    rfq.quote_req_id,
                    rfq_id,
                    R.ALL_DESKS_PASSED,
                    quote_request_reject_reason(R.ALL_DESKS_PASSED),
                    reason,
                    txn.now,
                )
            )
            return
        txn.emit(RfqEnded(rfq.client_id, rfq_id, rfq.quote_req_id, target, reason, txn.now))
        if notify_desks:
            for desk_id in rec.desk_ids:
                txn.emit(RfqWithdrawn(desk_id, rfq_id, target, reason, txn.now))

    def _new_quote(
        self,
        txn: Txn,
        rfq_id: str,
        desk_id: str,
        terms: QuoteTerms,
        replaces_quote_id: str | None = None,
        counter_id: str | None = None,
    ) -> str:
        rec = txn.rfqs[rfq_id]
        guard = txn.guards.get(desk_id)
        if guard is not None and guard.frozen:
            raise NegotiationError(
                R.DESK_FROZEN,
                f"desk {desk_id!r} is frozen by market maker protection ({guard.reason}); "
                "reset it to quote again",
            )
        key = None
        if self._keyring is not None:
            if desk_id not in self._keyring:
                raise NegotiationError(R.NO_SIGNING_KEY, f"desk {desk_id!r} has no signing key")
            key = self._keyring.private_key(desk_id)
        quote = build_quote(
            terms,
            rec.rfq,
            quote_id=txn.next_id(IdKind.QUOTE),
            desk_id=desk_id,
            now=txn.now,
            replaces_quote_id=replaces_quote_id,
            counter_id=counter_id,
        )
        sealed = seal_quote(quote, key)
        quote_id = quote.quote_id
        txn.put_quote(QuoteRecord(sealed, QuoteState.PENDING))
        txn.rfqs[rfq_id] = replace(txn.rfqs[rfq_id], quote_ids=rec.quote_ids + (quote_id,))
        txn.emit(
            QuoteStateChanged(
                rfq_id, quote_id, desk_id, None, QuoteState.PENDING, "submitted", txn.now
            )
        )
        self._set_quote_state(txn, quote_id, QuoteState.ACTIVE, "validated and sealed")
        txn.schedule(TimerKey(TimerKind.QUOTE_EXPIRY, quote_id), quote.valid_until)
        txn.emit(QuoteAcknowledged(desk_id, sealed, txn.now))
        txn.emit(QuoteToClient(quote.client_id, sealed, txn.now))
        return quote_id

    def _replace(self, txn: Txn, quote_id: str, terms: QuoteTerms, reason: str) -> str:
        rec = txn.quotes[quote_id]
        rfq_id = rec.quote.rfq_id
        self._require_active(rec)
        self._require_live(txn.rfqs[rfq_id])
        counter_id = rec.open_counter_id
        if counter_id is not None:
            self._close_counter(txn, counter_id, CounterState.ANSWERED)
        self._retire_quote(txn, quote_id, QuoteState.REPLACED, None, reason)
        new_id = self._new_quote(
            txn,
            rfq_id,
            rec.quote.desk_id,
            terms,
            replaces_quote_id=quote_id,
            counter_id=counter_id,
        )
        self._settle(txn, rfq_id, reason)
        return new_id

    # -- client commands ----------------------------------------------------------------------

    def _submit_rfq(self, txn: Txn, cmd: SubmitRfq) -> None:
        client_id = require_id(cmd.client_id, "client_id")
        quote_req_id = require_id(cmd.quote_req_id, "quote_req_id")
        existing = txn.quote_req_ids.get((client_id, quote_req_id))
        if existing is not None:
            raise NegotiationError(
                R.DUPLICATE_QUOTE_REQ_ID,
                f"QuoteReqID {quote_req_id!r} already used by client {client_id!r} ({existing})",
            )
        cfg = self._config
        rfq = build_rfq(cmd, txn.next_id(IdKind.RFQ), txn.now, cfg.rfq_ttl, cfg.max_rfq_ttl)
        kinds = list(dict.fromkeys(leg.instrument.kind for leg in rfq.priced_legs))
        desks = self._routing.desks_for(client_id, kinds)
        if not desks:
            raise NegotiationError(
                R.NO_ROUTE,
                f"no desk is configured for client {client_id!r} and "
                f"{'/'.join(k.value for k in kinds)}",
            )
        if cmd.desks:
            desks = self._chosen_desks(client_id, cmd.desks, desks)
        rfq = self._disclosure(rfq, cmd)
        rfq_id = rfq.rfq_id
        txn.rfqs[rfq_id] = RfqRecord(rfq, RfqState.NEW, desks)
        txn.quote_req_ids[(client_id, quote_req_id)] = rfq_id
        txn.emit(RfqStateChanged(rfq_id, client_id, None, RfqState.NEW, "received", txn.now))
        self._set_rfq_state(txn, rfq_id, RfqState.OPEN, f"routed to {len(desks)} desk(s)")
        txn.schedule(TimerKey(TimerKind.RFQ_EXPIRY, rfq_id), rfq.expire_at)
        txn.emit(RfqAcknowledged(client_id, rfq, desks, txn.now))
        for desk_id in desks:
            txn.emit(RfqToDesk(desk_id, rfq, txn.now))

    @staticmethod
    def _chosen_desks(
        client_id: str, chosen: tuple[str, ...], routed: tuple[str, ...]
    ) -> tuple[str, ...]:
        """The client's choice of dealers, in its order; each must be routed for it."""
        if not isinstance(chosen, tuple):
            raise NegotiationError(R.MISSING_FIELD, f"desks must be a tuple, got {chosen!r}")
        for desk in chosen:
            if not isinstance(desk, str) or desk not in routed:
                raise NegotiationError(
                    R.DESK_NOT_ALLOWED,
                    f"desk {desk!r} is not routed for client {client_id!r} and this instrument "
                    f"(allowed: {', '.join(routed)})",
                )
        return tuple(dict.fromkeys(chosen))

    @staticmethod
    def _disclosure(rfq: Rfq, cmd: SubmitRfq) -> Rfq:
        if cmd.disclosed is None or cmd.disclosed is True:
            return rfq
        if cmd.disclosed is not False:
            raise NegotiationError(
                R.MISSING_FIELD, f"disclosed must be a bool, got {cmd.disclosed!r}"
            )
        alias = require_id(cmd.alias, "alias")
        if alias == rfq.client_id:
            raise NegotiationError(
                R.MISSING_FIELD, "an anonymous RFQ's alias must not be its client id"
            )
        return replace(rfq, disclosed=False, alias=alias)

    def _cancel_rfq(self, txn: Txn, cmd: CancelRfq) -> None:
        rec = self._client_rfq(txn, cmd.client_id, cmd.rfq_id)
        self._require_live(rec)
        self._close_rfq(txn, rec.rfq.rfq_id, RfqState.CANCELLED, "cancelled by client")

    def _client_pass(self, txn: Txn, cmd: ClientPass) -> None:
        client_id = require_id(cmd.client_id, "client_id")
        ref = require_id(cmd.quote_resp_id, "quote_resp_id")
        self._check_new_ref(txn, client_id, _QUOTE_RESP_ID, ref)
        rec = self._client_rfq(txn, client_id, cmd.rfq_id)
        self._require_live(rec)
        rfq_id = rec.rfq.rfq_id
        if cmd.quote_id is None:
            notices = [(d, self._desk_active_quote(txn, rfq_id, d)) for d in rec.desk_ids]
            self._close_rfq(txn, rfq_id, RfqState.CANCELLED, "client passed", notify_desks=False)
            for desk_id, quote_id in notices:
                txn.emit(ClientPassed(desk_id, rfq_id, quote_id, txn.now))
        else:
            qrec = txn.quotes.get(cmd.quote_id) if isinstance(cmd.quote_id, str) else None
            if qrec is None or qrec.quote.rfq_id != rfq_id:
                raise NegotiationError(R.UNKNOWN_QUOTE, f"no quote {cmd.quote_id!r} on {rfq_id}")
            self._require_active(qrec)
            self._retire_quote(
                txn, cmd.quote_id, QuoteState.CANCELLED, QuoteStatus.PASS, "client passed"
            )
            txn.emit(ClientPassed(qrec.quote.desk_id, rfq_id, cmd.quote_id, txn.now))
            self._settle(txn, rfq_id, "client passed on a quote")
        txn.client_refs[(client_id, _QUOTE_RESP_ID, ref)] = ClientRef(cmd)

    def _live_quote_for_client(self, txn: Txn, rfq_id: str, quote_id: object) -> QuoteRecord:
        qrec = txn.quotes.get(quote_id) if isinstance(quote_id, str) else None
        if qrec is None or qrec.quote.rfq_id != rfq_id:
            raise NegotiationError(R.UNKNOWN_QUOTE, f"no quote {quote_id!r} on {rfq_id}")
        if qrec.state is QuoteState.EXPIRED or (
            qrec.state is QuoteState.ACTIVE and txn.now >= qrec.quote.valid_until
        ):
            raise NegotiationError(
                R.QUOTE_EXPIRED,
                f"quote {quote_id} expired at {qrec.quote.valid_until.isoformat()}",
            )
        return qrec

    def _counter(self, txn: Txn, cmd: CounterQuote) -> None:
        client_id = require_id(cmd.client_id, "client_id")
        ref = require_id(cmd.quote_resp_id, "quote_resp_id")
        self._check_new_ref(txn, client_id, _QUOTE_RESP_ID, ref)
        rec = self._client_rfq(txn, client_id, cmd.rfq_id)
        self._require_live(rec)
        rfq_id = rec.rfq.rfq_id
        qrec = self._live_quote_for_client(txn, rfq_id, cmd.quote_id)
        self._require_active(qrec)
        if qrec.open_counter_id is not None:
            raise NegotiationError(
                R.COUNTER_PENDING,
                f"quote {cmd.quote_id} already has counter {qrec.open_counter_id} open",
            )
        side, price, quantity = check_counter(cmd, rec.rfq, qrec.quote)
        counter = Counter(
            counter_id=txn.next_id(IdKind.COUNTER),
            rfq_id=rfq_id,
            quote_id=qrec.quote.quote_id,
            client_id=client_id,
            desk_id=qrec.quote.desk_id,
            quote_resp_id=ref,
            side=side,
            price=price,
            quantity=quantity,
            countered_at=txn.now,
        )
        txn.counters[counter.counter_id] = CounterRecord(counter, CounterState.OPEN)
        txn.put_quote(replace(qrec, open_counter_id=counter.counter_id))
        txn.rfqs[rfq_id] = replace(rec, counter_ids=rec.counter_ids + (counter.counter_id,))
        txn.client_refs[(client_id, _QUOTE_RESP_ID, ref)] = ClientRef(cmd)
        txn.emit(CounterToDesk(counter.desk_id, counter, txn.now))
        self._settle(txn, rfq_id, f"client countered {counter.quote_id}")

    def _accept(self, txn: Txn, cmd: AcceptQuote) -> None:
        client_id = require_id(cmd.client_id, "client_id")
        ref = require_id(cmd.client_ref, "client_ref")
        if not isinstance(cmd.via, AcceptVia):
            raise NegotiationError(R.MISSING_FIELD, f"via must be an AcceptVia, got {cmd.via!r}")
        space = _REF_SPACE[cmd.via]
        prior = txn.client_refs.get((client_id, space, ref))
        if prior is not None and prior.command == cmd and prior.outcome:
            txn.replies.extend(prior.outcome)
            return
        self._check_new_ref(txn, client_id, space, ref)

        qrec = txn.quotes.get(cmd.quote_id) if isinstance(cmd.quote_id, str) else None
        if qrec is None or qrec.quote.client_id != client_id:
            raise NegotiationError(
                R.UNKNOWN_QUOTE, f"no quote {cmd.quote_id!r} for client {client_id!r}"
            )
        quote = qrec.quote
        rec = txn.rfqs[quote.rfq_id]
        if rec.state in LIVE_RFQ_STATES and txn.now >= rec.rfq.expire_at:
            raise NegotiationError(R.RFQ_EXPIRED, f"RFQ {quote.rfq_id} expired")
        self._require_live(rec)
        qrec = self._live_quote_for_client(txn, quote.rfq_id, cmd.quote_id)
        if qrec.state is not QuoteState.ACTIVE:
            raise NegotiationError(
                R.QUOTE_NOT_LIVE, f"quote {quote.quote_id} is {qrec.state.value}"
            )
        if cmd.quote_hash != qrec.sealed.quote_hash:
            raise NegotiationError(
                R.QUOTE_HASH_MISMATCH,
                f"quote_hash {cmd.quote_hash!r} is not the hash of live quote {quote.quote_id}",
            )
        if quote.quote_type is QuoteType.INDICATIVE:
            raise NegotiationError(
                R.QUOTE_INDICATIVE, f"quote {quote.quote_id} is indicative; ask for a tradeable one"
            )
        side = require_side(cmd.side)
        price = quote.price_for(side)
        if (rec.rfq.side is not None and side is not rec.rfq.side) or price is None:
            raise NegotiationError(
                R.SIDE_NOT_QUOTED, f"quote {quote.quote_id} has no price to {side.name}"
            )
        quantity = (
            rec.rfq.quantity
            if cmd.quantity is None
            else require_positive(cmd.quantity, "quantity", R.INVALID_QUANTITY)
        )
        size = quote.size_for(side)
        if size is not None and quantity > size:
            raise NegotiationError(
                R.QUANTITY_EXCEEDS_QUOTE, f"quantity {quantity} exceeds the quoted size {size}"
            )
        if cmd.price is not None and require_decimal(cmd.price, "price", R.INVALID_PRICE) != price:
            raise NegotiationError(
                R.PRICE_MISMATCH, f"price {cmd.price} does not match the quoted {price}"
            )
        acceptance = Acceptance(
            rfq_id=quote.rfq_id,
            quote_id=quote.quote_id,
            client_id=client_id,
            via=cmd.via,
            client_ref=ref,
            side=side,
            quantity=quantity,
            price=price,
            quote_hash=qrec.sealed.quote_hash,
            accepted_at=txn.now,
        )
        txn.client_refs[(client_id, space, ref)] = ClientRef(cmd)
        for counter_id in rec.counter_ids:
            if txn.counters[counter_id].state is CounterState.OPEN:
                self._close_counter(txn, counter_id, CounterState.LAPSED)
        txn.rfqs[quote.rfq_id] = replace(txn.rfqs[quote.rfq_id], pending_quote_id=quote.quote_id)
        self._set_rfq_state(
            txn,
            quote.rfq_id,
            RfqState.PENDING_EXECUTION,
            f"{space} {ref} accepted {quote.quote_id}",
        )
        if quote.firmness is Firmness.FIRM:
            self._execute(txn, quote.quote_id, acceptance, txn.now)
        else:
            self._hold(txn, quote.quote_id, acceptance)

    def _record_outcome(self, txn: Txn, acceptance: Acceptance, event: Event) -> None:
        key = (acceptance.client_id, _REF_SPACE[acceptance.via], acceptance.client_ref)
        txn.client_refs[key] = replace(txn.client_refs[key], outcome=(event,))

    def _hold(self, txn: Txn, quote_id: str, acceptance: Acceptance) -> None:
        qrec = txn.quotes[quote_id]
        deadline = txn.now + self._config.last_look_max_hold
        txn.put_quote(replace(qrec, hold=Hold(acceptance, deadline)))
        txn.schedule(TimerKey(TimerKind.LAST_LOOK, quote_id), deadline)
        pending = AcceptancePending(
            acceptance.client_id,
            acceptance.rfq_id,
            quote_id,
            acceptance.client_ref,
            acceptance.via,
            deadline,
            txn.now,
        )
        txn.emit(pending)
        txn.emit(
            LastLookRequested(
                qrec.quote.desk_id,
                acceptance.rfq_id,
                quote_id,
                acceptance.client_id,
                acceptance.side,
                acceptance.quantity,
                acceptance.price,
                deadline,
                txn.now,
            )
        )
        self._record_outcome(txn, acceptance, pending)

    def _execute(
        self, txn: Txn, quote_id: str, acceptance: Acceptance, executed_at: datetime
    ) -> None:
        """Capture the one trade of the RFQ and tell every desk how it ended."""
        qrec = txn.quotes[quote_id]
        quote = qrec.quote
        rfq_id = quote.rfq_id
        side = acceptance.side
        others = [txn.quotes[q] for q in self._active_quote_ids(txn, rfq_id) if q != quote_id]
        cover = runner_up((o.quote for o in others), side)
        trade = trade_capture(
            txn.next_id(IdKind.TRADE),
            txn.rfqs[rfq_id].rfq,
            quote,
            acceptance,
            executed_at,
            self._party,
        )
        txn.trades[trade.trade_id] = trade
        txn.put_quote(replace(qrec, hold=None))
        self._retire_quote(txn, quote_id, QuoteState.HIT, None, f"filled as {trade.trade_id}")
        for other in others:
            self._retire_quote(
                txn,
                other.quote.quote_id,
                QuoteState.CANCELLED,
                QuoteStatus.REMOVED_FROM_MARKET,
                "RFQ traded with another quote",
            )
        txn.cancel(TimerKey(TimerKind.RFQ_EXPIRY, rfq_id))
        txn.rfqs[rfq_id] = replace(txn.rfqs[rfq_id], trade_id=trade.trade_id, pending_quote_id=None)
        rec = self._set_rfq_state(txn, rfq_id, RfqState.FILLED, f"trade {trade.trade_id}")
        captured = TradeCaptured(
            acceptance.client_id,
            quote.desk_id,
            acceptance.client_ref,
            acceptance.via,
            trade,
            txn.now,
        )
        txn.emit(captured)
        self._record_outcome(txn, acceptance, captured)
        self._count_fill(txn, quote.desk_id, acceptance)
        for desk_id in rec.desk_ids:
            if desk_id == quote.desk_id:
                continue
            if self._config.send_cover and cover is not None and cover.desk_id == desk_id:
                txn.emit(Cover(desk_id, rfq_id, cover.quote_id, txn.now))
            else:
                last = next(
                    (q for q in reversed(rec.quote_ids) if txn.quotes[q].quote.desk_id == desk_id),
                    None,
                )
                txn.emit(DoneAway(desk_id, rfq_id, last, txn.now))

    def _count_fill(self, txn: Txn, desk_id: str, acceptance: Acceptance) -> None:
        """Count a fill against the desk's protection; trip it when a limit is reached (the
        edge then pulls the desk's quotes with :class:`PullDeskQuotes`)."""
        limits = self._protection.get(desk_id) or self._protection.get("*")
        guard = txn.guards.get(desk_id) or DeskGuard()
        if limits is None or guard.frozen:
            return
        fill = Fill(acceptance.accepted_at, acceptance.quantity * abs(acceptance.price))
        guard = record_fill(guard, limits, fill, txn.now)
        txn.guards[desk_id] = guard
        if guard.frozen:
            assert guard.reason is not None
            txn.emit(
                DeskProtectionTripped(
                    desk_id, guard.reason, len(guard.fills), guard.notional, txn.now
                )
            )

    # -- desk commands ------------------------------------------------------------------------

    def _submit_quote(self, txn: Txn, cmd: SubmitQuote) -> None:
        desk_id = require_id(cmd.desk_id, "desk_id")
        rec = self._desk_rfq(txn, desk_id, cmd.rfq_id)
        self._require_live(rec)
        rfq_id = rec.rfq.rfq_id
        if desk_id in rec.passed:
            raise NegotiationError(R.DESK_PASSED, f"desk {desk_id!r} passed on {rfq_id}")
        live = self._desk_active_quote(txn, rfq_id, desk_id)
        if live is not None:
            raise NegotiationError(
                R.QUOTE_ALREADY_LIVE, f"desk {desk_id!r} already has live quote {live}; replace it"
            )
        self._new_quote(txn, rfq_id, desk_id, cmd.terms)
        self._settle(txn, rfq_id, f"quoted by {desk_id}")

    def _replace_quote(self, txn: Txn, cmd: ReplaceQuote) -> None:
        desk_id = require_id(cmd.desk_id, "desk_id")
        qrec = self._desk_quote(txn, desk_id, cmd.quote_id)
        self._replace(txn, qrec.quote.quote_id, cmd.terms, "replaced by desk")

    def _cancel_quote(self, txn: Txn, cmd: CancelQuote) -> None:
        desk_id = require_id(cmd.desk_id, "desk_id")
        qrec = self._desk_quote(txn, desk_id, cmd.quote_id)
        self._require_active(qrec)
        self._retire_quote(
            txn,
            qrec.quote.quote_id,
            QuoteState.CANCELLED,
            QuoteStatus.REMOVED_FROM_MARKET,
            "withdrawn by desk",
        )
        self._settle(txn, qrec.quote.rfq_id, "quote withdrawn")

    def _cancel_all(self, txn: Txn, cmd: CancelAllQuotes) -> None:
        desk_id = require_id(cmd.desk_id, "desk_id")
        if cmd.rfq_id is not None:
            self._desk_rfq(txn, desk_id, cmd.rfq_id)
        touched: dict[str, None] = {}
        for quote_id in sorted(txn.active_by_desk.get(desk_id) or ()):
            qrec = txn.quotes[quote_id]
            if qrec.hold is not None:
                continue
            if cmd.rfq_id is not None and qrec.quote.rfq_id != cmd.rfq_id:
                continue
            self._retire_quote(
                txn,
                quote_id,
                QuoteState.CANCELLED,
                QuoteStatus.CANCELED_ALL,
                "mass-cancelled by desk",
            )
            touched[qrec.quote.rfq_id] = None
        for rfq_id in touched:
            self._settle(txn, rfq_id, "quotes withdrawn")

    def _pull_quotes(self, txn: Txn, cmd: PullDeskQuotes) -> None:
        desk_id = require_id(cmd.desk_id, "desk_id")
        reason = (
            "market maker protection tripped"
            if cmd.cause is PullCause.PROTECTION
            else "desk disconnected (cancel on disconnect)"
        )
        touched: dict[str, None] = {}
        for quote_id in sorted(txn.active_by_desk.get(desk_id) or ()):
            qrec = txn.quotes[quote_id]
            if qrec.hold is not None:
                continue
            self._retire_quote(
                txn, quote_id, QuoteState.CANCELLED, QuoteStatus.REMOVED_FROM_MARKET, reason
            )
            touched[qrec.quote.rfq_id] = None
        for rfq_id in touched:
            self._settle(txn, rfq_id, reason)

    def _reset_protection(self, txn: Txn, cmd: ResetDeskProtection) -> None:
        desk_id = require_id(cmd.desk_id, "desk_id")
        guard = txn.guards.get(desk_id)
        if guard is None or guard.tripped_at is None:
            raise NegotiationError(
                R.DESK_NOT_FROZEN, f"desk {desk_id!r} is not frozen by market maker protection"
            )
        txn.guards[desk_id] = DeskGuard()
        txn.emit(DeskProtectionReset(desk_id, guard.tripped_at, txn.now))

    def _desk_pass(self, txn: Txn, cmd: DeskPass) -> None:
        desk_id = require_id(cmd.desk_id, "desk_id")
        rec = self._desk_rfq(txn, desk_id, cmd.rfq_id)
        self._require_live(rec)
        rfq_id = rec.rfq.rfq_id
        if desk_id in rec.passed:
            raise NegotiationError(R.DESK_PASSED, f"desk {desk_id!r} already passed on {rfq_id}")
        live = self._desk_active_quote(txn, rfq_id, desk_id)
        if live is not None:
            self._retire_quote(
                txn, live, QuoteState.CANCELLED, QuoteStatus.REMOVED_FROM_MARKET, "desk passed"
            )
        rec = replace(txn.rfqs[rfq_id], passed=rec.passed | {desk_id})
        txn.rfqs[rfq_id] = rec
        txn.emit(DeskPassed(rec.rfq.client_id, rfq_id, desk_id, txn.now))
        if rec.passed >= set(rec.desk_ids):
            self._close_rfq(txn, rfq_id, RfqState.REJECTED, "every desk passed")
        else:
            self._settle(txn, rfq_id, f"{desk_id} passed")

    def _answer_counter(self, txn: Txn, cmd: AnswerCounter) -> None:
        desk_id = require_id(cmd.desk_id, "desk_id")
        crec = txn.counters.get(cmd.counter_id) if isinstance(cmd.counter_id, str) else None
        if crec is None or crec.counter.desk_id != desk_id:
            raise NegotiationError(
                R.UNKNOWN_COUNTER, f"no counter {cmd.counter_id!r} for desk {desk_id!r}"
            )
        if crec.state is not CounterState.OPEN:
            raise NegotiationError(
                R.COUNTER_CLOSED, f"counter {cmd.counter_id} is {crec.state.value}"
            )
        counter = crec.counter
        if cmd.terms is not None:
            self._replace(
                txn, counter.quote_id, cmd.terms, f"answered counter {counter.counter_id}"
            )
            return
        self._close_counter(txn, counter.counter_id, CounterState.DECLINED)
        txn.emit(
            CounterDeclined(
                counter.client_id,
                counter.rfq_id,
                counter.quote_id,
                counter.counter_id,
                desk_id,
                cmd.text,
                txn.now,
            )
        )
        self._settle(txn, counter.rfq_id, f"counter {counter.counter_id} declined")

    def _held_quote(self, txn: Txn, desk_id: str, quote_id: object) -> QuoteRecord:
        qrec = self._desk_quote(txn, desk_id, quote_id)
        if qrec.hold is None:
            if qrec.last_look is LastLookOutcome.TIMED_OUT:
                raise NegotiationError(
                    R.LAST_LOOK_WINDOW_CLOSED,
                    f"the last-look window on {quote_id} closed; the fill was rejected",
                )
            raise NegotiationError(R.NO_PENDING_LAST_LOOK, f"nothing pending on quote {quote_id}")
        if txn.now >= qrec.hold.deadline:  # pragma: no cover - handle() fires the timer first
            raise NegotiationError(R.LAST_LOOK_WINDOW_CLOSED, f"window on {quote_id} closed")
        return qrec

    def _confirm_last_look(self, txn: Txn, cmd: ConfirmLastLook) -> None:
        desk_id = require_id(cmd.desk_id, "desk_id")
        qrec = self._held_quote(txn, desk_id, cmd.quote_id)
        quote_id = qrec.quote.quote_id
        hold = qrec.hold
        assert hold is not None
        acceptance = hold.acceptance
        txn.put_quote(replace(qrec, last_look=LastLookOutcome.CONFIRMED))
        txn.emit(
            LastLookResolved(
                acceptance.rfq_id,
                quote_id,
                desk_id,
                LastLookOutcome.CONFIRMED,
                acceptance.accepted_at,
                txn.now - acceptance.accepted_at,
                txn.now,
            )
        )
        self._execute(txn, quote_id, acceptance, txn.now)

    def _reject_last_look(self, txn: Txn, cmd: RejectLastLook) -> None:
        desk_id = require_id(cmd.desk_id, "desk_id")
        qrec = self._held_quote(txn, desk_id, cmd.quote_id)
        self._end_hold(txn, qrec.quote.quote_id, LastLookOutcome.REJECTED, cmd.text)

    def _end_hold(
        self, txn: Txn, quote_id: str, outcome: LastLookOutcome, text: str | None
    ) -> None:
        """A last look ended without a fill: reject the acceptance, pull the quote, and put the
        RFQ back in play (or let it expire if its time ran out during the hold)."""
        qrec = txn.quotes[quote_id]
        assert qrec.hold is not None
        acceptance = qrec.hold.acceptance
        rfq_id = acceptance.rfq_id
        txn.put_quote(replace(qrec, hold=None, last_look=outcome))
        txn.emit(
            LastLookResolved(
                rfq_id,
                quote_id,
                qrec.quote.desk_id,
                outcome,
                acceptance.accepted_at,
                txn.now - acceptance.accepted_at,
                txn.now,
            )
        )
        timed_out = outcome is LastLookOutcome.TIMED_OUT
        reason = R.LAST_LOOK_TIMEOUT if timed_out else R.LAST_LOOK_REJECTED
        detail = (
            f"desk did not answer within {self._config.last_look_max_hold}"
            if timed_out
            else f"desk rejected the fill{': ' + text if text else ''}"
        )
        self._retire_quote(
            txn, quote_id, QuoteState.CANCELLED, QuoteStatus.REMOVED_FROM_MARKET, detail
        )
        rejected = AcceptanceRejected(
            client_id=acceptance.client_id,
            rfq_id=rfq_id,
            quote_id=quote_id,
            client_ref=acceptance.client_ref,
            via=acceptance.via,
            reason=reason,
            ord_rej_reason=ord_rej_reason(reason),
            quote_status=quote_status(reason),
            text=detail,
            at=txn.now,
        )
        txn.emit(rejected)
        self._record_outcome(txn, acceptance, rejected)
        rec = replace(txn.rfqs[rfq_id], pending_quote_id=None)
        txn.rfqs[rfq_id] = rec
        if rec.expiry_due or txn.now >= rec.rfq.expire_at:
            self._close_rfq(txn, rfq_id, RfqState.EXPIRED, "expired during last look")
        else:
            self._settle(txn, rfq_id, f"last look {outcome.value}")

    # -- post-trade and timers ----------------------------------------------------------------

    def _confirm_trade(self, txn: Txn, cmd: ConfirmTrade) -> None:
        trade = txn.trades.get(cmd.trade_id) if isinstance(cmd.trade_id, str) else None
        if trade is None or trade.rfq_id is None:
            raise NegotiationError(R.UNKNOWN_TRADE, f"no trade {cmd.trade_id!r}")
        self._set_rfq_state(
            txn, trade.rfq_id, RfqState.CONFIRMED, f"trade {trade.trade_id} affirmed"
        )

    def _on_timer(self, txn: Txn, fired: TimerFired) -> None:
        kind, ref = fired.key.kind, fired.key.ref
        if kind is TimerKind.RFQ_EXPIRY:
            rec = txn.rfqs.get(ref)
            if rec is None:
                return
            if rec.state in LIVE_RFQ_STATES:
                self._close_rfq(txn, ref, RfqState.EXPIRED, "ExpireTime reached")
            elif rec.state is RfqState.PENDING_EXECUTION:
                txn.rfqs[ref] = replace(rec, expiry_due=True)
        elif kind is TimerKind.QUOTE_EXPIRY:
            qrec = txn.quotes.get(ref)
            if qrec is not None and qrec.state is QuoteState.ACTIVE and qrec.hold is None:
                self._retire_quote(
                    txn, ref, QuoteState.EXPIRED, QuoteStatus.EXPIRED, "ValidUntilTime reached"
                )
                self._settle(txn, qrec.quote.rfq_id, f"quote {ref} expired")
        elif kind is TimerKind.LAST_LOOK:
            qrec = txn.quotes.get(ref)
            if qrec is not None and qrec.hold is not None:
                self._end_hold(txn, ref, LastLookOutcome.TIMED_OUT, None)


def _utc(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
    return now.astimezone(UTC)
