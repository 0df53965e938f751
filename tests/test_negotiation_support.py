"""Shared builders for the negotiation tests (this module holds no tests of its own)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from fixspec.messages import Side
from otc.negotiation import (
    REJECTIONS,
    AcceptQuote,
    AcceptVia,
    Audience,
    DeskKeyring,
    Event,
    Firmness,
    LegPrice,
    LegRequest,
    NegotiationConfig,
    NegotiationEngine,
    QuoteTerms,
    RejectReason,
    RoutingTable,
    SealedQuote,
    SubmitQuote,
    SubmitRfq,
    generate_desk_key,
)
from otc.negotiation.events import QuoteToClient, RfqAcknowledged

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CLIENT = "CLIENT-1"
DESKS = ("DESK-A", "DESK-B", "DESK-C")
OPTION = "BTC-27DEC26-100000-C"
KEYS = {desk: generate_desk_key() for desk in DESKS}
ROUTES = {CLIENT: {"*": list(DESKS)}, "CLIENT-2": {"option": ["DESK-A"]}}

E = TypeVar("E")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def D(text: str) -> Decimal:
    return Decimal(text)


def make_engine(
    routes: dict[str, Any] | None = None,
    config: NegotiationConfig | None = None,
    *,
    signing: bool = True,
) -> NegotiationEngine:
    return NegotiationEngine(
        RoutingTable.from_config(ROUTES if routes is None else routes),
        DeskKeyring(KEYS) if signing else None,
        config,
    )


def rfq_cmd(**overrides: Any) -> SubmitRfq:
    fields: dict[str, Any] = {
        "client_id": CLIENT,
        "quote_req_id": "QR-1",
        "legs": (LegRequest(OPTION, Side.BUY),),
        "quantity": D("10"),
    }
    fields.update(overrides)
    return SubmitRfq(**fields)


def open_rfq(engine: NegotiationEngine, now: datetime = T0, **overrides: Any) -> str:
    events = engine.handle(rfq_cmd(**overrides), now)
    return one(events, RfqAcknowledged).rfq.rfq_id


def terms(
    bid: str | None,
    offer: str | None,
    valid_for: float = 30,
    now: datetime = T0,
    legs: Iterable[tuple[int, str | None, str | None]] = (),
    **kw: Any,
) -> QuoteTerms:
    return QuoteTerms(
        valid_until=now + timedelta(seconds=valid_for),
        bid_px=None if bid is None else D(bid),
        offer_px=None if offer is None else D(offer),
        legs=tuple(
            LegPrice(n, None if b is None else D(b), None if o is None else D(o))
            for n, b, o in legs
        ),
        **kw,
    )


def quote(
    engine: NegotiationEngine,
    desk: str,
    rfq_id: str,
    bid: str | None,
    offer: str | None,
    now: datetime,
    *,
    valid_for: float = 30,
    firmness: Firmness = Firmness.FIRM,
    **kw: Any,
) -> SealedQuote:
    events = engine.handle(
        SubmitQuote(desk, rfq_id, terms(bid, offer, valid_for, now, firmness=firmness, **kw)), now
    )
    return one(events, QuoteToClient).sealed


def accept(
    sealed: SealedQuote,
    side: Side = Side.BUY,
    ref: str = "ORD-1",
    via: AcceptVia = AcceptVia.NEW_ORDER,
    client: str = CLIENT,
    **kw: Any,
) -> AcceptQuote:
    return AcceptQuote(client, sealed.quote.quote_id, ref, via, side, sealed.quote_hash, **kw)


def of_type(events: Iterable[Event], cls: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, cls)]


def one(events: Iterable[Event], cls: type[E]) -> E:
    found = of_type(events, cls)
    assert len(found) == 1, f"expected one {cls.__name__}, got {found!r}"
    return found[0]


def addressed_to_desk(events: Iterable[Event], desk: str) -> list[Event]:
    return [
        e
        for e in events
        if e.audience in (Audience.DESK, Audience.PARTIES) and e.desk_id == desk  # type: ignore[union-attr]
    ]


def strings_in(value: Any) -> set[str]:
    """Every string inside an event (recursing through dataclasses and tuples)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, tuple | list):
        return set().union(*(strings_in(v) for v in value)) if value else set()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return strings_in([getattr(value, f.name) for f in dataclasses.fields(value)])
    return set()


def assert_refused(
    engine: NegotiationEngine, command: Any, now: datetime, reason: RejectReason
) -> Event:
    """The command is refused with ``reason`` and the engine is exactly as before."""
    engine.tick(now)  # let due timers fire first, so only the command can change anything
    before = engine.snapshot()
    events = engine.handle(command, now)
    assert len(events) == 1, events
    (event,) = events
    assert isinstance(event, REJECTIONS), event
    assert event.reason is reason, event
    assert event.text, "a refusal must say what was wrong"
    assert engine.snapshot() == before
    return event
