"""Value types shared by the clearing formats, the outbox, the senders and reconciliation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

from fixspec.instruments import Instrument
from otc.trades import FxOptionTerms, IrsTerms, TradeCapture

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


class ClearingFormatError(ValueError):
    """A trade that cannot be expressed in a clearing format, or a message we cannot read."""


class ClearingFormat(StrEnum):
    """Wire format of a clearing submission; the value is part of the idempotency key."""

    FIXML_TRADE_CAPTURE = "fixml-5.0sp2/TrdCaptRpt"
    FPML_REQUEST_CLEARING = "fpml-5.10/requestClearing"


def format_for(trade: TradeCapture) -> ClearingFormat:
    """Listed-style instruments go as FIXML trade reports, OTC terms as FpML requestClearing."""
    products = {type(leg.product) for leg in trade.legs}
    if not trade.legs:
        raise ClearingFormatError(f"trade {trade.trade_id}: no legs")
    if products == {Instrument}:
        return ClearingFormat.FIXML_TRADE_CAPTURE
    if len(trade.legs) == 1 and products <= {IrsTerms, FxOptionTerms}:
        return ClearingFormat.FPML_REQUEST_CLEARING
    names = ", ".join(sorted(p.__name__ for p in products))
    raise ClearingFormatError(
        f"trade {trade.trade_id}: cannot clear {len(trade.legs)} leg(s) of {names} together"
    )


def idempotency_key(trade_id: str, fmt: ClearingFormat, version: int = 1) -> str:
    """Same trade, format and trade version -> same key, across restarts and hosts.

    The key is what the clearinghouse de-duplicates on, and doubles as our message id
    (RptID / messageId), so acks map straight back to the outbox row.
    """
    if version < 1:
        raise ValueError(f"trade version must be >= 1, got {version}")
    digest = hashlib.sha256(f"{trade_id}\x1f{fmt.value}\x1f{version}".encode()).hexdigest()
    return f"cb-{digest[:40]}"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One rendered clearing message, ready for any sender."""

    key: str
    trade_id: str
    fmt: ClearingFormat
    body: bytes

    content_type = "application/xml"

    @property
    def filename(self) -> str:
        return f"{self.key}.xml"


class AckOutcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ClearedTrade:
    """One trade the clearinghouse created (an FpML clearing leg, or a FIXML ack's TrdID)."""

    clearing_trade_id: str
    counterparty: str | None = None
    uti: str | None = None


@dataclass(frozen=True, slots=True)
class ClearingAck:
    """A clearinghouse's answer to one submission, whichever format it came in.

    ``reference`` is the id of our message it answers (FIXML RptID, FpML inReplyTo).
    """

    outcome: AckOutcome
    reference: str | None
    message_id: str | None = None
    correlation_id: str | None = None
    submitted_trade_id: str | None = None
    cleared: tuple[ClearedTrade, ...] = ()
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is AckOutcome.ACCEPTED


@dataclass(frozen=True, slots=True)
class Economics:
    """What reconciliation compares: the clearing-relevant figures of one trade.

    Listed trades: package quantity and price. IRS: notional and fixed rate, buyer = fixed
    payer. FX options: put-currency notional and strike. ``instrument`` is a canonical key.
    """

    trade_id: str
    instrument: str
    buyer: str
    seller: str
    quantity: Decimal
    price: Decimal
    currency: str


def instrument_key(product: Instrument | IrsTerms | FxOptionTerms) -> str:
    """Canonical instrument text for registers and breaks."""
    if isinstance(product, Instrument):
        return product.symbol
    if isinstance(product, IrsTerms):
        return (
            f"IRS:{product.currency}:{product.floating_index}:"
            f"{product.effective_date:%Y%m%d}:{product.termination_date:%Y%m%d}"
        )
    return (
        f"FXO:{product.put_currency}/{product.call_currency}:{product.expiry_date:%Y%m%d}:"
        f"{product.style.value}"
    )


def trade_economics(trade: TradeCapture) -> Economics:
    """Our side of reconciliation, derived from the captured trade."""
    first = trade.legs[0].product
    if isinstance(first, IrsTerms):
        principals = {trade.client.party_id: trade.desk, trade.desk.party_id: trade.client}
        receiver = principals.get(first.payer_of_fixed)
        if receiver is None:
            raise ClearingFormatError(
                f"trade {trade.trade_id}: fixed payer {first.payer_of_fixed!r} is neither "
                "the client nor the desk"
            )
        return Economics(
            trade.trade_id,
            instrument_key(first),
            first.payer_of_fixed,
            receiver.party_id,
            first.notional,
            first.fixed_rate,
            first.currency,
        )
    if isinstance(first, FxOptionTerms):
        return Economics(
            trade.trade_id,
            instrument_key(first),
            first.buyer,
            first.seller,
            first.put_amount,
            first.strike,
            first.premium_currency,
        )
    symbols = "|".join(instrument_key(leg.product) for leg in trade.legs)
    return Economics(
        trade.trade_id,
        symbols,
        trade.buyer.party_id,
        trade.seller.party_id,
        trade.quantity,
        trade.price,
        trade.currency,
    )


def fmt_decimal(value: Decimal) -> str:
    """Plain decimal notation (never exponent), as XSD ``xs:decimal`` requires."""
    if not isinstance(value, Decimal):
        raise ClearingFormatError(f"expected Decimal, got {type(value).__name__}: {value!r}")
    if not value.is_finite():
        raise ClearingFormatError(f"not a finite decimal: {value}")
    return format(value, "f")


def fmt_timestamp(value: datetime) -> str:
    """UTC with microseconds and a ``Z``: ``2026-03-02T14:30:05.123456Z``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ClearingFormatError(f"naive datetime {value!r}: clearing times must be UTC-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fmt_date(value: date) -> str:
    return value.isoformat()


def parse_decimal(text: str | None, what: str) -> Decimal:
    if text is None or not text.strip():
        raise ClearingFormatError(f"missing {what}")
    try:
        value = Decimal(text.strip())
    except ArithmeticError as exc:
        raise ClearingFormatError(f"{what}: not a decimal: {text!r}") from exc
    if not value.is_finite():
        raise ClearingFormatError(f"{what}: not a finite decimal: {text!r}")
    return value


def parse_date(text: str | None, what: str) -> date:
    if text is None:
        raise ClearingFormatError(f"missing {what}")
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError as exc:
        raise ClearingFormatError(f"{what}: not a date: {text!r}") from exc
