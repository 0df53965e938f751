"""OrderManager: FIX 4.4 OrdStatus/ExecType semantics over the simulated and an asynchronous venue.

The manager is sans-IO, so every test drives it directly: messages in, ``Send``/``OrderUpdated``
out. The asynchronous venue below answers every command with ``[]``, as a remote venue adapter
does; its answers are then fed through ``OrderManager.on_venue``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixspec import messages as m
from fixspec.instruments import parse_symbol
from otc import venue as v
from otc.orders import (
    ClOrdIdUsed,
    CoreEvent,
    History,
    Order,
    OrderManager,
    OrderUpdated,
    Send,
)
from otc.risk import RiskCheck, RiskLimits

D = Decimal
REF = {"BTC-PERP": D(100), "ETH-PERP": D(10)}
T0 = datetime(2026, 1, 2, 9, 30, tzinfo=UTC)
OPEN = {
    m.OrdStatus.NEW,
    m.OrdStatus.PARTIALLY_FILLED,
    m.OrdStatus.PENDING_NEW,
    m.OrdStatus.PENDING_CANCEL,
    m.OrdStatus.PENDING_REPLACE,
}
DONE = {m.OrdStatus.FILLED, m.OrdStatus.CANCELED, m.OrdStatus.REJECTED}


class Clock:
    """A deterministic clock: one microsecond later on every call."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


class AsyncVenue:
    """A remote venue: takes every command silently; its answers arrive later via on_venue."""

    def __init__(self) -> None:
        self.commands: list[tuple] = []

    def submit(self, order: v.VenueOrder) -> list[v.VenueEvent]:
        self.commands.append(("submit", order.order_id))
        return []

    def cancel(self, order_id: str) -> list[v.VenueEvent]:
        self.commands.append(("cancel", order_id))
        return []

    def replace(
        self, order_id: str, quantity: Decimal, price: Decimal | None
    ) -> list[v.VenueEvent]:
        self.commands.append(("replace", order_id, quantity, price))
        return []

    def reference_price(self, symbol: str) -> Decimal | None:
        return REF.get(symbol)

    def resume(self, order: v.VenueOrder, filled: Decimal) -> None:
        self.commands.append(("resume", order.order_id, filled))


def manager(venue: v.Venue | None = None, *, depth: str = "10", risk: RiskCheck | None = None):
    return OrderManager(venue or v.SimulatedVenue(REF, D(depth)), risk=risk, clock=Clock())


class Edge:
    """The edge's side of the core's contract, as the FIX adapter and the database keep it:
    every event recorded (order snapshots, used ClOrdIDs), and the core's lookups answered from
    that record before a message is handled."""

    def __init__(self, om: OrderManager) -> None:
        self.om = om
        self.snapshots: dict[str, Order] = {}
        self.used: set[tuple[str, object, str]] = set()
        self.lookups = 0

    def handle(self, owner: str, msg: m.InboundOrderMessage) -> list[CoreEvent]:
        history = None
        lookup = self.om.lookup(owner, msg)
        if lookup is not None:
            self.lookups += 1
            used = {c for c in lookup.cl_ord_ids if (owner, lookup.trading_day, c) in self.used}
            named = lookup.order_cl_ord_id
            found = [
                o
                for o in self.snapshots.values()
                if o.owner == owner and named in (o.cl_ord_id, o.orig_cl_ord_id)
            ]
            history = History(lookup, frozenset(used), found[-1] if found else None)
        events = self.om.handle(owner, msg, history)
        for event in events:
            if isinstance(event, OrderUpdated):
                self.snapshots[event.order.order_id] = event.order
            elif isinstance(event, ClOrdIdUsed):
                self.used.add((event.owner, event.trading_day, event.cl_ord_id))
        return events


def new(
    cl: str,
    side: m.Side = m.Side.BUY,
    qty: str = "1",
    price: str | None = None,
    *,
    tif: m.TimeInForce = m.TimeInForce.DAY,
    symbol: str = "BTC-PERP",
    ord_type: m.OrdType | None = None,
) -> m.NewOrder:
    if ord_type is None:
        ord_type = m.OrdType.MARKET if price is None else m.OrdType.LIMIT
    return m.NewOrder(
        cl_ord_id=cl,
        instrument=parse_symbol(symbol),
        side=side,
        quantity=D(qty),
        ord_type=ord_type,
        price=None if price is None else D(price),
        time_in_force=tif,
        transact_time=T0,
    )


def cancel(cl: str, orig: str, side: m.Side = m.Side.BUY) -> m.CancelRequest:
    return m.CancelRequest(cl, orig, side, "BTC-PERP", transact_time=T0)


def amend(
    cl: str,
    orig: str,
    qty: str,
    price: str,
    *,
    side: m.Side = m.Side.BUY,
    symbol: str = "BTC-PERP",
    ord_type: m.OrdType = m.OrdType.LIMIT,
) -> m.ReplaceRequest:
    return m.ReplaceRequest(
        cl_ord_id=cl,
        orig_cl_ord_id=orig,
        instrument=parse_symbol(symbol),
        side=side,
        quantity=D(qty),
        ord_type=ord_type,
        price=D(price),
        transact_time=T0,
    )


def sent(events: list[CoreEvent], to: str | None = None) -> list[m.OutboundMessage]:
    return [e.message for e in events if isinstance(e, Send) and (to is None or e.to == to)]


def ers(events: list[CoreEvent], to: str | None = None) -> list[m.ExecutionReport]:
    out = [msg for msg in sent(events, to) if isinstance(msg, m.ExecutionReport)]
    assert len(out) == len(sent(events, to)), "expected only execution reports"
    return out


def states(events: list[CoreEvent], to: str | None = None) -> list[tuple]:
    """(ExecType, OrdStatus, CumQty, LeavesQty) of each ER: the part FIX 4.4 is strict about."""
    return [(r.exec_type, r.ord_status, r.cum_qty, r.leaves_qty) for r in ers(events, to)]


def updated(events: list[CoreEvent]) -> list[Order]:
    return [e.order for e in events if isinstance(e, OrderUpdated)]


def only(items: list):
    assert len(items) == 1, items
    return items[0]


ET, OS = m.ExecType, m.OrdStatus


# --- new orders -------------------------------------------------------------------------


def test_resting_limit_order_is_acknowledged_new() -> None:
    om = manager()
    events = om.handle("A", new("C1", qty="5", price="99"))
    er = only(ers(events, "A"))
    assert (er.exec_type, er.ord_status) == (ET.NEW, OS.NEW)
    assert (er.order_id, er.cl_ord_id, er.orig_cl_ord_id) == ("O1", "C1", None)
    assert (er.order_qty, er.leaves_qty, er.cum_qty, er.avg_px) == (D(5), D(5), D(0), D(0))
    assert (er.ord_type, er.price, er.symbol, er.side) == (
        m.OrdType.LIMIT,
        D(99),
        "BTC-PERP",
        m.Side.BUY,
    )
    assert er.transact_time.tzinfo is not None
    assert updated(events)[-1].status is OS.NEW
    assert om.find("A", "C1").status is OS.NEW


def test_marketable_limit_order_fills_at_the_reference_price() -> None:
    events = manager().handle("A", new("C1", qty="4", price="100.5"))
    assert states(events) == [(ET.NEW, OS.NEW, 0, 4), (ET.TRADE, OS.FILLED, 4, 0)]
    trade = ers(events)[-1]
    assert (trade.last_qty, trade.last_px, trade.avg_px) == (D(4), D(100), D(100))


def test_market_order_sweeping_the_depth_fills_partly_then_cancels_the_rest() -> None:
    om = manager()
    events = om.handle("A", new("C1", qty="15"))
    assert states(events, "A") == [
        (ET.NEW, OS.NEW, 0, 15),
        (ET.TRADE, OS.PARTIALLY_FILLED, 10, 5),
        (ET.CANCELED, OS.CANCELED, 10, 0),
    ]
    canceled = ers(events)[-1]
    assert canceled.avg_px == D(100)
    assert canceled.text and "liquidity" in canceled.text
    assert "O1" not in om.orders  # finished: it left memory with its last events
    assert [o.status for o in updated(events)] == [OS.NEW, OS.PARTIALLY_FILLED, OS.CANCELED]


def test_resting_order_crossed_by_another_client_fills_both_at_the_resting_price() -> None:
    om = manager()
    om.handle("A", new("A1", m.Side.BUY, "5", "99"))
    events = om.handle("B", new("B1", m.Side.SELL, "3", "98"))
    assert states(events, "B") == [(ET.NEW, OS.NEW, 0, 3), (ET.TRADE, OS.FILLED, 3, 0)]
    assert states(events, "A") == [(ET.TRADE, OS.PARTIALLY_FILLED, 3, 2)]
    a_fill, b_fill = ers(events, "A")[0], ers(events, "B")[-1]
    assert a_fill.last_px == b_fill.last_px == D(99)
    assert a_fill.last_qty == b_fill.last_qty == D(3)
    assert (a_fill.order_id, a_fill.cl_ord_id) == ("O1", "A1")

    # a market sell takes A's last 2 at 99, then the depth at the reference price
    events = om.handle("B", new("B2", m.Side.SELL, "8"))
    assert states(events, "A") == [(ET.TRADE, OS.FILLED, 5, 0)]
    assert ers(events, "A")[0].avg_px == D(99)
    b_last = ers(events, "B")[-1]
    assert (b_last.ord_status, b_last.cum_qty) == (OS.FILLED, D(8))
    assert b_last.avg_px == (2 * D(99) + 6 * D(100)) / 8


def test_ioc_fills_what_it_can_and_cancels_the_rest() -> None:
    om = manager()
    events = om.handle("A", new("C1", qty="15", price="100", tif=m.TimeInForce.IOC))
    assert states(events) == [
        (ET.NEW, OS.NEW, 0, 15),
        (ET.TRADE, OS.PARTIALLY_FILLED, 10, 5),
        (ET.CANCELED, OS.CANCELED, 10, 0),
    ]
    events = om.handle("A", new("C2", qty="1", price="90", tif=m.TimeInForce.IOC))
    assert states(events) == [(ET.NEW, OS.NEW, 0, 1), (ET.CANCELED, OS.CANCELED, 0, 0)]


def test_fok_fills_completely_or_not_at_all() -> None:
    om = manager()
    events = om.handle("A", new("C1", qty="11", price="100", tif=m.TimeInForce.FOK))
    assert states(events) == [(ET.NEW, OS.NEW, 0, 11), (ET.CANCELED, OS.CANCELED, 0, 0)]
    assert "FOK" in ers(events)[-1].text
    events = om.handle("A", new("C2", qty="10", price="100", tif=m.TimeInForce.FOK))
    assert states(events) == [(ET.NEW, OS.NEW, 0, 10), (ET.TRADE, OS.FILLED, 10, 0)]


def test_duplicate_cl_ord_id_is_rejected_with_ord_rej_reason_6() -> None:
    om = manager()
    om.handle("A", new("C1", qty="5", price="99"))
    events = om.handle("A", new("C1", qty="7", price="98"))
    er = only(ers(events))
    assert (er.exec_type, er.ord_status) == (ET.REJECTED, OS.REJECTED)
    assert er.ord_rej_reason is m.OrdRejReason.DUPLICATE_ORDER
    assert (er.order_id, er.cl_ord_id, er.order_qty, er.leaves_qty) == ("NONE", "C1", D(7), D(0))
    assert updated(events) == []
    assert list(om.orders) == ["O1"]
    assert om.find("A", "C1").quantity == D(5)  # the live order is untouched
    # ClOrdIDs are unique per client, not across clients
    assert states(om.handle("B", new("C1", qty="1", price="99"))) == [(ET.NEW, OS.NEW, 0, 1)]


def test_cl_ord_ids_of_cancels_and_rejected_orders_cannot_be_reused() -> None:
    om = manager(risk=RiskCheck(RiskLimits(max_order_qty=D(5))))
    om.handle("A", new("C1", qty="5", price="99"))
    om.handle("A", cancel("C2", "C1"))
    om.handle("A", new("C3", qty="6", price="99"))  # refused by risk
    for reused in ("C2", "C3"):
        er = only(ers(om.handle("A", new(reused, qty="1", price="99"))))
        assert er.ord_rej_reason is m.OrdRejReason.DUPLICATE_ORDER


def test_risk_limit_breach_is_rejected_with_ord_rej_reason_3() -> None:
    om = manager(risk=RiskCheck(RiskLimits(max_order_qty=D(5))))
    events = om.handle("A", new("C1", qty="5.1", price="99"))
    er = only(ers(events))
    assert (er.exec_type, er.ord_status) == (ET.REJECTED, OS.REJECTED)
    assert er.ord_rej_reason is m.OrdRejReason.ORDER_EXCEEDS_LIMIT
    assert "limit" in er.text
    assert (er.leaves_qty, er.cum_qty) == (D(0), D(0))
    assert updated(events)[-1].status is OS.REJECTED
    assert states(om.handle("A", new("C2", qty="5", price="99"))) == [(ET.NEW, OS.NEW, 0, 5)]


def test_notional_limit_uses_the_reference_price_for_market_orders_and_is_per_client() -> None:
    risk = RiskCheck(per_client={"A": RiskLimits(max_notional=D(1000))})
    om = manager(risk=risk)
    er = only(ers(om.handle("A", new("C1", qty="11"))))  # 11 x 100 reference
    assert er.ord_rej_reason is m.OrdRejReason.ORDER_EXCEEDS_LIMIT
    assert states(om.handle("A", new("C2", qty="11", price="90"))) == [(ET.NEW, OS.NEW, 0, 11)]
    assert ers(om.handle("B", new("C1", qty="11")))[0].exec_type is ET.NEW


def test_unknown_symbol_at_the_venue_is_ord_rej_reason_1() -> None:
    er = only(ers(manager().handle("A", new("C1", qty="1", symbol="SOL-PERP"))))
    assert (er.exec_type, er.ord_status) == (ET.REJECTED, OS.REJECTED)
    assert er.ord_rej_reason is m.OrdRejReason.UNKNOWN_SYMBOL
    assert "SOL-PERP" in er.text


def test_previously_quoted_order_without_a_quote_is_rejected() -> None:
    msg = new("C1", qty="1", price="100", ord_type=m.OrdType.PREVIOUSLY_QUOTED)
    er = only(ers(manager().handle("A", msg)))
    assert er.ord_status is OS.REJECTED
    assert er.ord_rej_reason is m.OrdRejReason.OTHER


def test_multileg_order_is_answered_with_a_business_reject() -> None:
    om = manager()
    leg = m.Leg(parse_symbol("BTC-27DEC26-100000-C"), m.Side.BUY)
    other = m.Leg(parse_symbol("BTC-27DEC26-120000-C"), m.Side.SELL)
    msg = m.NewMultilegOrder("M1", m.Side.BUY, D(1), m.OrdType.LIMIT, (leg, other), D(150))
    assert om.handle("A", msg) == [
        Send(
            "A",
            m.BusinessReject(
                ref_msg_type="AB",
                reason=m.BusinessRejectReason.APPLICATION_NOT_AVAILABLE,
                text="multileg orders are negotiated as RFQs; no multileg venue",
                ref_seq_num=None,
                business_reject_ref_id="M1",
            ),
        )
    ]
    assert om.orders == {}


# --- cancel -----------------------------------------------------------------------------


def test_cancel_of_a_resting_order() -> None:
    om = manager()
    edge = Edge(om)
    edge.handle("A", new("C1", qty="5", price="99"))
    assert om.find("A", "C1") is om.orders["O1"]
    events = edge.handle("A", cancel("C2", "C1"))
    er = only(ers(events))
    assert (er.exec_type, er.ord_status, er.cum_qty, er.leaves_qty) == (
        ET.CANCELED,
        OS.CANCELED,
        0,
        0,
    )
    assert (er.order_id, er.cl_ord_id, er.orig_cl_ord_id, er.order_qty) == ("O1", "C2", "C1", 5)
    assert om.find("A", "C2") is om.find("A", "C1") is None  # finished: left memory
    for cl in ("C2", "C1"):  # the edge's record answers for it
        status = only(ers(edge.handle("A", m.StatusRequest(cl, m.Side.BUY, "BTC-PERP"))))
        assert (status.exec_type, status.ord_status, status.order_id) == (
            ET.ORDER_STATUS,
            OS.CANCELED,
            "O1",
        )


def test_cancel_of_a_partially_filled_order_keeps_its_fills() -> None:
    om = manager()
    om.handle("A", new("C1", qty="15", price="100"))
    events = om.handle("A", cancel("C2", "C1"))
    assert states(events) == [(ET.CANCELED, OS.CANCELED, 10, 0)]
    assert ers(events)[0].avg_px == D(100)


def test_cancel_of_an_unknown_order_is_cxl_rej_reason_1() -> None:
    om = manager()
    om.handle("A", new("C1", qty="5", price="99"))
    for owner, orig in (("A", "NOPE"), ("B", "C1")):  # another client's order is unknown too
        rej = only(sent(om.handle(owner, cancel("X1", orig))))
        assert isinstance(rej, m.CancelReject)
        assert rej.reason is m.CxlRejReason.UNKNOWN_ORDER
        assert rej.response_to is m.CxlRejResponseTo.CANCEL
        assert (rej.order_id, rej.cl_ord_id, rej.orig_cl_ord_id) == ("NONE", "X1", orig)
        assert rej.ord_status is OS.REJECTED
    assert om.orders["O1"].status is OS.NEW


@pytest.mark.parametrize(
    ("first", "status"),
    [(new("C1", qty="4", price="100"), OS.FILLED), (new("C1", qty="15"), OS.CANCELED)],
)
def test_cancel_of_a_finished_order_is_too_late(first: m.NewOrder, status: m.OrdStatus) -> None:
    om = manager()
    edge = Edge(om)
    edge.handle("A", first)
    assert om.orders == {}
    rej = only(sent(edge.handle("A", cancel("C2", "C1"))))
    assert isinstance(rej, m.CancelReject)
    assert rej.reason is m.CxlRejReason.TOO_LATE
    assert (rej.ord_status, rej.order_id) == (status, "O1")


def test_cancel_reusing_a_cl_ord_id_is_cxl_rej_reason_6() -> None:
    om = manager()
    om.handle("A", new("C1", qty="5", price="99"))
    rej = only(sent(om.handle("A", cancel("C1", "C1"))))
    assert rej.reason is m.CxlRejReason.DUPLICATE_CLORDID
    assert om.orders["O1"].status is OS.NEW


# --- replace ----------------------------------------------------------------------------


def test_replace_that_makes_an_order_marketable_fills_it() -> None:
    om = manager()
    om.handle("A", new("C1", qty="5", price="90"))
    events = om.handle("A", amend("C2", "C1", "5", "100"))
    assert states(events) == [(ET.REPLACED, OS.NEW, 0, 5), (ET.TRADE, OS.FILLED, 5, 0)]
    replaced, trade = ers(events)
    assert (replaced.cl_ord_id, replaced.orig_cl_ord_id, replaced.price) == ("C2", "C1", D(100))
    assert trade.cl_ord_id == "C2"
    assert (trade.last_qty, trade.last_px) == (D(5), D(100))
    assert updated(events)[-1].status is OS.FILLED
    assert om.find("A", "C2") is None


def test_replaced_ord_status_reflects_the_current_state() -> None:
    om = manager()
    om.handle("A", new("C1", qty="15", price="100"))  # 10 filled, 5 rest at 100
    events = om.handle("A", amend("C2", "C1", "14", "99"))
    er = only(ers(events))
    assert (er.exec_type, er.ord_status) == (ET.REPLACED, OS.PARTIALLY_FILLED)
    assert (er.order_qty, er.cum_qty, er.leaves_qty, er.price) == (14, 10, 4, D(99))
    assert updated(events)[-1].quantity == D(14)


@pytest.mark.parametrize("qty", ["8", "10"])
def test_replace_to_a_quantity_not_above_cum_qty_is_refused(qty: str) -> None:
    om = manager()
    om.handle("A", new("C1", qty="15", price="100"))  # 10 filled
    rej = only(sent(om.handle("A", amend("C2", "C1", qty, "99"))))
    assert isinstance(rej, m.CancelReject)
    assert rej.response_to is m.CxlRejResponseTo.REPLACE
    assert rej.reason is m.CxlRejReason.BROKER_OPTION
    assert (rej.cl_ord_id, rej.orig_cl_ord_id, rej.ord_status) == ("C2", "C1", OS.PARTIALLY_FILLED)
    order = om.orders["O1"]
    assert (order.status, order.quantity, order.price, order.cl_ord_id) == (
        OS.PARTIALLY_FILLED,
        D(15),
        D(100),
        "C1",
    )
    assert states(om.handle("A", cancel("C3", "C1"))) == [(ET.CANCELED, OS.CANCELED, 10, 0)]


@pytest.mark.parametrize(
    "msg",
    [
        amend("C2", "C1", "5", "99", side=m.Side.SELL),
        amend("C2", "C1", "5", "99", symbol="ETH-PERP"),
        amend("C2", "C1", "5", "99", ord_type=m.OrdType.PREVIOUSLY_QUOTED),
    ],
)
def test_replace_cannot_change_side_symbol_or_type(msg: m.ReplaceRequest) -> None:
    om = manager()
    om.handle("A", new("C1", qty="5", price="90"))
    rej = only(sent(om.handle("A", msg)))
    assert isinstance(rej, m.CancelReject)
    assert rej.reason is m.CxlRejReason.OTHER and rej.text
    assert om.orders["O1"].price == D(90)


def test_replace_breaching_a_risk_limit_is_refused() -> None:
    om = manager(risk=RiskCheck(RiskLimits(max_order_qty=D(5))))
    om.handle("A", new("C1", qty="3", price="90"))
    rej = only(sent(om.handle("A", amend("C2", "C1", "6", "90"))))
    assert isinstance(rej, m.CancelReject)
    assert "limit" in rej.text
    assert om.orders["O1"].quantity == D(3)


def test_replace_of_unknown_or_finished_orders() -> None:
    om = manager()
    edge = Edge(om)
    rej = only(sent(edge.handle("A", amend("C2", "NOPE", "5", "99"))))
    assert (rej.reason, rej.response_to) == (
        m.CxlRejReason.UNKNOWN_ORDER,
        m.CxlRejResponseTo.REPLACE,
    )
    edge.handle("A", new("C1", qty="4", price="100"))
    rej = only(sent(edge.handle("A", amend("C3", "C1", "5", "99"))))
    assert (rej.reason, rej.ord_status) == (m.CxlRejReason.TOO_LATE, OS.FILLED)


# --- status -----------------------------------------------------------------------------


def test_status_request_reports_the_current_state_or_unknown_order() -> None:
    om = manager()
    om.handle("A", new("C1", qty="15", price="100"))
    er = only(ers(om.handle("A", m.StatusRequest("C1", m.Side.BUY, "BTC-PERP"))))
    assert (er.exec_type, er.ord_status, er.cum_qty, er.leaves_qty) == (
        ET.ORDER_STATUS,
        OS.PARTIALLY_FILLED,
        10,
        5,
    )
    er = only(ers(om.handle("A", m.StatusRequest("NOPE", m.Side.BUY, "BTC-PERP", "O77"))))
    assert (er.exec_type, er.ord_status) == (ET.ORDER_STATUS, OS.REJECTED)
    assert er.ord_rej_reason is m.OrdRejReason.UNKNOWN_ORDER
    assert er.order_id == "O77"


# --- asynchronous venue: pending states -------------------------------------------------


def live(om: OrderManager, qty: str = "10", price: str = "99") -> None:
    """A's order C1 (O1), accepted by the asynchronous venue."""
    om.handle("A", new("C1", qty=qty, price=price))
    assert states(om.on_venue([v.Accepted("O1")])) == [(ET.NEW, OS.NEW, 0, D(qty))]


def test_new_order_on_an_asynchronous_venue_is_pending_new_and_persisted() -> None:
    venue = AsyncVenue()
    om = manager(venue)
    events = om.handle("A", new("C1", qty="10", price="99"))
    assert venue.commands == [("submit", "O1")]
    # the order exists from now on: it must be persisted and acknowledged, like a pending cancel
    assert [o.status for o in updated(events)] == [OS.PENDING_NEW]
    assert states(events) == [(ET.PENDING_NEW, OS.PENDING_NEW, 0, 10)]


def test_venue_accepts_or_rejects_a_pending_new_order_later() -> None:
    om = manager(AsyncVenue())
    live(om)
    om.handle("A", new("C2", qty="1", price="99"))
    er = only(ers(om.on_venue([v.Rejected("O2", "instrument halted")])))
    assert (er.exec_type, er.ord_status, er.ord_rej_reason) == (
        ET.REJECTED,
        OS.REJECTED,
        m.OrdRejReason.OTHER,
    )
    assert er.text == "instrument halted"


def test_pending_cancel_then_canceled() -> None:
    venue = AsyncVenue()
    om = manager(venue)
    live(om)
    events = om.handle("A", cancel("C2", "C1"))
    assert venue.commands[-1] == ("cancel", "O1")
    assert states(events) == [(ET.PENDING_CANCEL, OS.PENDING_CANCEL, 0, 10)]
    assert updated(events)[-1].status is OS.PENDING_CANCEL
    events = om.on_venue([v.Cancelled("O1", "cancelled on request")])
    er = only(ers(events))
    assert (er.exec_type, er.ord_status, er.leaves_qty) == (ET.CANCELED, OS.CANCELED, 0)
    assert (er.cl_ord_id, er.orig_cl_ord_id) == ("C2", "C1")


def test_pending_execution_reports_name_the_request_and_the_order() -> None:
    # FIX 4.4 order state matrices: Cancel Request (Y,X) -> Execution (Y,X) Pending Cancel;
    # Replace Request (Y,X) -> Execution (Y,X) Pending Replace.
    om = manager(AsyncVenue())
    live(om)
    pending = only(ers(om.handle("A", cancel("C2", "C1"))))
    assert (pending.cl_ord_id, pending.orig_cl_ord_id) == ("C2", "C1")
    om.on_venue([v.Rejected("O1", "not now")])
    pending = only(ers(om.handle("A", amend("C3", "C1", "8", "98"))))
    assert pending.exec_type is ET.PENDING_REPLACE
    assert (pending.cl_ord_id, pending.orig_cl_ord_id) == ("C3", "C1")


def test_fill_while_cancel_is_pending_keeps_the_order_pending_cancel() -> None:
    om = manager(AsyncVenue())
    live(om)
    om.handle("A", cancel("C2", "C1"))
    events = om.on_venue([v.Fill("O1", D(4), D(99))])
    assert states(events) == [(ET.TRADE, OS.PENDING_CANCEL, 4, 6)]
    assert ers(events)[0].last_qty == D(4)
    assert states(om.on_venue([v.Cancelled("O1", "cancelled on request")])) == [
        (ET.CANCELED, OS.CANCELED, 4, 0)
    ]


@pytest.mark.parametrize(
    ("request_msg", "response_to", "pending"),
    [
        (cancel("C3", "C1"), m.CxlRejResponseTo.CANCEL, OS.PENDING_CANCEL),
        (amend("C3", "C1", "12", "99"), m.CxlRejResponseTo.REPLACE, OS.PENDING_REPLACE),
    ],
)
def test_order_filled_while_a_request_is_pending_gets_a_too_late_cancel_reject(
    request_msg: m.CancelRequest | m.ReplaceRequest,
    response_to: m.CxlRejResponseTo,
    pending: m.OrdStatus,
) -> None:
    # FIX 4.4: the request that lost the race is answered with Cancel Reject (Y,X), reason 0.
    om = manager(AsyncVenue())
    live(om)
    om.handle("A", amend("C2", "C1", "9", "98"))  # an earlier replace the venue refused
    om.on_venue([v.Rejected("O1", "no")])
    assert only(ers(om.handle("A", request_msg))).ord_status is pending
    assert states(om.on_venue([v.Fill("O1", D(10), D(99))])) == [(ET.TRADE, OS.FILLED, 10, 0)]
    rej = only(sent(om.on_venue([v.Rejected("O1", "order is not open at the venue")])))
    assert isinstance(rej, m.CancelReject)
    assert (rej.cl_ord_id, rej.orig_cl_ord_id, rej.ord_status) == ("C3", "C1", OS.FILLED)
    assert (rej.reason, rej.response_to) == (m.CxlRejReason.TOO_LATE, response_to)


def test_venue_refusing_a_cancel_restores_the_order() -> None:
    om = manager(AsyncVenue())
    live(om)
    om.handle("A", cancel("C2", "C1"))
    events = om.on_venue([v.Rejected("O1", "venue says no")])
    rej = only(sent(events))
    assert isinstance(rej, m.CancelReject)
    assert (rej.cl_ord_id, rej.orig_cl_ord_id, rej.ord_status) == ("C2", "C1", OS.NEW)
    assert (rej.reason, rej.response_to) == (
        m.CxlRejReason.BROKER_OPTION,
        m.CxlRejResponseTo.CANCEL,
    )
    assert rej.text == "venue says no"
    assert om.orders["O1"].status is OS.NEW
    assert states(om.handle("A", cancel("C3", "C1"))) == [
        (ET.PENDING_CANCEL, OS.PENDING_CANCEL, 0, 10)
    ]


def test_second_cancel_or_replace_while_one_is_pending_is_cxl_rej_reason_3() -> None:
    om = manager(AsyncVenue())
    live(om)
    om.handle("A", cancel("C2", "C1"))
    for msg in (cancel("C3", "C1"), amend("C4", "C1", "5", "99")):
        rej = only(sent(om.handle("A", msg)))
        assert isinstance(rej, m.CancelReject)
        assert (rej.reason, rej.ord_status) == (m.CxlRejReason.PENDING, OS.PENDING_CANCEL)


def test_pending_replace_with_a_fill_before_the_replace_is_accepted() -> None:
    venue = AsyncVenue()
    om = manager(venue)
    live(om)
    events = om.handle("A", amend("C2", "C1", "8", "98"))
    assert venue.commands[-1] == ("replace", "O1", D(8), D(98))
    er = only(ers(events))
    assert (er.exec_type, er.ord_status, er.order_qty) == (
        ET.PENDING_REPLACE,
        OS.PENDING_REPLACE,
        10,
    )
    assert states(om.on_venue([v.Fill("O1", D(2), D(99))])) == [
        (ET.TRADE, OS.PENDING_REPLACE, 2, 8)
    ]
    er = only(ers(om.on_venue([v.Replaced("O1", D(8), D(98))])))
    assert (er.exec_type, er.ord_status) == (ET.REPLACED, OS.PARTIALLY_FILLED)
    assert (er.order_qty, er.cum_qty, er.leaves_qty, er.price) == (8, 2, 6, D(98))
    assert (er.cl_ord_id, er.orig_cl_ord_id) == ("C2", "C1")
    assert om.find("A", "C2") is om.orders["O1"]


def test_venue_refusing_a_replace_restores_the_order() -> None:
    om = manager(AsyncVenue())
    live(om)
    om.handle("A", amend("C2", "C1", "8", "98"))
    rej = only(sent(om.on_venue([v.Rejected("O1", "no")])))
    assert isinstance(rej, m.CancelReject)
    assert rej.response_to is m.CxlRejResponseTo.REPLACE
    order = om.orders["O1"]
    assert (order.status, order.quantity, order.price, order.cl_ord_id) == (
        OS.NEW,
        D(10),
        D(99),
        "C1",
    )


def test_events_for_unknown_orders_are_ignored() -> None:
    om = manager(AsyncVenue())
    assert om.on_venue([v.Fill("O99", D(1), D(1)), v.Cancelled("O98")]) == []


# --- restart ----------------------------------------------------------------------------


def _exec_seq(exec_id: str) -> int:
    return int(exec_id.removeprefix("OE"))


def test_restore_after_a_restart_keeps_ids_increasing_and_resting_orders_at_the_venue() -> None:
    clock = Clock()
    before = OrderManager(v.SimulatedVenue(REF, D(10)), clock=clock)
    record = Edge(before)
    log = []
    log += record.handle("A", new("A1", m.Side.BUY, "15", "100"))  # O1: 10 filled, 5 rest
    log += record.handle("A", new("A2", m.Side.BUY, "5", "90"))  # O2: rests
    log += record.handle("B", new("B1", m.Side.SELL, "2", symbol="ETH-PERP"))  # O3: filled
    old_exec_ids = {r.exec_id for r in ers(log)}
    assert set(before.orders) == {"O1", "O2"}  # O3 finished and left memory

    # what the gateway's start-up reads: open orders, the days' used ClOrdIDs, the top OrderID
    record.used.add(("B", T0.date(), "B-rejected-earlier"))  # refused before it made an order
    after = OrderManager(v.SimulatedVenue(REF, D(10)), clock=clock)
    after.restore(
        list(before.orders.values()),
        [],
        used=[ClOrdIdUsed(o, c, d) for o, d, c in record.used],
        warm_from=T0.date(),
        last_order_seq=3,
    )
    after.set_exec_seq(max(map(_exec_seq, old_exec_ids)))
    edge = Edge(after)
    edge.snapshots, edge.used = record.snapshots, record.used

    events = edge.handle("B", new("B2", m.Side.SELL, "7", "90"))
    b_new = ers(events, "B")[0]
    assert b_new.order_id == "O4"
    # the restored book: O1 has 5 open (not 15) at 100, then O2 at 90
    assert states(events, "A") == [
        (ET.TRADE, OS.FILLED, 15, 0),
        (ET.TRADE, OS.PARTIALLY_FILLED, 2, 3),
    ]
    assert [r.last_px for r in ers(events, "A")] == [D(100), D(90)]
    assert ers(events, "B")[-1].ord_status is OS.FILLED
    assert not {r.exec_id for r in ers(events)} & old_exec_ids

    for owner, cl in (("A", "A1"), ("B", "B1"), ("B", "B-rejected-earlier")):
        dup = only(ers(edge.handle(owner, new(cl, qty="1", price="1"))))
        assert dup.ord_rej_reason is m.OrdRejReason.DUPLICATE_ORDER, cl
    assert states(edge.handle("A", cancel("A3", "A2"))) == [(ET.CANCELED, OS.CANCELED, 2, 0)]


def test_restore_hands_only_open_orders_back_to_the_venue() -> None:
    before = manager()
    before.handle("A", new("A1", qty="4", price="100"))  # O1 filled
    before.handle("A", new("A2", qty="5", price="90"))  # O2 rests
    venue = AsyncVenue()
    after = manager(venue)
    after.restore(before.orders.values(), [])
    assert venue.commands == [("resume", "O2", D(0))]
    after.handle("A", new("A3", qty="1", price="90"))
    assert venue.commands[-1] == ("submit", "O3")


# --- memory: finished orders leave, ClOrdIDs per trading day ------------------------------


def test_finished_orders_leave_memory_and_new_cl_ord_ids_need_no_lookup() -> None:
    om = manager(depth="1000000")
    edge = Edge(om)
    for i in range(2000):
        events = edge.handle("A", new(f"F{i}", qty="1"))  # marketable: filled at once
        assert ers(events)[-1].ord_status is OS.FILLED
    assert om.orders == {} and om.evicted == 2000
    assert om.find("A", "F7") is None
    assert edge.lookups == 0  # a fresh ClOrdID is cleared by the day's filter alone
    assert om.exposure("A") == D(2000) * D(100)  # fills still count towards the credit limit
    assert om.finished_notional == {"A": D(2000) * D(100)}
    dup = only(ers(edge.handle("A", new("F7", qty="1"))))
    assert (dup.ord_rej_reason, dup.order_id) == (m.OrdRejReason.DUPLICATE_ORDER, "NONE")
    assert edge.lookups == 1
    status = only(ers(edge.handle("A", m.StatusRequest("F1999", m.Side.BUY, "BTC-PERP"))))
    assert (status.order_id, status.ord_status, status.cum_qty) == ("O2000", OS.FILLED, 1)
    rej = only(sent(edge.handle("A", cancel("X1", "F3"))))
    assert (rej.reason, rej.ord_status, rej.order_id) == (m.CxlRejReason.TOO_LATE, OS.FILLED, "O4")


def test_without_the_edges_answer_a_cl_ord_id_the_filter_may_hold_is_refused() -> None:
    om = manager()
    om.handle("A", new("C1", qty="1"))  # filled, gone from memory
    dup = only(ers(om.handle("A", new("C1", qty="1"))))
    assert dup.ord_rej_reason is m.OrdRejReason.DUPLICATE_ORDER


def test_a_cl_ord_id_may_be_used_again_on_the_next_trading_day() -> None:
    clock = Clock()
    om = OrderManager(v.SimulatedVenue(REF, D(10)), clock=clock)
    edge = Edge(om)
    assert ers(edge.handle("A", new("DAY1", qty="1")))[-1].ord_status is OS.FILLED
    assert only(ers(edge.handle("A", new("DAY1", qty="1")))).ord_rej_reason is (
        m.OrdRejReason.DUPLICATE_ORDER
    )
    clock.now = datetime(2026, 1, 3, 0, 0, 1, tzinfo=UTC)  # past UTC midnight
    again = ers(edge.handle("A", new("DAY1", qty="1")))
    assert [e.ord_status for e in again] == [OS.NEW, OS.FILLED]
    assert again[0].order_id == "O2"
    assert {(o, d.isoformat(), c) for o, d, c in edge.used} == {
        ("A", "2026-01-02", "DAY1"),
        ("A", "2026-01-03", "DAY1"),
    }


def test_an_open_order_keeps_its_cl_ord_id_taken_across_days() -> None:
    clock = Clock()
    om = OrderManager(v.SimulatedVenue(REF, D(10)), clock=clock)
    edge = Edge(om)
    edge.handle("A", new("REST", qty="1", price="90"))
    clock.now += timedelta(days=1)
    assert only(ers(edge.handle("A", new("REST", qty="1")))).ord_rej_reason is (
        m.OrdRejReason.DUPLICATE_ORDER
    )


# --- invariants over random sessions ----------------------------------------------------

CLIENTS = ("A", "B")
quantities = st.integers(min_value=1, max_value=60).map(lambda n: D(n) / 10)
prices = st.integers(min_value=970, max_value=1030).map(lambda n: D(n) / 10)
new_ops = st.tuples(
    st.just("new"),
    st.sampled_from(CLIENTS),
    st.sampled_from(list(m.Side)),
    st.sampled_from([m.OrdType.LIMIT, m.OrdType.LIMIT, m.OrdType.MARKET]),
    quantities,
    prices,
    st.sampled_from(list(m.TimeInForce)),
)
cancel_ops = st.tuples(st.just("cancel"), st.sampled_from(CLIENTS), st.integers(0, 50))
replace_ops = st.tuples(
    st.just("replace"), st.sampled_from(CLIENTS), st.integers(0, 50), quantities, prices
)
reuse_ops = st.tuples(st.just("reuse"), st.sampled_from(CLIENTS), st.integers(0, 50))
status_ops = st.tuples(st.just("status"), st.sampled_from(CLIENTS), st.integers(0, 50))
sessions = st.lists(
    st.one_of(new_ops, new_ops, cancel_ops, replace_ops, reuse_ops, status_ops), max_size=40
)


class Auditor:
    """Checks every message the manager sends against FIX 4.4 quantity rules."""

    def __init__(self, om: OrderManager) -> None:
        self.om = om
        self.exec_ids: set[str] = set()
        self.fills: dict[str, list[tuple[Decimal, Decimal]]] = defaultdict(list)

    def check(self, events: list[CoreEvent]) -> None:
        for event in events:
            if not isinstance(event, Send):
                continue
            msg = event.message
            if not isinstance(msg, m.ExecutionReport):
                continue
            assert msg.exec_id not in self.exec_ids, f"ExecID {msg.exec_id} reused"
            self.exec_ids.add(msg.exec_id)
            assert D(0) <= msg.cum_qty <= msg.order_qty, msg
            assert msg.leaves_qty >= 0, msg
            if msg.ord_status in OPEN:
                assert msg.leaves_qty + msg.cum_qty == msg.order_qty, msg
            else:
                assert msg.leaves_qty == 0, msg
            if msg.ord_status is OS.FILLED:
                assert msg.cum_qty == msg.order_qty, msg
            if msg.ord_status is OS.PARTIALLY_FILLED:
                assert 0 < msg.cum_qty < msg.order_qty, msg
            if msg.order_id in self.om.orders:
                assert event.to == self.om.orders[msg.order_id].owner
            if msg.exec_type is ET.TRADE:
                assert msg.last_qty > 0 and msg.last_px > 0, msg
                self.fills[msg.order_id].append((msg.last_qty, msg.last_px))
                fills = self.fills[msg.order_id]
                assert msg.cum_qty == sum(q for q, _ in fills)
                notional = sum(q * p for q, p in fills)
                assert abs(msg.avg_px * msg.cum_qty - notional) < D("1e-15")
                assert min(p for _, p in fills) <= msg.avg_px <= max(p for _, p in fills)

    def check_orders(self, edge: Edge) -> None:
        # memory holds exactly the orders not finished
        assert set(self.om.orders) == {o.order_id for o in edge.snapshots.values() if o.is_open}
        for order in self.om.orders.values():
            assert order.is_open
            assert D(0) <= order.cum_qty <= order.quantity, order
            assert order.status not in (OS.PENDING_CANCEL, OS.PENDING_REPLACE, OS.PENDING_NEW)
            assert order.cum_qty == sum((q for q, _ in self.fills[order.order_id]), D(0))
            if order.is_open:
                assert order.leaves_qty + order.cum_qty == order.quantity


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions)
def test_quantities_and_exec_ids_stay_consistent_over_random_sessions(ops: list[tuple]) -> None:
    om = manager(depth="3")
    edge = Edge(om)
    audit = Auditor(om)
    issued: dict[str, list[str]] = {c: [] for c in CLIENTS}  # every ClOrdID sent
    placed: dict[str, list[str]] = {c: [] for c in CLIENTS}  # those of new orders
    counter = iter(range(10_000))

    def fresh(client: str) -> str:
        cl = f"{client}{next(counter)}"
        issued[client].append(cl)
        return cl

    def pick(client: str, index: int) -> Order | None:
        """An order by one of its ClOrdIDs: in memory, or finished (from the edge's record)."""
        if not issued[client]:
            return None
        cl = issued[client][index % len(issued[client])]
        found = om.find(client, cl)
        if found is None:
            known = [
                o
                for o in edge.snapshots.values()
                if o.owner == client and cl in (o.cl_ord_id, o.orig_cl_ord_id)
            ]
            found = known[-1] if known else None
        return found

    for op in ops:
        kind, client = op[0], op[1]
        events: list[CoreEvent] = []
        if kind == "new":
            _, _, side, ord_type, qty, price, tif = op
            msg = m.NewOrder(
                fresh(client),
                parse_symbol("BTC-PERP"),
                side,
                qty,
                ord_type,
                price if ord_type is m.OrdType.LIMIT else None,
                tif,
            )
            placed[client].append(msg.cl_ord_id)
            events = edge.handle(client, msg)
        elif kind == "reuse" and placed[client]:
            cl = placed[client][op[2] % len(placed[client])]
            events = edge.handle(client, new(cl, qty="1", price="100"))
            assert only(ers(events)).ord_rej_reason is m.OrdRejReason.DUPLICATE_ORDER
        elif kind == "status" and issued[client]:
            cl = issued[client][op[2] % len(issued[client])]
            events = edge.handle(client, m.StatusRequest(cl, m.Side.BUY, "BTC-PERP"))
        elif kind == "cancel" and (order := pick(client, op[2])) is not None:
            events = edge.handle(client, cancel(fresh(client), order.cl_ord_id, order.side))
            answer = sent(events)[-1] if order.is_open else only(sent(events))
            if order.is_open:
                assert isinstance(answer, m.ExecutionReport) and answer.ord_status is OS.CANCELED
            else:
                assert answer.reason is m.CxlRejReason.TOO_LATE
        elif kind == "replace" and (order := pick(client, op[2])) is not None:
            _, _, _, qty, price = op
            msg = m.ReplaceRequest(
                fresh(client),
                order.cl_ord_id,
                order.instrument,
                order.side,
                qty,
                order.ord_type,
                price if order.ord_type is m.OrdType.LIMIT else None,
            )
            events = edge.handle(client, msg)
            if order.is_open and qty <= order.cum_qty:
                assert isinstance(only(sent(events)), m.CancelReject)
        audit.check(events)
        audit.check_orders(edge)

    # The venue and the manager agree on what is open: each open order cancels cleanly.
    for order in list(om.orders.values()):
        if order.is_open:
            events = edge.handle(
                order.owner, cancel(fresh(order.owner), order.cl_ord_id, order.side)
            )
            audit.check(events)
            assert states(events) == [(ET.CANCELED, OS.CANCELED, order.cum_qty, 0)]
    assert om.orders == {}
