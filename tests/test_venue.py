"""The deterministic simulated venue: matching, depth, time in force, replace and resume."""

from __future__ import annotations

from decimal import Decimal

from fixspec.instruments import parse_symbol
from fixspec.messages import OrdType, Side, TimeInForce
from otc.venue import Accepted, Cancelled, Fill, Rejected, Replaced, SimulatedVenue, VenueOrder

D = Decimal
PERP = parse_symbol("BTC-PERP")
REF = {"BTC-PERP": D(100), "ETH-PERP": D(10)}


def venue(depth: str = "10") -> SimulatedVenue:
    return SimulatedVenue(REF, D(depth))


def order(
    order_id: str,
    side: Side,
    qty: str,
    price: str | None = None,
    tif: TimeInForce = TimeInForce.DAY,
    symbol: str = "BTC-PERP",
) -> VenueOrder:
    ord_type = OrdType.MARKET if price is None else OrdType.LIMIT
    return VenueOrder(
        order_id,
        parse_symbol(symbol),
        side,
        D(qty),
        ord_type,
        None if price is None else D(price),
        tif,
    )


def test_unknown_instrument_is_rejected_as_unknown_symbol() -> None:
    events = venue().submit(order("O1", Side.BUY, "1", symbol="SOL-PERP"))
    assert len(events) == 1
    assert isinstance(events[0], Rejected)
    assert events[0].unknown_symbol is True
    assert "SOL-PERP" in events[0].text


def test_limit_order_away_from_the_market_rests() -> None:
    v = venue()
    assert v.submit(order("O1", Side.BUY, "5", "99")) == [Accepted("O1")]
    assert v.submit(order("O2", Side.SELL, "5", "101")) == [Accepted("O2")]
    assert v.cancel("O1") == [Cancelled("O1", "cancelled on request")]
    assert v.cancel("O2") == [Cancelled("O2", "cancelled on request")]


def test_marketable_order_takes_depth_at_the_reference_price() -> None:
    v = venue()
    assert v.submit(order("O1", Side.BUY, "4", "100")) == [Accepted("O1"), Fill("O1", D(4), D(100))]
    assert v.submit(order("O2", Side.SELL, "4")) == [Accepted("O2"), Fill("O2", D(4), D(100))]


def test_depth_is_per_order_and_the_rest_of_a_limit_order_rests() -> None:
    v = venue()
    assert v.submit(order("O1", Side.BUY, "15", "101")) == [
        Accepted("O1"),
        Fill("O1", D(10), D(100)),
    ]
    # the remaining 5 rest at 101 and are crossed by a seller at the resting price
    assert v.submit(order("O2", Side.SELL, "3", "101")) == [
        Accepted("O2"),
        Fill("O2", D(3), D(101)),
        Fill("O1", D(3), D(101)),
    ]


def test_market_order_remainder_is_cancelled() -> None:
    events = venue().submit(order("O1", Side.BUY, "15"))
    assert events == [
        Accepted("O1"),
        Fill("O1", D(10), D(100)),
        Cancelled("O1", "no more liquidity"),
    ]


def test_contra_orders_match_in_price_then_time_priority() -> None:
    v = venue()
    v.submit(order("B1", Side.BUY, "2", "98"))
    v.submit(order("B2", Side.BUY, "2", "99"))
    v.submit(order("B3", Side.BUY, "2", "99"))
    events = v.submit(order("S1", Side.SELL, "5", "98"))
    fills = [e for e in events if isinstance(e, Fill)]
    assert fills == [
        Fill("S1", D(2), D(99)),
        Fill("B2", D(2), D(99)),
        Fill("S1", D(2), D(99)),
        Fill("B3", D(2), D(99)),
        Fill("S1", D(1), D(98)),
        Fill("B1", D(1), D(98)),
    ]
    # B1 keeps its last lot; B2 and B3 are gone from the book
    assert v.cancel("B2") == [Rejected("B2", "order is not open at the venue")]
    assert v.cancel("B1") == [Cancelled("B1", "cancelled on request")]


def test_resting_orders_of_another_instrument_do_not_match() -> None:
    v = venue()
    assert v.submit(order("B1", Side.BUY, "2", "9", symbol="ETH-PERP")) == [Accepted("B1")]
    events = v.submit(order("S1", Side.SELL, "2", "9"))
    assert events == [Accepted("S1"), Fill("S1", D(2), D(100))]
    assert v.cancel("B1") == [Cancelled("B1", "cancelled on request")]


def test_ioc_cancels_what_it_cannot_fill_at_once() -> None:
    v = venue()
    assert v.submit(order("O1", Side.BUY, "15", "100", TimeInForce.IOC)) == [
        Accepted("O1"),
        Fill("O1", D(10), D(100)),
        Cancelled("O1", "no more liquidity"),
    ]
    assert v.submit(order("O2", Side.BUY, "1", "90", TimeInForce.IOC)) == [
        Accepted("O2"),
        Cancelled("O2", "no more liquidity"),
    ]
    assert v.cancel("O2") == [Rejected("O2", "order is not open at the venue")]


def test_fok_fills_completely_or_not_at_all() -> None:
    v = venue()
    assert v.submit(order("O1", Side.BUY, "11", "100", TimeInForce.FOK)) == [
        Accepted("O1"),
        Cancelled("O1", "FOK not filled"),
    ]
    assert v.submit(order("O2", Side.BUY, "10", "100", TimeInForce.FOK)) == [
        Accepted("O2"),
        Fill("O2", D(10), D(100)),
    ]


def test_fok_counts_resting_contra_liquidity() -> None:
    v = venue()
    v.submit(order("S1", Side.SELL, "5", "100.5"))
    events = v.submit(order("B1", Side.BUY, "15", "100.5", TimeInForce.FOK))
    assert [e for e in events if isinstance(e, Fill) and e.order_id == "B1"] == [
        Fill("B1", D(5), D("100.5")),
        Fill("B1", D(10), D(100)),
    ]
    # a FOK that finds no liquidity leaves the book untouched
    v.submit(order("S2", Side.SELL, "5", "100.5"))
    assert v.submit(order("B2", Side.BUY, "16", "100.5", TimeInForce.FOK))[-1] == Cancelled(
        "B2", "FOK not filled"
    )
    assert v.cancel("S2") == [Cancelled("S2", "cancelled on request")]


def test_replace_that_makes_an_order_marketable_fills_it() -> None:
    v = venue()
    v.submit(order("O1", Side.BUY, "5", "90"))
    assert v.replace("O1", D(5), D(100)) == [
        Replaced("O1", D(5), D(100)),
        Fill("O1", D(5), D(100)),
    ]
    assert v.cancel("O1") == [Rejected("O1", "order is not open at the venue")]


def test_replace_quantity_is_the_new_total_and_must_exceed_the_filled_part() -> None:
    v = venue("4")
    v.submit(order("O1", Side.BUY, "10", "100"))  # 4 filled, 6 rest
    assert v.replace("O1", D(4), D(100)) == [
        Rejected("O1", "new quantity does not exceed the filled quantity")
    ]
    assert v.replace("O1", D(3), D(99)) == [
        Rejected("O1", "new quantity does not exceed the filled quantity")
    ]
    assert v.replace("O1", D(7), D(99)) == [Replaced("O1", D(7), D(99))]
    # 3 left open: a seller takes exactly that
    events = v.submit(order("S1", Side.SELL, "5", "99"))
    assert Fill("O1", D(3), D(99)) in events


def test_replace_or_cancel_of_an_order_not_at_the_venue_is_rejected() -> None:
    v = venue()
    assert v.replace("NOPE", D(1), D(1)) == [Rejected("NOPE", "order is not open at the venue")]
    assert v.cancel("NOPE") == [Rejected("NOPE", "order is not open at the venue")]


def test_replace_with_a_new_price_loses_time_priority() -> None:
    v = venue()
    v.submit(order("B1", Side.BUY, "1", "99"))
    v.submit(order("B2", Side.BUY, "1", "99"))
    v.replace("B1", D(1), D("99.0"))  # same price: keeps its place
    v.replace("B1", D(2), D(99))  # larger quantity: goes to the back
    events = v.submit(order("S1", Side.SELL, "1", "99"))
    assert Fill("B2", D(1), D(99)) in events
    assert all(not (isinstance(e, Fill) and e.order_id == "B1") for e in events)


def test_resume_takes_back_an_open_order_with_its_filled_part() -> None:
    v = venue()
    v.resume(order("B1", Side.BUY, "10", "99"), D(7))
    events = v.submit(order("S1", Side.SELL, "5", "99"))
    assert events[:3] == [Accepted("S1"), Fill("S1", D(3), D(99)), Fill("B1", D(3), D(99))]
    assert v.cancel("B1") == [Rejected("B1", "order is not open at the venue")]


def test_reference_price_lookup() -> None:
    v = venue()
    assert v.reference_price("BTC-PERP") == D(100)
    assert v.reference_price("SOL-PERP") is None
