"""Normalised internal messages: what the core sees instead of FIX.

Every type is a frozen dataclass with ``Decimal`` quantities and prices and timezone-aware UTC
times. ``SCHEMA_VERSION`` is bumped whenever a field changes meaning, so persisted or queued
messages can be told apart from newer ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from fixspec.instruments import Instrument

SCHEMA_VERSION = 1


def plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and without an exponent (60000, not 6E+4). NaN and the
    infinities have no such form: a ``TypeError``."""
    value = value.normalize()
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # "n", "N" or "F": NaN, sNaN or an infinity
        raise TypeError(f"{value} has no plain notation")
    return value.quantize(Decimal(1)) if exponent > 0 else value


def utcnow() -> datetime:
    return datetime.now(UTC)


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def field_names(cls: type) -> tuple[str, ...] | None:
    """The field names of a dataclass type (None for any other type), looked up once per type:
    ``dataclasses.fields`` on every value dominated describing events and sealing quotes."""
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        names = None
        if dataclasses.is_dataclass(cls):
            names = tuple(f.name for f in dataclasses.fields(cls))
        _FIELD_NAMES[cls] = names
        return names


class Side(StrEnum):
    BUY = "1"
    SELL = "2"


class OrdType(StrEnum):
    MARKET = "1"
    LIMIT = "2"
    PREVIOUSLY_QUOTED = "D"


class TimeInForce(StrEnum):
    DAY = "0"
    GTC = "1"
    IOC = "3"
    FOK = "4"


class OrdStatus(StrEnum):
    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    PENDING_REPLACE = "E"


class ExecType(StrEnum):
    NEW = "0"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    PENDING_REPLACE = "E"
    TRADE = "F"
    TRADE_CORRECT = "G"
    TRADE_CANCEL = "H"
    ORDER_STATUS = "I"


class OrdRejReason(StrEnum):
    BROKER_OPTION = "0"
    UNKNOWN_SYMBOL = "1"
    EXCHANGE_CLOSED = "2"
    ORDER_EXCEEDS_LIMIT = "3"
    TOO_LATE = "4"
    UNKNOWN_ORDER = "5"
    DUPLICATE_ORDER = "6"
    OTHER = "99"


class CxlRejReason(StrEnum):
    TOO_LATE = "0"
    UNKNOWN_ORDER = "1"
    BROKER_OPTION = "2"
    PENDING = "3"
    DUPLICATE_CLORDID = "6"
    OTHER = "99"


class CxlRejResponseTo(StrEnum):
    CANCEL = "1"
    REPLACE = "2"


class BusinessRejectReason(StrEnum):
    OTHER = "0"
    UNKNOWN_ID = "1"
    UNKNOWN_SECURITY = "2"
    UNSUPPORTED_MESSAGE_TYPE = "3"
    APPLICATION_NOT_AVAILABLE = "4"
    CONDITIONALLY_REQUIRED_FIELD_MISSING = "5"
    NOT_AUTHORIZED = "6"


# --- inbound (client -> core) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewOrder:
    """NewOrderSingle (D)."""

    cl_ord_id: str
    instrument: Instrument
    side: Side
    quantity: Decimal
    ord_type: OrdType
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    account: str | None = None
    quote_id: str | None = None
    transact_time: datetime = field(default_factory=utcnow)
    version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """OrderCancelRequest (F)."""

    cl_ord_id: str
    orig_cl_ord_id: str
    side: Side
    symbol: str
    quantity: Decimal | None = None
    order_id: str | None = None
    transact_time: datetime = field(default_factory=utcnow)
    version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class ReplaceRequest:
    """OrderCancelReplaceRequest (G): new quantity and/or price for a live order."""

    cl_ord_id: str
    orig_cl_ord_id: str
    instrument: Instrument
    side: Side
    quantity: Decimal
    ord_type: OrdType
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    order_id: str | None = None
    transact_time: datetime = field(default_factory=utcnow)
    version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """OrderStatusRequest (H)."""

    cl_ord_id: str
    side: Side
    symbol: str
    order_id: str | None = None
    version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg of a multi-leg order or RFQ; ``ratio`` is LegRatioQty(623)."""

    instrument: Instrument
    side: Side
    ratio: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class NewMultilegOrder:
    """NewOrderMultileg (AB): a package order; price is the package (net) price."""

    cl_ord_id: str
    side: Side
    quantity: Decimal
    ord_type: OrdType
    legs: tuple[Leg, ...]
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    account: str | None = None
    transact_time: datetime = field(default_factory=utcnow)
    version: int = SCHEMA_VERSION


InboundOrderMessage = NewOrder | CancelRequest | ReplaceRequest | StatusRequest | NewMultilegOrder


# --- outbound (core -> client) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """ExecutionReport (8) with FIX 4.4 OrdStatus/ExecType semantics."""

    order_id: str
    exec_id: str
    cl_ord_id: str
    exec_type: ExecType
    ord_status: OrdStatus
    symbol: str
    side: Side
    order_qty: Decimal
    leaves_qty: Decimal
    cum_qty: Decimal
    avg_px: Decimal
    orig_cl_ord_id: str | None = None
    ord_type: OrdType | None = None
    price: Decimal | None = None
    last_qty: Decimal | None = None
    last_px: Decimal | None = None
    ord_rej_reason: OrdRejReason | None = None
    text: str | None = None
    transact_time: datetime = field(default_factory=utcnow)
    time_in_force: TimeInForce | None = None
    version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class CancelReject:
    """OrderCancelReject (9)."""

    order_id: str
    cl_ord_id: str
    orig_cl_ord_id: str
    ord_status: OrdStatus
    response_to: CxlRejResponseTo
    reason: CxlRejReason
    text: str | None = None
    version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class BusinessReject:
    """BusinessMessageReject (j) for a message the core understood but cannot act on."""

    ref_msg_type: str
    reason: BusinessRejectReason
    text: str
    ref_seq_num: int | None = None
    business_reject_ref_id: str | None = None
    version: int = SCHEMA_VERSION


OutboundMessage = ExecutionReport | CancelReject | BusinessReject
