"""Commands into the negotiation core, as the FIX and HTTP edges build them.

Commands carry raw-ish input (symbols, optional fields) because validating it is the core's job;
they never carry the time: ``engine.handle(command, now)`` supplies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from fixspec.messages import Side
from fixspec.rfq_codes import QuoteType
from otc.negotiation.model import AcceptVia, Firmness

# --- client ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegRequest:
    """One requested leg: ``side`` is the client's side on it when buying the package."""

    symbol: str
    side: Side
    ratio: Decimal = Decimal(1)
    hedge: bool = False


@dataclass(frozen=True, slots=True)
class SubmitRfq:
    """QuoteRequest (R) or the desk web API on a client's behalf. ``side`` None = two-way.

    ``desks``: the client's choice of dealers, each of which must be routed for it (none: every
    routed desk). ``disclosed`` False shows desks only ``alias`` (which the edge draws at random
    for each RFQ) instead of the client's id; None takes the edge's default."""

    client_id: str
    quote_req_id: str
    legs: tuple[LegRequest, ...]
    quantity: Decimal
    side: Side | None = None
    quote_type: QuoteType = QuoteType.TRADEABLE
    multileg: bool = False
    expire_at: datetime | None = None  # ExpireTime(126); default now + config.rfq_ttl
    label: str | None = None  # the client's own name for a strategy (Symbol on an MLEG R)
    desks: tuple[str, ...] = ()
    disclosed: bool | None = None
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class CancelRfq:
    """The client withdraws its request (QuoteCancel / web API)."""

    client_id: str
    rfq_id: str


@dataclass(frozen=True, slots=True)
class ClientPass:
    """QuoteResponse 694=6. With ``quote_id`` the client passes on that quote only; without it,
    on the whole RFQ (which ends as Cancelled)."""

    client_id: str
    rfq_id: str
    quote_resp_id: str
    quote_id: str | None = None


@dataclass(frozen=True, slots=True)
class CounterQuote:
    """QuoteResponse 694=2: the client proposes ``price`` (package) on ``side``."""

    client_id: str
    rfq_id: str
    quote_id: str
    quote_resp_id: str
    side: Side
    price: Decimal
    quantity: Decimal | None = None  # default: the RFQ quantity


@dataclass(frozen=True, slots=True)
class AcceptQuote:
    """QuoteResponse 694=1 (client_ref = QuoteRespID) or NewOrderSingle OrdType=D, FOK
    (client_ref = ClOrdID). ``quote_hash`` must be the hash sent with the quote; ``price``, when
    given, must equal the quoted price; ``quantity`` defaults to the RFQ quantity."""

    client_id: str
    quote_id: str
    client_ref: str
    via: AcceptVia
    side: Side
    quote_hash: str
    quantity: Decimal | None = None
    price: Decimal | None = None


# --- desk -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegPrice:
    """A desk's prices for one RFQ leg, by leg number (1-based, as in the RFQ)."""

    leg_no: int
    bid_px: Decimal | None = None
    offer_px: Decimal | None = None


@dataclass(frozen=True, slots=True)
class QuoteTerms:
    """What a desk quotes. One-way: leave one side None. Sizes default to the RFQ quantity.
    ``legs`` are required when the RFQ has more than one leg (hedge legs included)."""

    valid_until: datetime
    bid_px: Decimal | None = None
    offer_px: Decimal | None = None
    bid_size: Decimal | None = None
    offer_size: Decimal | None = None
    legs: tuple[LegPrice, ...] = ()
    firmness: Firmness = Firmness.FIRM
    quote_type: QuoteType | None = None  # default: the RFQ's quote type
    desk_quote_ref: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitQuote:
    desk_id: str
    rfq_id: str
    terms: QuoteTerms


@dataclass(frozen=True, slots=True)
class ReplaceQuote:
    """Replace a live quote; the old one becomes Replaced, the new one carries its id."""

    desk_id: str
    quote_id: str
    terms: QuoteTerms


MAX_MASS_QUOTES = 100
"""The most quotes one :class:`SubmitQuotes` carries: a desk's burst stays one short engine call."""


@dataclass(frozen=True, slots=True)
class MassQuoteEntry:
    """One quote of a mass quote: a new quote on ``rfq_id``, or, with ``replaces_quote_id``, a
    replacement of that live quote (which must be on ``rfq_id``)."""

    rfq_id: str
    terms: QuoteTerms
    replaces_quote_id: str | None = None

    def command(self, desk_id: str) -> SubmitQuote | ReplaceQuote:
        """The single-quote command this entry stands for."""
        if self.replaces_quote_id is None:
            return SubmitQuote(desk_id, self.rfq_id, self.terms)
        return ReplaceQuote(desk_id, self.replaces_quote_id, self.terms)


@dataclass(frozen=True, slots=True)
class SubmitQuotes:
    """A desk's mass quote: each entry is applied on its own, in order (a refused one leaves the
    others standing), in one engine call, so the edge journals, locks and audits once per burst.
    Each entry is answered by exactly one QuoteAcknowledged or DeskActionRejected, in order."""

    desk_id: str
    quotes: tuple[MassQuoteEntry, ...]


@dataclass(frozen=True, slots=True)
class CancelQuote:
    desk_id: str
    quote_id: str


@dataclass(frozen=True, slots=True)
class CancelAllQuotes:
    """Withdraw every live quote of the desk, or only those on ``rfq_id``. Quotes held in a
    last-look window are left alone: the desk must confirm or reject those."""

    desk_id: str
    rfq_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeskPass:
    """The desk declines to quote (withdrawing its live quote on the RFQ, if any)."""

    desk_id: str
    rfq_id: str


@dataclass(frozen=True, slots=True)
class AnswerCounter:
    """Answer a counter with new terms (replacing the countered quote) or decline (terms None)."""

    desk_id: str
    counter_id: str
    terms: QuoteTerms | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmLastLook:
    desk_id: str
    quote_id: str


@dataclass(frozen=True, slots=True)
class RejectLastLook:
    desk_id: str
    quote_id: str
    text: str | None = None


class PullCause(StrEnum):
    PROTECTION = "protection"  # the desk's market maker protection tripped
    DISCONNECT = "disconnect"  # the desk's last stream closed (cancel-on-disconnect)


@dataclass(frozen=True, slots=True)
class PullDeskQuotes:
    """Take every live quote of the desk out of the market for ``cause`` (quotes held in a
    last-look window stay: the desk must still decide those)."""

    desk_id: str
    cause: PullCause


@dataclass(frozen=True, slots=True)
class ResetDeskProtection:
    """The desk resumes quoting after its market maker protection tripped."""

    desk_id: str


# --- post-trade -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfirmTrade:
    """Filled -> Confirmed, sent by the post-trade edge once the trade is affirmed/persisted."""

    trade_id: str


ClientCommand = SubmitRfq | CancelRfq | ClientPass | CounterQuote | AcceptQuote
DeskCommand = (
    SubmitQuote
    | ReplaceQuote
    | SubmitQuotes
    | CancelQuote
    | CancelAllQuotes
    | DeskPass
    | AnswerCounter
    | ConfirmLastLook
    | RejectLastLook
    | PullDeskQuotes
    | ResetDeskProtection
)
Command = ClientCommand | DeskCommand | ConfirmTrade
