"""Normalised RFQ and quote domain types: what the negotiation core has validated and keeps.

All frozen, prices and sizes ``Decimal``, times timezone-aware UTC. Leg sides are the client's
side on that leg *when the client buys the package*; selling the package flips every leg.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from fixspec.instruments import Instrument, InstrumentKind
from fixspec.messages import Side
from fixspec.rfq_codes import QuoteType

HEDGE_KINDS = frozenset({InstrumentKind.FUTURE, InstrumentKind.PERPETUAL})
"""A hedge leg offsets delta, so it must be a linear instrument."""


def flip(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


class Firmness(StrEnum):
    """FIRM quotes fill on acceptance; LAST_LOOK quotes give the desk a bounded hold to decide."""

    FIRM = "firm"
    LAST_LOOK = "last_look"


class AcceptVia(StrEnum):
    """Which client message accepted: QuoteResponse 694=1 (QuoteRespID) or NewOrderSingle
    OrdType=D (ClOrdID). The two id spaces are separate, as in FIX."""

    QUOTE_RESPONSE = "quote_response"
    NEW_ORDER = "new_order"


@dataclass(frozen=True, slots=True)
class RfqLeg:
    leg_no: int
    instrument: Instrument
    side: Side
    ratio: Decimal
    hedge: bool = False


@dataclass(frozen=True, slots=True)
class Rfq:
    """A validated request for quote. ``side`` is None for a two-way request."""

    rfq_id: str
    client_id: str
    quote_req_id: str
    legs: tuple[RfqLeg, ...]
    quantity: Decimal
    side: Side | None
    quote_type: QuoteType
    multileg: bool
    requested_at: datetime
    expire_at: datetime
    label: str | None = None  # the client's name for the package, echoed back to it
    disclosed: bool = True
    alias: str | None = None  # what desks see instead of client_id when not disclosed

    @property
    def counterparty(self) -> str:
        """The client as desks may know it: its id when disclosed, else its alias."""
        return self.client_id if self.disclosed or self.alias is None else self.alias

    @property
    def two_way(self) -> bool:
        return self.side is None

    @property
    def priced_legs(self) -> tuple[RfqLeg, ...]:
        """Legs that make up the package price (hedge legs trade at their own price)."""
        return tuple(leg for leg in self.legs if not leg.hedge)

    @property
    def currency(self) -> str:
        return self.priced_legs[0].instrument.quote_currency


@dataclass(frozen=True, slots=True)
class LegQuote:
    """One leg's prices inside a quote, with enough of the leg to read the signed quote alone."""

    leg_no: int
    symbol: str
    side: Side
    ratio: Decimal
    hedge: bool
    bid_px: Decimal | None
    offer_px: Decimal | None

    def price_for(self, client_side: Side) -> Decimal | None:
        """The price at which the client trades this leg on ``client_side``."""
        return self.offer_px if client_side is Side.BUY else self.bid_px


@dataclass(frozen=True, slots=True)
class Quote:
    """A desk's quote on a package. ``bid_px`` is what the desk pays (client sells), ``offer_px``
    what the desk charges (client buys); a one-way quote leaves the other side None."""

    quote_id: str
    rfq_id: str
    client_id: str
    desk_id: str
    quote_type: QuoteType
    firmness: Firmness
    bid_px: Decimal | None
    offer_px: Decimal | None
    bid_size: Decimal | None
    offer_size: Decimal | None
    legs: tuple[LegQuote, ...]
    valid_until: datetime
    quoted_at: datetime
    replaces_quote_id: str | None = None
    counter_id: str | None = None
    desk_quote_ref: str | None = None

    def price_for(self, client_side: Side) -> Decimal | None:
        return self.offer_px if client_side is Side.BUY else self.bid_px

    def size_for(self, client_side: Side) -> Decimal | None:
        return self.offer_size if client_side is Side.BUY else self.bid_size


@dataclass(frozen=True, slots=True)
class SealedQuote:
    """A quote with the SHA-256 of its canonical form and the desk's Ed25519 signature over it
    (None only when signing is switched off, as in the benchmark baseline)."""

    quote: Quote
    quote_hash: str
    signature: bytes | None


@dataclass(frozen=True, slots=True)
class Counter:
    """A client's counter-proposal (QuoteResponse 694=2) on one quote."""

    counter_id: str
    rfq_id: str
    quote_id: str
    client_id: str
    desk_id: str
    quote_resp_id: str
    side: Side
    price: Decimal
    quantity: Decimal
    countered_at: datetime


@dataclass(frozen=True, slots=True)
class Acceptance:
    """A client's hit/lift of one quote, FOK for the whole quantity."""

    rfq_id: str
    quote_id: str
    client_id: str
    via: AcceptVia
    client_ref: str  # ClOrdID or QuoteRespID
    side: Side
    quantity: Decimal
    price: Decimal
    quote_hash: str
    accepted_at: datetime
