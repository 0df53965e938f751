"""Events out of the negotiation core: everything the FIX, HTTP and persistence edges act on.

Each event names its audience. ``DESK`` events are addressed to ``desk_id`` and carry only that
desk's data (blind quoting); ``CLIENT`` events go to ``client_id``; ``PARTIES`` go to both the
client and the named desk; ``AUDIT`` events are for persistence and surveillance only.
FIX hints in docstrings say which message an edge would send.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from fixspec.messages import OrdRejReason, Side
from fixspec.rfq_codes import QuoteRequestRejectReason, QuoteStatus
from otc.negotiation.errors import RejectReason
from otc.negotiation.model import AcceptVia, Counter, Rfq, SealedQuote
from otc.negotiation.states import QuoteState, RfqState
from otc.trades import TradeCapture


class Audience(StrEnum):
    CLIENT = "client"
    DESK = "desk"
    PARTIES = "parties"
    AUDIT = "audit"


class LastLookOutcome(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"


# --- audit ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RfqStateChanged:
    audience: ClassVar[Audience] = Audience.AUDIT
    rfq_id: str
    client_id: str
    from_state: RfqState | None
    to_state: RfqState
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class QuoteStateChanged:
    audience: ClassVar[Audience] = Audience.AUDIT
    rfq_id: str
    quote_id: str
    desk_id: str
    from_state: QuoteState | None
    to_state: QuoteState
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LastLookResolved:
    """How a last-look hold ended and how long the desk held it (feeds last-look statistics)."""

    audience: ClassVar[Audience] = Audience.AUDIT
    rfq_id: str
    quote_id: str
    desk_id: str
    outcome: LastLookOutcome
    requested_at: datetime
    held_for: timedelta
    at: datetime


# --- client ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RfqAcknowledged:
    """The RFQ is open and routed; ``rfq`` is the normalised request (web API response)."""

    audience: ClassVar[Audience] = Audience.CLIENT
    client_id: str
    rfq: Rfq
    desk_ids: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class QuoteRequestRejected:
    """QuoteRequestReject (AG) with QuoteRequestRejectReason(658) ``fix_reason``. ``rfq_id`` is
    None when the request never became an RFQ."""

    audience: ClassVar[Audience] = Audience.CLIENT
    client_id: str
    quote_req_id: str
    rfq_id: str | None
    reason: RejectReason
    fix_reason: QuoteRequestRejectReason
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class QuoteToClient:
    """Quote (S) to the client, with the quote's hash and the desk's signature.
    ``sealed.quote.replaces_quote_id`` tells a replacement from a new quote."""

    audience: ClassVar[Audience] = Audience.CLIENT
    client_id: str
    sealed: SealedQuote
    at: datetime


@dataclass(frozen=True, slots=True)
class QuoteStatusChanged:
    """A quote left the market without trading: QuoteStatusReport (AI) with QuoteStatus(297)
    ``status`` (7 expired, 6 removed, 4 canceled all), to the client and the quoting desk."""

    audience: ClassVar[Audience] = Audience.PARTIES
    client_id: str
    desk_id: str
    rfq_id: str
    quote_id: str
    status: QuoteStatus
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DeskPassed:
    """A desk declined to quote (QuoteStatus 11 Pass from that dealer)."""

    audience: ClassVar[Audience] = Audience.CLIENT
    client_id: str
    rfq_id: str
    desk_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CounterDeclined:
    audience: ClassVar[Audience] = Audience.CLIENT
    client_id: str
    rfq_id: str
    quote_id: str
    counter_id: str
    desk_id: str
    text: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class AcceptancePending:
    """The acceptance waits for the desk's last look (ER 39=A PendingNew / QuoteStatus 10)."""

    audience: ClassVar[Audience] = Audience.CLIENT
    client_id: str
    rfq_id: str
    quote_id: str
    client_ref: str
    via: AcceptVia
    hold_deadline: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class AcceptanceRejected:
    """The acceptance did not trade. NewOrderSingle path: ER 39=8 with ``ord_rej_reason``;
    QuoteResponse path: QuoteStatusReport with ``quote_status`` (7 = expired)."""

    audience: ClassVar[Audience] = Audience.CLIENT
    client_id: str
    rfq_id: str | None
    quote_id: str
    client_ref: str
    via: AcceptVia
    reason: RejectReason
    ord_rej_reason: OrdRejReason
    quote_status: QuoteStatus
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ClientActionRejected:
    """A refused cancel, pass or counter from the client."""

    audience: ClassVar[Audience] = Audience.CLIENT
    client_id: str
    action: str
    rfq_id: str | None
    quote_id: str | None
    client_ref: str | None
    reason: RejectReason
    quote_status: QuoteStatus
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RfqEnded:
    """The RFQ closed without a trade (expired, cancelled, all desks passed)."""

    audience: ClassVar[Audience] = Audience.CLIENT
    client_id: str
    rfq_id: str
    quote_req_id: str
    state: RfqState
    reason: str
    at: datetime


# --- client and desk ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradeCaptured:
    """Exactly one per RFQ: ER 150=F to the client, trade notice to the winning desk, and the
    record clearing and reporting consume."""

    audience: ClassVar[Audience] = Audience.PARTIES
    client_id: str
    desk_id: str
    client_ref: str
    via: AcceptVia
    trade: TradeCapture
    at: datetime


# --- desk -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RfqToDesk:
    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    rfq: Rfq
    at: datetime


@dataclass(frozen=True, slots=True)
class QuoteAcknowledged:
    """The desk's own quote as accepted into the market, with its id, hash and signature."""

    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    sealed: SealedQuote
    at: datetime


@dataclass(frozen=True, slots=True)
class CounterToDesk:
    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    counter: Counter
    at: datetime


@dataclass(frozen=True, slots=True)
class ClientPassed:
    """QuoteResponse 694=6 forwarded to the desk (``quote_id`` None: pass on the whole RFQ)."""

    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    rfq_id: str
    quote_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class LastLookRequested:
    """The client accepted a last-look quote; confirm or reject before ``hold_deadline``."""

    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    rfq_id: str
    quote_id: str
    client_id: str
    side: Side
    quantity: Decimal
    price: Decimal
    hold_deadline: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class DoneAway:
    """QuoteResponse 694=5: the RFQ traded with another desk. ``quote_id`` is this desk's last
    live quote, if it had one."""

    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    rfq_id: str
    quote_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Cover:
    """QuoteResponse 694=4: this desk's quote was the runner-up on the traded side."""

    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    rfq_id: str
    quote_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RfqWithdrawn:
    """The RFQ closed without trading (expired, cancelled by the client, rejected)."""

    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    rfq_id: str
    state: RfqState
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DeskActionRejected:
    """A refused desk command; the HTTP edge maps ``reason`` to a status
    (``gateway.http.problems.http_status``: ``DESK_NOT_ROUTED`` -> 403)."""

    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    action: str
    rfq_id: str | None
    quote_id: str | None
    reason: RejectReason
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DeskProtectionTripped:
    """The desk's market maker protection tripped: its quoting is frozen (and its live quotes
    are pulled) until it resets. ``fills`` and ``notional`` are what the window held."""

    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    reason: str
    fills: int
    notional: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class DeskProtectionReset:
    """The desk reset its market maker protection and may quote again."""

    audience: ClassVar[Audience] = Audience.DESK
    desk_id: str
    tripped_at: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class TradeConfirmRejected:
    """A refused ConfirmTrade from the post-trade edge."""

    audience: ClassVar[Audience] = Audience.AUDIT
    trade_id: str
    reason: RejectReason
    text: str
    at: datetime


Event = (
    RfqStateChanged
    | QuoteStateChanged
    | LastLookResolved
    | RfqAcknowledged
    | QuoteRequestRejected
    | QuoteToClient
    | QuoteStatusChanged
    | DeskPassed
    | CounterDeclined
    | AcceptancePending
    | AcceptanceRejected
    | ClientActionRejected
    | RfqEnded
    | TradeCaptured
    | RfqToDesk
    | QuoteAcknowledged
    | CounterToDesk
    | ClientPassed
    | LastLookRequested
    | DoneAway
    | Cover
    | RfqWithdrawn
    | DeskActionRejected
    | TradeConfirmRejected
    | DeskProtectionTripped
    | DeskProtectionReset
)

REJECTIONS = (
    QuoteRequestRejected,
    AcceptanceRejected,
    ClientActionRejected,
    DeskActionRejected,
    TradeConfirmRejected,
)
"""Events that answer a refused command; the engine's state is unchanged when it emits one
(except QuoteRequestRejected for ALL_DESKS_PASSED and AcceptanceRejected after a last look,
which report an outcome rather than refuse a command)."""


def rfq_id_of(event: Event) -> str | None:
    """The RFQ an event belongs to, for per-RFQ history."""
    rfq_id: object = getattr(event, "rfq_id", None)  # where present, a str or None
    if isinstance(rfq_id, str):
        return rfq_id
    if isinstance(event, RfqAcknowledged | RfqToDesk):
        return event.rfq.rfq_id
    if isinstance(event, QuoteToClient | QuoteAcknowledged):
        return event.sealed.quote.rfq_id
    if isinstance(event, CounterToDesk):
        return event.counter.rfq_id
    if isinstance(event, TradeCaptured):
        return event.trade.rfq_id
    return None
