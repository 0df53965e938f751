"""Why the core refused something, as one enumeration the edges translate to FIX and HTTP codes.

Every refusal carries a :class:`RejectReason` and a human-readable text naming what was wrong.
The mapping helpers below are the single place where a reason becomes QuoteRequestRejectReason
(658), OrdRejReason (103) or QuoteStatus (297). The HTTP edge keeps its own table of statuses:
HTTP is not the core's business.
"""

from __future__ import annotations

from enum import StrEnum

from fixspec.messages import OrdRejReason
from fixspec.rfq_codes import QuoteRequestRejectReason, QuoteStatus


class RejectReason(StrEnum):
    # any command
    MISSING_FIELD = "missing_field"
    INVALID_SIDE = "invalid_side"
    # request shape
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    TOO_FEW_LEGS = "too_few_legs"
    TOO_MANY_LEGS = "too_many_legs"
    DUPLICATE_LEG = "duplicate_leg"
    INVALID_HEDGE_LEG = "invalid_hedge_leg"
    INVALID_RATIO = "invalid_ratio"
    MIXED_CURRENCIES = "mixed_currencies"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_TIME = "invalid_time"
    NO_ROUTE = "no_route"
    DUPLICATE_QUOTE_REQ_ID = "duplicate_quote_req_id"
    ALL_DESKS_PASSED = "all_desks_passed"
    # quote shape
    MISSING_SIDE = "missing_side"
    CROSSED_QUOTE = "crossed_quote"
    INVALID_PRICE = "invalid_price"
    INVALID_SIZE = "invalid_size"
    LEG_PRICES_MISSING = "leg_prices_missing"
    LEG_PRICES_INCONSISTENT = "leg_prices_inconsistent"
    QUOTE_ALREADY_LIVE = "quote_already_live"
    TOO_MANY_QUOTES = "too_many_quotes"
    DESK_NOT_ROUTED = "desk_not_routed"
    DESK_PASSED = "desk_passed"
    NO_SIGNING_KEY = "no_signing_key"
    DESK_NOT_ALLOWED = "desk_not_allowed"  # a desk the client chose is not routed for it
    DESK_FROZEN = "desk_frozen"  # market maker protection tripped: no quoting until reset
    DESK_NOT_FROZEN = "desk_not_frozen"
    # lookups and state
    UNKNOWN_RFQ = "unknown_rfq"
    UNKNOWN_QUOTE = "unknown_quote"
    UNKNOWN_COUNTER = "unknown_counter"
    UNKNOWN_TRADE = "unknown_trade"
    RFQ_NOT_OPEN = "rfq_not_open"
    RFQ_EXPIRED = "rfq_expired"
    RFQ_EXECUTING = "rfq_executing"
    RFQ_FILLED = "rfq_filled"
    ILLEGAL_TRANSITION = "illegal_transition"
    # acceptance and counter
    QUOTE_EXPIRED = "quote_expired"
    QUOTE_NOT_LIVE = "quote_not_live"
    QUOTE_HELD = "quote_held"
    QUOTE_HASH_MISMATCH = "quote_hash_mismatch"
    QUOTE_INDICATIVE = "quote_indicative"
    SIDE_NOT_QUOTED = "side_not_quoted"
    QUANTITY_EXCEEDS_QUOTE = "quantity_exceeds_quote"
    PRICE_MISMATCH = "price_mismatch"
    COUNTER_NOT_IMPROVING = "counter_not_improving"
    COUNTER_PENDING = "counter_pending"
    COUNTER_CLOSED = "counter_closed"
    DUPLICATE_CL_ORD_ID = "duplicate_cl_ord_id"
    DUPLICATE_QUOTE_RESP_ID = "duplicate_quote_resp_id"
    # last look
    LAST_LOOK_REJECTED = "last_look_rejected"
    LAST_LOOK_TIMEOUT = "last_look_timeout"
    NO_PENDING_LAST_LOOK = "no_pending_last_look"
    LAST_LOOK_WINDOW_CLOSED = "last_look_window_closed"
    # pre-trade risk, decided before the command reaches the engine
    RISK_LIMIT = "risk_limit"
    KILL_SWITCH = "kill_switch"


class NegotiationError(Exception):
    """A command the core refuses; nothing was changed. ``reason`` is machine-readable."""

    def __init__(self, reason: RejectReason, text: str) -> None:
        super().__init__(f"{reason.value}: {text}")
        self.reason = reason
        self.text = text


class IllegalTransition(NegotiationError):
    """A state machine was asked to move along an edge it does not have."""

    def __init__(self, machine: str, current: str, target: str) -> None:
        super().__init__(
            RejectReason.ILLEGAL_TRANSITION,
            f"{machine} cannot go from {current} to {target}",
        )
        self.machine = machine
        self.current = current
        self.target = target


R = RejectReason
_QRR = QuoteRequestRejectReason

_QUOTE_REQUEST_REJECT: dict[RejectReason, QuoteRequestRejectReason] = {
    R.UNKNOWN_INSTRUMENT: _QRR.UNKNOWN_SYMBOL,
    R.NO_ROUTE: _QRR.NOT_AUTHORIZED,
    R.DESK_NOT_ALLOWED: _QRR.NOT_AUTHORIZED,
    R.INVALID_TIME: _QRR.TOO_LATE_TO_ENTER,
    R.RFQ_EXPIRED: _QRR.TOO_LATE_TO_ENTER,
    R.ALL_DESKS_PASSED: _QRR.PASS,
    R.DESK_PASSED: _QRR.PASS,
    R.RISK_LIMIT: _QRR.EXCEEDS_LIMIT,
    R.KILL_SWITCH: _QRR.NOT_AUTHORIZED,
}

_ORD_REJ: dict[RejectReason, OrdRejReason] = {
    R.QUOTE_EXPIRED: OrdRejReason.TOO_LATE,
    R.RFQ_EXPIRED: OrdRejReason.TOO_LATE,
    R.QUOTE_NOT_LIVE: OrdRejReason.TOO_LATE,
    R.RFQ_FILLED: OrdRejReason.TOO_LATE,
    R.UNKNOWN_QUOTE: OrdRejReason.UNKNOWN_ORDER,
    R.UNKNOWN_RFQ: OrdRejReason.UNKNOWN_ORDER,
    R.DUPLICATE_CL_ORD_ID: OrdRejReason.DUPLICATE_ORDER,
    R.DUPLICATE_QUOTE_RESP_ID: OrdRejReason.DUPLICATE_ORDER,
    R.QUANTITY_EXCEEDS_QUOTE: OrdRejReason.ORDER_EXCEEDS_LIMIT,
    R.LAST_LOOK_REJECTED: OrdRejReason.BROKER_OPTION,
    R.LAST_LOOK_TIMEOUT: OrdRejReason.BROKER_OPTION,
    R.RISK_LIMIT: OrdRejReason.ORDER_EXCEEDS_LIMIT,
    R.KILL_SWITCH: OrdRejReason.BROKER_OPTION,
}

_QUOTE_STATUS: dict[RejectReason, QuoteStatus] = {
    R.QUOTE_EXPIRED: QuoteStatus.EXPIRED,
    R.RFQ_EXPIRED: QuoteStatus.EXPIRED,
    R.UNKNOWN_QUOTE: QuoteStatus.QUOTE_NOT_FOUND,
    R.UNKNOWN_RFQ: QuoteStatus.QUOTE_NOT_FOUND,
    R.QUOTE_NOT_LIVE: QuoteStatus.REMOVED_FROM_MARKET,
}


def quote_request_reject_reason(reason: RejectReason) -> QuoteRequestRejectReason:
    """QuoteRequestRejectReason(658) for a refused or ended RFQ; OTHER with text otherwise."""
    return _QUOTE_REQUEST_REJECT.get(reason, _QRR.OTHER)


def ord_rej_reason(reason: RejectReason) -> OrdRejReason:
    """OrdRejReason(103) for an ExecutionReport rejecting a NewOrderSingle(OrdType=D)."""
    return _ORD_REJ.get(reason, OrdRejReason.OTHER)


def quote_status(reason: RejectReason) -> QuoteStatus:
    """QuoteStatus(297) for a QuoteStatusReport answering a refused QuoteResponse."""
    return _QUOTE_STATUS.get(reason, QuoteStatus.REJECTED)
