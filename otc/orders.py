"""Orders: the FIX 4.4 order state machine and the manager that drives it.

``OrderManager.handle`` takes a normalised inbound message from a client and returns what
follows from it: messages to send and order snapshots to persist. It does no I/O, so the FIX
adapter, the tests and the benchmark all drive exactly the same logic.

Memory does not grow with history: a finished order (filled, cancelled, rejected) leaves the
manager once the events that finished it are returned, and ClOrdIDs are remembered per trading
day in fixed-size filters (:mod:`otc.clordids`). What the core no longer holds is the edge's
record; before a message that needs it, :meth:`OrderManager.lookup` says what to read, and the
edge passes the answer to :meth:`OrderManager.handle` as a :class:`History`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter

from fixspec import messages as m
from fixspec.instruments import Instrument
from otc import venue as v
from otc.clordids import ClOrdIdDays, Seen
from otc.risk import RiskCheck

ZERO = Decimal(0)
TERMINAL = frozenset({m.OrdStatus.FILLED, m.OrdStatus.CANCELED, m.OrdStatus.REJECTED})


@dataclass(frozen=True, slots=True)
class Order:
    """One order's current state. Immutable: every change makes a new snapshot."""

    order_id: str
    owner: str  # the client's CompID
    cl_ord_id: str
    instrument: Instrument
    side: m.Side
    ord_type: m.OrdType
    quantity: Decimal
    price: Decimal | None
    time_in_force: m.TimeInForce
    status: m.OrdStatus
    cum_qty: Decimal
    avg_px: Decimal
    created_at: datetime
    updated_at: datetime
    orig_cl_ord_id: str | None = None
    account: str | None = None
    text: str | None = None
    # The request waiting on the venue (a cancel or replace), so its answer can name it.
    pending_cl_ord_id: str | None = None
    pending_quantity: Decimal | None = None
    pending_price: Decimal | None = None

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if self.status in TERMINAL else self.quantity - self.cum_qty

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL


_ORDER_FIELDS = tuple(f.name for f in fields(Order))
_order_values = attrgetter(*_ORDER_FIELDS)


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to the client whose CompID is ``to``."""

    to: str
    message: m.OutboundMessage


@dataclass(frozen=True, slots=True)
class OrderUpdated:
    order: Order


@dataclass(frozen=True, slots=True)
class ClOrdIdUsed:
    """``owner`` used ``cl_ord_id`` on ``trading_day``: the edge records it, so the ClOrdID is
    refused again that day after the core's filter answers "maybe" or after a restart."""

    owner: str
    cl_ord_id: str
    trading_day: date


CoreEvent = Send | OrderUpdated | ClOrdIdUsed

# The trading day a client's message at ``now`` belongs to (its session schedule's, or UTC's)
TradingDay = Callable[[str, datetime], date]


def utc_day(owner: str, now: datetime) -> date:
    return now.date()


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the edge must read from its records before :meth:`OrderManager.handle` can answer:
    whether ``cl_ord_ids`` were used by ``owner`` on ``trading_day``, and (``order_cl_ord_id``)
    the finished order a ClOrdID names, which is no longer in memory."""

    owner: str
    trading_day: date
    cl_ord_ids: tuple[str, ...] = ()
    order_cl_ord_id: str | None = None


@dataclass(frozen=True, slots=True)
class History:
    """The edge's answer to a :class:`Lookup`."""

    lookup: Lookup
    used: frozenset[str] = frozenset()
    order: Order | None = None


class OrderManager:
    """The orders not yet finished, keyed by our OrderID and by each client's ClOrdIDs."""

    def __init__(
        self,
        venue: v.Venue,
        risk: RiskCheck | None = None,
        clock: Callable[[], datetime] = m.utcnow,
        id_prefix: str = "O",
        start_seq: int = 0,
        trading_day: TradingDay = utc_day,
        clordids: ClOrdIdDays | None = None,
    ) -> None:
        self.venue = venue
        self.risk = risk or RiskCheck()
        self.clock = clock
        self._prefix = id_prefix
        self._ids = itertools.count(start_seq + 1)
        self._exec_ids = itertools.count(1)
        self.orders: dict[str, Order] = {}
        self._by_clordid: dict[tuple[str, str], str] = {}
        self._keys: dict[str, list[tuple[str, str]]] = {}  # order id -> its _by_clordid keys
        self._finished: list[str] = []  # finished orders to leave memory at the end of a call
        self.trading_day = trading_day
        self.clordids = clordids or ClOrdIdDays()
        self.evicted = 0  # finished orders that have left memory since start
        self._cleared: tuple[str, str, date] | None = None  # what lookup() just found unused
        # per client, the notional of finished orders (part of its exposure; the edge keeps it)
        self.finished_notional: dict[str, Decimal] = {}
        self._exposure: dict[str, Decimal] = {}
        # Kill switches: client CompID -> reason; the key None halts every client.
        self.halted: dict[str | None, str] = {}

    # -- state loading (restart) -----------------------------------------------------------

    def restore(
        self,
        orders: Iterable[Order],
        seen_clordids: Iterable[tuple[str, str]],
        *,
        used: Iterable[ClOrdIdUsed] = (),
        warm_from: date | None = None,
        last_order_seq: int = 0,
        finished_exposure: Mapping[str, Decimal] | None = None,
    ) -> None:
        """Reload the open orders (finished ones given are counted, then leave memory) and the
        ClOrdIDs ``used`` on the trading days from ``warm_from`` (older days are settled by
        lookups); ids continue after the highest one seen (``last_order_seq`` at least).
        ``seen_clordids``: more ClOrdIDs used today. ``finished_exposure``: per client, the
        notional of finished orders not given."""
        top = last_order_seq
        now = self.clock()
        for owner, notional in (finished_exposure or {}).items():
            self._exposure[owner] = self.exposure(owner) + notional
            self.finished_notional[owner] = self.finished_notional.get(owner, ZERO) + notional
        for order in orders:
            self.orders[order.order_id] = order
            self._exposure[order.owner] = self.exposure(order.owner) + self._notional(order)
            day = self.trading_day(order.owner, order.created_at)
            for cid in (order.cl_ord_id, order.orig_cl_ord_id):
                if cid:
                    self._index(order.owner, cid, order.order_id)
                    self.clordids.add(order.owner, cid, day)
            digits = order.order_id.removeprefix(self._prefix)
            if digits.isdigit():
                top = max(top, int(digits))
            if order.is_open:
                self.venue.resume(self._venue_order(order), order.cum_qty)
            elif not order.pending_cl_ord_id:
                self._finished.append(order.order_id)
        for record in used:
            self.clordids.add(record.owner, record.cl_ord_id, record.trading_day)
        for owner, cid in seen_clordids:
            self.clordids.add(owner, cid, self.trading_day(owner, now))
        if warm_from is not None:
            self.clordids.warm_from(warm_from)
        self._ids = itertools.count(top + 1)
        self._evict()

    def set_exec_seq(self, last: int) -> None:
        self._exec_ids = itertools.count(last + 1)

    # -- exposure and kill switch ---------------------------------------------------------

    def exposure(self, owner: str) -> Decimal:
        """Notional of ``owner``'s filled quantity plus what its open orders may still fill."""
        return self._exposure.get(owner, ZERO)

    def _notional(self, order: Order) -> Decimal:
        px = order.price
        if px is None:
            px = self.venue.reference_price(order.instrument.symbol) or ZERO
        return abs(order.cum_qty * order.avg_px) + abs(order.leaves_qty * px)

    def add_exposure(self, owner: str, notional: Decimal) -> None:
        """Credit consumed outside the order book (a trade captured from an RFQ)."""
        self._exposure[owner] = self.exposure(owner) + abs(notional)

    def kill(self, client: str | None, reason: str) -> list[CoreEvent]:
        """Halt ``client`` (or everyone, for ``None``): cancel open orders, refuse new ones."""
        self.halted[client] = reason
        return self.cancel_all(client, f"kill switch: {reason}")

    def resume(self, client: str | None) -> bool:
        return self.halted.pop(client, None) is not None

    def halt_reason(self, client: str) -> str | None:
        return self.halted.get(None) or self.halted.get(client)

    def cancel_all(self, client: str | None, reason: str) -> list[CoreEvent]:
        """Cancel every open order of ``client`` (every client for ``None``) at the venue."""
        out: list[CoreEvent] = []
        for order in list(self.orders.values()):
            if (
                (client is None or order.owner == client)
                and order.is_open
                and (order.status not in (m.OrdStatus.PENDING_CANCEL, m.OrdStatus.PENDING_NEW))
            ):
                events = self.venue.cancel(order.order_id)
                out += self.on_venue(
                    v.Cancelled(e.order_id, reason) if isinstance(e, v.Cancelled) else e
                    for e in events
                )
        return out

    def find(self, owner: str, cl_ord_id: str) -> Order | None:
        order_id = self._by_clordid.get((owner, cl_ord_id))
        return self.orders.get(order_id) if order_id else None

    # -- what the edge reads first -----------------------------------------------------------

    def lookup(self, owner: str, msg: m.InboundOrderMessage) -> Lookup | None:
        """What ``handle(owner, msg)`` needs from the edge's records, or None: a ClOrdID the
        day's filter cannot clear, an order that is no longer in memory."""
        day = self.trading_day(owner, self.clock())
        new_id: str | None = None
        named: str | None = None
        if isinstance(msg, m.NewOrder):
            new_id = msg.cl_ord_id
        elif isinstance(msg, m.CancelRequest | m.ReplaceRequest):
            new_id, named = msg.cl_ord_id, msg.orig_cl_ord_id
        elif isinstance(msg, m.StatusRequest):
            named = msg.cl_ord_id
        check: tuple[str, ...] = ()
        if new_id is not None and (owner, new_id) not in self._by_clordid:
            if self.clordids.check(owner, new_id, day) is Seen.MAYBE:
                check = (new_id,)
            else:  # handle() need not ask the filter again
                self._cleared = (owner, new_id, day)
        if named is not None and self.find(owner, named) is not None:
            named = None
        if not check and named is None:
            return None
        return Lookup(owner, day, check, named)

    # -- inbound ---------------------------------------------------------------------------

    def handle(
        self, owner: str, msg: m.InboundOrderMessage, history: History | None = None
    ) -> list[CoreEvent]:
        """``history``: the edge's answer to :meth:`lookup` for this message. Without it, a
        ClOrdID the filter cannot clear counts as used and an order not in memory as unknown."""
        try:
            return self._handle(owner, msg, history)
        finally:
            self._evict()

    def _handle(
        self, owner: str, msg: m.InboundOrderMessage, history: History | None
    ) -> list[CoreEvent]:
        if isinstance(msg, m.NewOrder):
            return self._new(owner, msg, history)
        if isinstance(msg, m.CancelRequest):
            return self._cancel(owner, msg, history)
        if isinstance(msg, m.ReplaceRequest):
            return self._replace(owner, msg, history)
        if isinstance(msg, m.StatusRequest):
            return self._status(owner, msg, history)
        if isinstance(msg, m.NewMultilegOrder):
            return [
                Send(
                    owner,
                    m.BusinessReject(
                        ref_msg_type="AB",
                        reason=m.BusinessRejectReason.APPLICATION_NOT_AVAILABLE,
                        text="multileg orders are negotiated as RFQs; no multileg venue",
                        business_reject_ref_id=msg.cl_ord_id,
                    ),
                )
            ]
        raise TypeError(type(msg))

    def on_venue(self, events: Iterable[v.VenueEvent]) -> list[CoreEvent]:
        """Apply venue events (fills, cancels, replaces) to the orders they name."""
        out: list[CoreEvent] = []
        for event in events:
            order = self.orders.get(event.order_id)
            if order is not None:
                out += self._apply(order, event)
        self._evict()
        return out

    # -- ClOrdIDs per trading day, finished orders ----------------------------------------

    def _day(self, owner: str, history: History | None) -> date:
        return history.lookup.trading_day if history else self.trading_day(owner, self.clock())

    def _used(self, owner: str, cl_ord_id: str, history: History | None) -> bool:
        """Whether ``owner`` used ``cl_ord_id`` on this trading day."""
        if (owner, cl_ord_id) in self._by_clordid:  # an order in memory has it
            return True
        day = self._day(owner, history)
        cleared, self._cleared = self._cleared, None
        if cleared == (owner, cl_ord_id, day) or (
            self.clordids.check(owner, cl_ord_id, day) is Seen.NO
        ):
            return False
        if history is None or cl_ord_id not in history.lookup.cl_ord_ids:
            return True  # nothing to settle the filter's "maybe": refuse rather than reuse
        return cl_ord_id in history.used

    def _use(self, owner: str, cl_ord_id: str, history: History | None) -> ClOrdIdUsed:
        day = self._day(owner, history)
        self.clordids.add(owner, cl_ord_id, day)
        return ClOrdIdUsed(owner, cl_ord_id, day)

    def _known(self, owner: str, cl_ord_id: str, history: History | None) -> Order | None:
        """The order ``cl_ord_id`` names: in memory, or the finished one the edge read."""
        order = self.find(owner, cl_ord_id)
        if order is None and history is not None and history.lookup.order_cl_ord_id == cl_ord_id:
            return history.order
        return order

    def _index(self, owner: str, cl_ord_id: str, order_id: str) -> None:
        self._by_clordid[(owner, cl_ord_id)] = order_id
        self._keys.setdefault(order_id, []).append((owner, cl_ord_id))

    def _evict(self) -> None:
        """Finished orders leave memory: their events are on their way to the edges, which
        keep the record (the database)."""
        if not self._finished:
            return
        for order_id in self._finished:
            order = self.orders.get(order_id)
            if order is None or order.is_open or order.pending_cl_ord_id:
                continue
            del self.orders[order_id]
            owner = order.owner
            held = self.finished_notional.get(owner, ZERO)
            self.finished_notional[owner] = held + self._notional(order)
            for key in self._keys.pop(order_id, ()):
                if self._by_clordid.get(key) == order_id:
                    del self._by_clordid[key]
            self.evicted += 1
        self._finished.clear()

    def _new(self, owner: str, msg: m.NewOrder, history: History | None) -> list[CoreEvent]:
        key = (owner, msg.cl_ord_id)
        now = self.clock()
        if self._used(owner, msg.cl_ord_id, history):
            reject = self._reject_er(msg, "duplicate ClOrdID", m.OrdRejReason.DUPLICATE_ORDER)
            return [Send(owner, reject)]
        used: list[CoreEvent] = [self._use(owner, msg.cl_ord_id, history)]
        if msg.ord_type is m.OrdType.PREVIOUSLY_QUOTED:
            reject = self._reject_er(msg, "no quote to execute against", m.OrdRejReason.OTHER)
            return [*used, Send(owner, reject)]
        halted = self.halt_reason(owner)
        if halted is not None:
            reject = self._reject_er(
                msg, f"kill switch engaged: {halted}", m.OrdRejReason.BROKER_OPTION
            )
            return [*used, Send(owner, reject)]
        ref = self.venue.reference_price(msg.instrument.symbol)
        why = self.risk.check_order(
            owner, msg.quantity, msg.ord_type, msg.price, ref, msg.side, self.exposure(owner)
        )
        order_id = f"{self._prefix}{next(self._ids)}"
        order = Order(
            order_id=order_id,
            owner=owner,
            cl_ord_id=msg.cl_ord_id,
            instrument=msg.instrument,
            side=msg.side,
            ord_type=msg.ord_type,
            quantity=msg.quantity,
            price=msg.price,
            time_in_force=msg.time_in_force,
            status=m.OrdStatus.PENDING_NEW,
            cum_qty=ZERO,
            avg_px=ZERO,
            created_at=now,
            updated_at=now,
            account=msg.account,
        )
        self.orders[order_id] = order
        self._exposure[owner] = self.exposure(owner) + self._notional(order)
        self._index(*key, order_id)
        if why is not None:
            rejected = self._apply(
                order, v.Rejected(order_id, why), m.OrdRejReason.ORDER_EXCEEDS_LIMIT
            )
            return [*used, *rejected]
        events = self.venue.submit(self._venue_order(order))
        if not events:  # asynchronous venue: the order exists from now on
            return [
                *used,
                OrderUpdated(order),
                Send(owner, self._er(order, m.ExecType.PENDING_NEW)),
            ]
        return [*used, *self.on_venue(events)]

    def _cancel(self, owner: str, msg: m.CancelRequest, history: History | None) -> list[CoreEvent]:
        order = self._known(owner, msg.orig_cl_ord_id, history)
        problem = self._check_amend(owner, msg.cl_ord_id, order, history)
        if problem is not None:
            return [self._cxl_reject(owner, msg, order, *problem, m.CxlRejResponseTo.CANCEL)]
        assert order is not None  # _check_amend refuses a missing order
        used = self._use(owner, msg.cl_ord_id, history)
        order = self._update(
            order, status=m.OrdStatus.PENDING_CANCEL, pending_cl_ord_id=msg.cl_ord_id
        )
        events = self.venue.cancel(order.order_id)
        if not events:  # asynchronous venue: tell the client the cancel is pending
            er = self._er(order, m.ExecType.PENDING_CANCEL)
            er = replace(er, cl_ord_id=msg.cl_ord_id, orig_cl_ord_id=order.cl_ord_id)
            return [used, OrderUpdated(order), Send(owner, er)]
        return [used, *self.on_venue(events)]

    def _replace(
        self, owner: str, msg: m.ReplaceRequest, history: History | None
    ) -> list[CoreEvent]:
        order = self._known(owner, msg.orig_cl_ord_id, history)
        problem = self._check_amend(owner, msg.cl_ord_id, order, history)
        if problem is not None:
            return [self._cxl_reject(owner, msg, order, *problem, m.CxlRejResponseTo.REPLACE)]
        assert order is not None  # _check_amend refuses a missing order
        if msg.instrument != order.instrument or msg.side is not order.side:
            problem = (m.CxlRejReason.OTHER, "symbol and side cannot be replaced")
        if problem is None and msg.ord_type is not order.ord_type:
            problem = (m.CxlRejReason.OTHER, "order type cannot be replaced")
        if problem is None and (halted := self.halt_reason(owner)) is not None:
            problem = (m.CxlRejReason.BROKER_OPTION, f"kill switch engaged: {halted}")
        if problem is None:
            ref = self.venue.reference_price(order.instrument.symbol)
            why = self.risk.check_order(
                owner,
                msg.quantity,
                msg.ord_type,
                msg.price,
                ref,
                msg.side,
                self.exposure(owner),
                replaces=self._notional(order),
            )
            if why is not None:
                problem = (m.CxlRejReason.OTHER, why)
        if problem is not None:
            return [self._cxl_reject(owner, msg, order, *problem, m.CxlRejResponseTo.REPLACE)]
        used = self._use(owner, msg.cl_ord_id, history)
        order = self._update(
            order,
            status=m.OrdStatus.PENDING_REPLACE,
            pending_cl_ord_id=msg.cl_ord_id,
            pending_quantity=msg.quantity,
            pending_price=msg.price,
        )
        events = self.venue.replace(order.order_id, msg.quantity, msg.price)
        if not events:
            er = self._er(order, m.ExecType.PENDING_REPLACE)
            er = replace(er, cl_ord_id=msg.cl_ord_id, orig_cl_ord_id=order.cl_ord_id)
            return [used, OrderUpdated(order), Send(owner, er)]
        return [used, *self.on_venue(events)]

    def _status(self, owner: str, msg: m.StatusRequest, history: History | None) -> list[CoreEvent]:
        order = self._known(owner, msg.cl_ord_id, history)
        if order is None:
            return [
                Send(
                    owner,
                    m.ExecutionReport(
                        order_id=msg.order_id or "NONE",
                        exec_id=self._exec_id(),
                        cl_ord_id=msg.cl_ord_id,
                        exec_type=m.ExecType.ORDER_STATUS,
                        ord_status=m.OrdStatus.REJECTED,
                        symbol=msg.symbol,
                        side=msg.side,
                        order_qty=ZERO,
                        leaves_qty=ZERO,
                        cum_qty=ZERO,
                        avg_px=ZERO,
                        ord_rej_reason=m.OrdRejReason.UNKNOWN_ORDER,
                        text="unknown order",
                        transact_time=self.clock(),
                    ),
                )
            ]
        return [Send(owner, self._er(order, m.ExecType.ORDER_STATUS))]

    # -- venue events ----------------------------------------------------------------------

    def _apply(
        self, order: Order, event: v.VenueEvent, reason: m.OrdRejReason | None = None
    ) -> list[CoreEvent]:
        owner = order.owner
        if isinstance(event, v.Accepted):
            order = self._update(order, status=m.OrdStatus.NEW)
            return [OrderUpdated(order), Send(owner, self._er(order, m.ExecType.NEW))]
        if isinstance(event, v.Fill):
            cum = order.cum_qty + event.quantity
            avg = (order.avg_px * order.cum_qty + event.price * event.quantity) / cum
            status = m.OrdStatus.FILLED if cum >= order.quantity else m.OrdStatus.PARTIALLY_FILLED
            if order.status in (m.OrdStatus.PENDING_CANCEL, m.OrdStatus.PENDING_REPLACE) and (
                status is not m.OrdStatus.FILLED
            ):
                status = order.status  # a fill while a cancel/replace is pending keeps it pending
            order = self._update(order, status=status, cum_qty=cum, avg_px=avg)
            er = self._er(order, m.ExecType.TRADE, last_qty=event.quantity, last_px=event.price)
            return [OrderUpdated(order), Send(owner, er)]
        if isinstance(event, v.Cancelled):
            pending_cancel = order.status is m.OrdStatus.PENDING_CANCEL
            requested = order.pending_cl_ord_id if pending_cancel else None
            order = self._update(
                order,
                status=m.OrdStatus.CANCELED,
                cl_ord_id=requested or order.cl_ord_id,
                orig_cl_ord_id=order.cl_ord_id if requested else order.orig_cl_ord_id,
                text=event.reason,
                pending_cl_ord_id=None,
            )
            if requested:
                self._index(owner, requested, order.order_id)
            return [OrderUpdated(order), Send(owner, self._er(order, m.ExecType.CANCELED))]
        if isinstance(event, v.Replaced):
            new_id = order.pending_cl_ord_id or order.cl_ord_id
            cum_status = m.OrdStatus.NEW if order.cum_qty == 0 else m.OrdStatus.PARTIALLY_FILLED
            order = self._update(
                order,
                status=cum_status,
                quantity=event.quantity,
                price=event.price,
                orig_cl_ord_id=order.cl_ord_id,
                cl_ord_id=new_id,
                pending_cl_ord_id=None,
                pending_quantity=None,
                pending_price=None,
            )
            self._index(owner, new_id, order.order_id)
            return [OrderUpdated(order), Send(owner, self._er(order, m.ExecType.REPLACED))]
        if isinstance(event, v.Rejected):
            if order.status is m.OrdStatus.PENDING_NEW:
                why = reason or (
                    m.OrdRejReason.UNKNOWN_SYMBOL if event.unknown_symbol else m.OrdRejReason.OTHER
                )
                order = self._update(order, status=m.OrdStatus.REJECTED, text=event.text)
                er = self._er(order, m.ExecType.REJECTED, ord_rej_reason=why)
                return [OrderUpdated(order), Send(owner, er)]
            if order.status in (m.OrdStatus.PENDING_CANCEL, m.OrdStatus.PENDING_REPLACE):
                response_to = (
                    m.CxlRejResponseTo.CANCEL
                    if order.status is m.OrdStatus.PENDING_CANCEL
                    else m.CxlRejResponseTo.REPLACE
                )
                restored = m.OrdStatus.NEW if order.cum_qty == 0 else m.OrdStatus.PARTIALLY_FILLED
                return self._refuse_pending(
                    order, response_to, m.CxlRejReason.BROKER_OPTION, event.text, status=restored
                )
            if order.pending_cl_ord_id and not order.is_open:  # filled while the request waited
                response_to = (
                    m.CxlRejResponseTo.REPLACE
                    if order.pending_quantity is not None
                    else m.CxlRejResponseTo.CANCEL
                )
                return self._refuse_pending(order, response_to, m.CxlRejReason.TOO_LATE, event.text)
        return []

    # -- helpers ---------------------------------------------------------------------------

    def _refuse_pending(
        self,
        order: Order,
        response_to: m.CxlRejResponseTo,
        reason: m.CxlRejReason,
        text: str,
        **restore: object,
    ) -> list[CoreEvent]:
        """The venue refused the cancel or replace waiting on ``order``: clear it, tell the
        client with a CancelReject naming the request's ClOrdID."""
        requested = order.pending_cl_ord_id or ""
        order = self._update(
            order, pending_cl_ord_id=None, pending_quantity=None, pending_price=None, **restore
        )
        reject = m.CancelReject(
            order_id=order.order_id,
            cl_ord_id=requested,
            orig_cl_ord_id=order.cl_ord_id,
            ord_status=order.status,
            response_to=response_to,
            reason=reason,
            text=text,
        )
        return [OrderUpdated(order), Send(order.owner, reject)]

    def _check_amend(
        self, owner: str, cl_ord_id: str, order: Order | None, history: History | None
    ) -> tuple[m.CxlRejReason, str] | None:
        if self._used(owner, cl_ord_id, history):
            return m.CxlRejReason.DUPLICATE_CLORDID, "duplicate ClOrdID"
        if order is None:
            return m.CxlRejReason.UNKNOWN_ORDER, "unknown order"
        if not order.is_open:
            return m.CxlRejReason.TOO_LATE, f"order is {order.status.name.lower()}"
        if order.status in (m.OrdStatus.PENDING_CANCEL, m.OrdStatus.PENDING_REPLACE):
            return m.CxlRejReason.PENDING, "a cancel or replace is already pending"
        return None

    def _cxl_reject(
        self,
        owner: str,
        msg: m.CancelRequest | m.ReplaceRequest,
        order: Order | None,
        reason: m.CxlRejReason,
        text: str,
        response_to: m.CxlRejResponseTo,
    ) -> Send:
        return Send(
            owner,
            m.CancelReject(
                order_id=order.order_id if order else "NONE",
                cl_ord_id=msg.cl_ord_id,
                orig_cl_ord_id=msg.orig_cl_ord_id,
                ord_status=order.status if order else m.OrdStatus.REJECTED,
                response_to=response_to,
                reason=reason,
                text=text,
            ),
        )

    @staticmethod
    def _venue_order(order: Order) -> v.VenueOrder:
        return v.VenueOrder(
            order.order_id,
            order.instrument,
            order.side,
            order.quantity,
            order.ord_type,
            order.price,
            order.time_in_force,
        )

    def _update(self, order: Order, **changes: object) -> Order:
        before = self._notional(order) if order.order_id in self.orders else ZERO
        # dataclasses.replace, but a few µs cheaper: twice per order on the hot path
        values = dict(zip(_ORDER_FIELDS, _order_values(order), strict=True))
        values.update(changes, updated_at=self.clock())
        order = Order(**values)
        self.orders[order.order_id] = order
        self._exposure[order.owner] = self.exposure(order.owner) - before + self._notional(order)
        if not order.is_open and not order.pending_cl_ord_id:
            self._finished.append(order.order_id)
        return order

    def _exec_id(self) -> str:
        return f"{self._prefix}E{next(self._exec_ids)}"

    def _er(
        self,
        order: Order,
        exec_type: m.ExecType,
        *,
        last_qty: Decimal | None = None,
        last_px: Decimal | None = None,
        ord_rej_reason: m.OrdRejReason | None = None,
    ) -> m.ExecutionReport:
        return m.ExecutionReport(
            order_id=order.order_id,
            exec_id=self._exec_id(),
            cl_ord_id=order.cl_ord_id,
            orig_cl_ord_id=order.orig_cl_ord_id,
            exec_type=exec_type,
            ord_status=order.status,
            symbol=order.instrument.symbol,
            side=order.side,
            order_qty=order.quantity,
            ord_type=order.ord_type,
            price=order.price,
            last_qty=last_qty,
            last_px=last_px,
            leaves_qty=order.leaves_qty,
            cum_qty=order.cum_qty,
            avg_px=order.avg_px,
            ord_rej_reason=ord_rej_reason,
            text=order.text if exec_type in (m.ExecType.REJECTED, m.ExecType.CANCELED) else None,
            transact_time=order.updated_at,
            time_in_force=order.time_in_force,
        )

    def _reject_er(self, msg: m.NewOrder, text: str, reason: m.OrdRejReason) -> m.ExecutionReport:
        return m.ExecutionReport(
            order_id="NONE",
            exec_id=self._exec_id(),
            cl_ord_id=msg.cl_ord_id,
            exec_type=m.ExecType.REJECTED,
            ord_status=m.OrdStatus.REJECTED,
            symbol=msg.instrument.symbol,
            side=msg.side,
            order_qty=msg.quantity,
            ord_type=msg.ord_type,
            price=msg.price,
            leaves_qty=ZERO,
            cum_qty=ZERO,
            avg_px=ZERO,
            ord_rej_reason=reason,
            text=text,
            transact_time=self.clock(),
        )
