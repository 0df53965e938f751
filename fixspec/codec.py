"""Pure FIX <-> normalised translation.

A FIX message crosses this boundary as a :class:`RawMessage`: the MsgType and the fields in wire
order (groups flattened on the way in, nested on the way out). No QuickFIX type appears here, so
translation is testable without an engine and the engine adapter stays thin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Literal, TypeVar, overload

from fixspec import messages as m
from fixspec.instruments import Instrument, InstrumentError, parse_symbol

# A field on the way out is (tag, value) or (count_tag, [entry, ...]) for a repeating group.
OutField = tuple[int, "str | list[list[OutField]]"]

SOH = "\x01"
# FIX Float: optional sign, digits, optional decimal point; no exponent, no blanks.
_FIX_FLOAT = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
# fmt_decimal works in the default 28-digit context; longer numbers cannot be echoed exactly.
MAX_DIGITS = 28
LEG_TAGS = frozenset({600, 602, 603, 608, 609, 610, 611, 612, 616, 623, 624, 654, 566, 687, 690})


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A FIX message as tag/value pairs; ``fields`` excludes nothing and keeps wire order."""

    msg_type: str
    fields: tuple[tuple[int, str], ...]

    def get(self, tag: int) -> str | None:
        for t, v in self.fields:
            if t == tag:
                return v
        return None

    @classmethod
    def parse(cls, wire: str) -> RawMessage:
        """Split a complete FIX string (as QuickFIX's ``toString`` prints it)."""
        pairs = []
        for item in wire.split(SOH):
            if item:
                tag, _, value = item.partition("=")
                pairs.append((int(tag), value))
        msg_type = next((v for t, v in pairs if t == 35), "")
        return cls(msg_type, tuple(pairs))


class DecodeError(ValueError):
    """A message the session layer accepted but the application cannot normalise."""

    def __init__(self, text: str, *, tag: int | None = None, unknown_symbol: bool = False):
        super().__init__(text)
        self.text = text
        self.tag = tag
        self.unknown_symbol = unknown_symbol


# --- value conversions ------------------------------------------------------------------


def fmt_time(t: datetime) -> str:
    """UTCTimestamp with microseconds."""
    return t.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S.%f")


# The UTCTimestamp forms clients send; anything else takes the slower strptime route.
_UTC_TIMESTAMP = re.compile(r"(\d{4})(\d\d)(\d\d)-(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?", re.ASCII)


def parse_time(text: str) -> datetime:
    if match := _UTC_TIMESTAMP.fullmatch(text):  # once per order: strptime costs ~8 µs
        year, month, day, hour, minute, second, fraction = match.groups()
        try:
            return datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                int(fraction.ljust(6, "0")) if fraction else 0,
                tzinfo=UTC,
            )
        except ValueError:
            pass  # out-of-range parts: let strptime say what is wrong
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise DecodeError(f"bad UTCTimestamp {text!r}")


def fmt_decimal(d: Decimal) -> str:
    """Plain notation, no exponent, no trailing zeros beyond what the value needs."""
    return format(m.plain(d), "f")


@overload
def decode_decimal(
    raw: RawMessage, tag: int, *, required: Literal[True] = True, positive: bool = False
) -> Decimal: ...


@overload
def decode_decimal(
    raw: RawMessage, tag: int, *, required: bool, positive: bool = False
) -> Decimal | None: ...


def decode_decimal(
    raw: RawMessage, tag: int, *, required: bool = True, positive: bool = False
) -> Decimal | None:
    """The FIX Float in ``tag`` as a Decimal (None when absent and not ``required``).

    Refuses, as a :class:`DecodeError` naming the tag, what a FIX Float may not be: an exponent,
    blanks, infinity or NaN, more digits than :func:`fmt_decimal` can echo exactly, and with
    ``positive`` zero or less."""
    text = raw.get(tag)
    if text is None:
        if required:
            raise DecodeError(f"required tag {tag} missing", tag=tag)
        return None
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise DecodeError(f"tag {tag} is not a number: {text!r}", tag=tag) from exc
    if not value.is_finite():
        raise DecodeError(f"tag {tag} must be finite", tag=tag)
    if not _FIX_FLOAT.fullmatch(text):
        raise DecodeError(f"tag {tag} is not a FIX number: {text!r}", tag=tag)
    if len(value.as_tuple().digits) > MAX_DIGITS:
        raise DecodeError(f"tag {tag} has more than {MAX_DIGITS} digits", tag=tag)
    if positive and value <= 0:
        raise DecodeError(f"tag {tag} must be positive", tag=tag)
    return value


def _required(raw: RawMessage, tag: int) -> str:
    """The value of ``tag``, which the message must carry: without it, a DecodeError."""
    value = raw.get(tag)
    if value is None:
        raise DecodeError(f"required tag {tag} missing", tag=tag)
    return value


_E = TypeVar("_E", bound=StrEnum)


def _enum(enum_cls: type[_E], raw: RawMessage, tag: int, *, default: _E | None = None) -> _E:
    """The member of ``enum_cls`` that ``tag`` names; ``default`` when the tag is absent, which
    without a default is a DecodeError. A value that names no member is one too."""
    text = raw.get(tag)
    if text is None:
        if default is None:
            raise DecodeError(f"required tag {tag} missing", tag=tag)
        return default
    try:
        return enum_cls(text)
    except ValueError as exc:
        raise DecodeError(f"unsupported value {text!r} for tag {tag}", tag=tag) from exc


def decode_instrument(symbol: str | None, tag: int = 55) -> Instrument:
    """The instrument ``symbol`` names, read from ``tag`` (55 Symbol, 600 LegSymbol). A missing
    symbol is a :class:`DecodeError` naming the tag; an unknown one is too, marked
    ``unknown_symbol`` so the reject says UnknownSymbol."""
    if symbol is None:
        raise DecodeError(f"required tag {tag} missing", tag=tag)
    try:
        return parse_symbol(symbol)
    except InstrumentError as exc:
        raise DecodeError(str(exc), tag=tag, unknown_symbol=True) from exc


def _time(raw: RawMessage, tag: int = 60) -> datetime:
    text = raw.get(tag)
    return parse_time(text) if text is not None else m.utcnow()


def _priced(ord_type: m.OrdType, raw: RawMessage) -> Decimal | None:
    price = decode_decimal(raw, 44, required=ord_type is m.OrdType.LIMIT, positive=True)
    if ord_type is m.OrdType.MARKET and price is not None:
        raise DecodeError("market order must not carry Price(44)", tag=44)
    return price


def groups(raw: RawMessage, count_tag: int, member_tags: frozenset[int]) -> list[RawMessage]:
    """Entries of a repeating group, each as a RawMessage of its own fields."""
    fields = raw.fields
    for i, (tag, value) in enumerate(fields):
        if tag != count_tag:
            continue
        try:
            count = int(value)
        except ValueError as exc:
            raise DecodeError(f"bad group count {value!r}", tag=count_tag) from exc
        entries: list[list[tuple[int, str]]] = []
        delimiter = None
        for t, v in fields[i + 1 :]:
            if t not in member_tags:
                break
            if delimiter is None:
                delimiter = t
            if t == delimiter:
                entries.append([])
            entries[-1].append((t, v))
        if len(entries) != count:
            raise DecodeError(f"group {count_tag} says {count} entries, found {len(entries)}")
        return [RawMessage(raw.msg_type, tuple(e)) for e in entries]
    return []


# --- inbound ---------------------------------------------------------------------------


def _new_order(raw: RawMessage) -> m.NewOrder:
    ord_type = _enum(m.OrdType, raw, 40)
    return m.NewOrder(
        cl_ord_id=_required(raw, 11),
        instrument=decode_instrument(raw.get(55)),
        side=_enum(m.Side, raw, 54),
        quantity=decode_decimal(raw, 38, positive=True),
        ord_type=ord_type,
        price=_priced(ord_type, raw),
        time_in_force=_enum(m.TimeInForce, raw, 59, default=m.TimeInForce.DAY),
        account=raw.get(1),
        quote_id=raw.get(117),
        transact_time=_time(raw),
    )


def _cancel(raw: RawMessage) -> m.CancelRequest:
    return m.CancelRequest(
        cl_ord_id=_required(raw, 11),
        orig_cl_ord_id=_required(raw, 41),
        side=_enum(m.Side, raw, 54),
        symbol=_required(raw, 55),
        quantity=decode_decimal(raw, 38, required=False),
        order_id=raw.get(37),
        transact_time=_time(raw),
    )


def _replace(raw: RawMessage) -> m.ReplaceRequest:
    ord_type = _enum(m.OrdType, raw, 40)
    return m.ReplaceRequest(
        cl_ord_id=_required(raw, 11),
        orig_cl_ord_id=_required(raw, 41),
        instrument=decode_instrument(raw.get(55)),
        side=_enum(m.Side, raw, 54),
        quantity=decode_decimal(raw, 38, positive=True),
        ord_type=ord_type,
        price=_priced(ord_type, raw),
        time_in_force=_enum(m.TimeInForce, raw, 59, default=m.TimeInForce.DAY),
        order_id=raw.get(37),
        transact_time=_time(raw),
    )


def _status(raw: RawMessage) -> m.StatusRequest:
    return m.StatusRequest(
        cl_ord_id=_required(raw, 11),
        side=_enum(m.Side, raw, 54),
        symbol=_required(raw, 55),
        order_id=raw.get(37),
    )


def _multileg(raw: RawMessage) -> m.NewMultilegOrder:
    ord_type = _enum(m.OrdType, raw, 40)
    legs = []
    for entry in groups(raw, 555, LEG_TAGS):
        legs.append(
            m.Leg(
                instrument=decode_instrument(entry.get(600), tag=600),
                side=_enum(m.Side, entry, 624),
                ratio=decode_decimal(entry, 623, required=False, positive=True) or Decimal(1),
            )
        )
    if len(legs) < 2:
        raise DecodeError("a multileg order needs at least two legs in NoLegs(555)", tag=555)
    # A package price may be <= 0.
    price = decode_decimal(raw, 44, required=ord_type is m.OrdType.LIMIT)
    if ord_type is m.OrdType.MARKET and price is not None:
        raise DecodeError("market order must not carry Price(44)", tag=44)
    return m.NewMultilegOrder(
        cl_ord_id=_required(raw, 11),
        side=_enum(m.Side, raw, 54),
        quantity=decode_decimal(raw, 38, positive=True),
        ord_type=ord_type,
        legs=tuple(legs),
        price=price,
        time_in_force=_enum(m.TimeInForce, raw, 59, default=m.TimeInForce.DAY),
        account=raw.get(1),
        transact_time=_time(raw),
    )


DECODERS: dict[str, Callable[[RawMessage], m.InboundOrderMessage]] = {
    "D": _new_order,
    "F": _cancel,
    "G": _replace,
    "H": _status,
    "AB": _multileg,
}


def decode(raw: RawMessage) -> m.InboundOrderMessage:
    """FIX -> normalised. Raises :class:`DecodeError` for content the application cannot accept,
    and ``KeyError`` for a MsgType the order path does not handle."""
    return DECODERS[raw.msg_type](raw)


def reject_for(raw: RawMessage, error: DecodeError) -> m.OutboundMessage:
    """The answer a client gets for a message that failed to decode: an order gets a rejected
    ExecutionReport, a cancel or replace a CancelReject, anything else a BusinessMessageReject."""
    cl_ord_id = raw.get(11)
    if raw.msg_type in ("D", "AB") and cl_ord_id:
        side = raw.get(54)
        try:
            order_qty = decode_decimal(raw, 38, required=False) or Decimal(0)
        except DecodeError:
            order_qty = Decimal(0)
        return m.ExecutionReport(
            order_id="NONE",
            exec_id=f"REJ-{cl_ord_id}",
            cl_ord_id=cl_ord_id,
            exec_type=m.ExecType.REJECTED,
            ord_status=m.OrdStatus.REJECTED,
            symbol=raw.get(55) or "[N/A]",  # ER requires a Symbol; FIX's placeholder
            side=m.Side(side) if side in ("1", "2") else m.Side.BUY,
            order_qty=order_qty,
            leaves_qty=Decimal(0),
            cum_qty=Decimal(0),
            avg_px=Decimal(0),
            ord_rej_reason=(
                m.OrdRejReason.UNKNOWN_SYMBOL if error.unknown_symbol else m.OrdRejReason.OTHER
            ),
            text=error.text,
        )
    if raw.msg_type in ("F", "G") and cl_ord_id:
        return m.CancelReject(
            order_id=raw.get(37) or "NONE",
            cl_ord_id=cl_ord_id,
            orig_cl_ord_id=raw.get(41) or "NONE",
            ord_status=m.OrdStatus.REJECTED,
            response_to=(
                m.CxlRejResponseTo.CANCEL if raw.msg_type == "F" else m.CxlRejResponseTo.REPLACE
            ),
            reason=m.CxlRejReason.OTHER,
            text=error.text,
        )
    seq = raw.get(34)
    return m.BusinessReject(
        ref_msg_type=raw.msg_type,
        reason=(
            m.BusinessRejectReason.UNKNOWN_SECURITY
            if error.unknown_symbol
            else m.BusinessRejectReason.OTHER
        ),
        text=error.text,
        ref_seq_num=int(seq) if seq and seq.isdigit() else None,
        business_reject_ref_id=cl_ord_id,
    )


# --- outbound --------------------------------------------------------------------------


def add_field(out: list[OutField], tag: int, value: object) -> None:
    """Append ``tag`` with ``value`` in its FIX form (Decimal, UTCTimestamp, LocalMktDate or
    text); append nothing when there is no value, since FIX has no empty fields."""
    if value is None or value == "":  # FIX has no empty values: an empty text is no text
        return
    if isinstance(value, Decimal):
        out.append((tag, fmt_decimal(value)))
    elif isinstance(value, datetime):
        out.append((tag, fmt_time(value)))
    elif isinstance(value, date):  # LocalMktDate
        out.append((tag, f"{value:%Y%m%d}"))
    else:
        out.append((tag, str(value)))


def _execution_report(er: m.ExecutionReport) -> list[OutField]:
    out: list[OutField] = []
    add_field(out, 37, er.order_id)
    add_field(out, 11, er.cl_ord_id)
    add_field(out, 41, er.orig_cl_ord_id)
    add_field(out, 17, er.exec_id)
    add_field(out, 150, er.exec_type.value)
    add_field(out, 39, er.ord_status.value)
    add_field(out, 103, er.ord_rej_reason.value if er.ord_rej_reason else None)
    add_field(out, 55, er.symbol)
    add_field(out, 54, er.side.value)
    add_field(out, 38, er.order_qty)
    add_field(out, 40, er.ord_type.value if er.ord_type else None)
    add_field(out, 44, er.price)
    add_field(out, 59, er.time_in_force.value if er.time_in_force else None)
    add_field(out, 32, er.last_qty)
    add_field(out, 31, er.last_px)
    add_field(out, 151, er.leaves_qty)
    add_field(out, 14, er.cum_qty)
    add_field(out, 6, er.avg_px)
    add_field(out, 60, er.transact_time)
    add_field(out, 58, er.text)
    return out


def _cancel_reject(cr: m.CancelReject) -> list[OutField]:
    out: list[OutField] = []
    add_field(out, 37, cr.order_id)
    add_field(out, 11, cr.cl_ord_id)
    add_field(out, 41, cr.orig_cl_ord_id)
    add_field(out, 39, cr.ord_status.value)
    add_field(out, 434, cr.response_to.value)
    add_field(out, 102, cr.reason.value)
    add_field(out, 58, cr.text)
    return out


def _business_reject(br: m.BusinessReject) -> list[OutField]:
    out: list[OutField] = []
    add_field(out, 45, br.ref_seq_num)
    add_field(out, 372, br.ref_msg_type)
    add_field(out, 379, br.business_reject_ref_id)
    add_field(out, 380, br.reason.value)
    add_field(out, 58, br.text)
    return out


def encode(msg: m.OutboundMessage) -> tuple[str, list[OutField]]:
    """Normalised -> (MsgType, body fields in dictionary order); ``KeyError`` for another type."""
    # By exact type, as a lookup table would be, but each branch typed: a table of encoders
    # for different message types has no element type a checker could call.
    if type(msg) is m.ExecutionReport:
        return "8", _execution_report(msg)
    if type(msg) is m.CancelReject:
        return "9", _cancel_reject(msg)
    if type(msg) is m.BusinessReject:
        return "j", _business_reject(msg)
    raise KeyError(type(msg))


def flatten(fields: Iterable[OutField]) -> Iterator[tuple[int, str]]:
    """Nested out-fields as they appear on the wire."""
    for tag, value in fields:
        if isinstance(value, str):
            yield tag, value
        else:
            yield tag, str(len(value))
            for entry in value:
                yield from flatten(entry)


def to_raw(msg: m.OutboundMessage) -> RawMessage:
    msg_type, fields = encode(msg)
    return RawMessage(msg_type, ((35, msg_type), *flatten(fields)))


def decode_outbound(raw: RawMessage) -> m.OutboundMessage:
    """FIX -> normalised for the messages we send; used by clients, tests and round trips.

    A field the normalised message cannot be without is a :class:`DecodeError` when missing;
    a value that is not one of the enumeration's is a ``ValueError``. A BusinessMessageReject
    without Text(58) (FIX has it optional) has the empty text, which is what we send as none."""
    if raw.msg_type == "8":
        rej = raw.get(103)
        ord_type = raw.get(40)
        tif = raw.get(59)
        return m.ExecutionReport(
            order_id=_required(raw, 37),
            exec_id=_required(raw, 17),
            cl_ord_id=_required(raw, 11),
            orig_cl_ord_id=raw.get(41),
            exec_type=m.ExecType(_required(raw, 150)),
            ord_status=m.OrdStatus(_required(raw, 39)),
            ord_rej_reason=m.OrdRejReason(rej) if rej else None,
            symbol=_required(raw, 55),
            side=m.Side(_required(raw, 54)),
            order_qty=decode_decimal(raw, 38),
            ord_type=m.OrdType(ord_type) if ord_type else None,
            price=decode_decimal(raw, 44, required=False),
            last_qty=decode_decimal(raw, 32, required=False),
            last_px=decode_decimal(raw, 31, required=False),
            leaves_qty=decode_decimal(raw, 151),
            cum_qty=decode_decimal(raw, 14),
            avg_px=decode_decimal(raw, 6),
            transact_time=parse_time(_required(raw, 60)),
            text=raw.get(58),
            time_in_force=m.TimeInForce(tif) if tif else None,
        )
    if raw.msg_type == "9":
        return m.CancelReject(
            order_id=_required(raw, 37),
            cl_ord_id=_required(raw, 11),
            orig_cl_ord_id=_required(raw, 41),
            ord_status=m.OrdStatus(_required(raw, 39)),
            response_to=m.CxlRejResponseTo(_required(raw, 434)),
            reason=m.CxlRejReason(_required(raw, 102)),
            text=raw.get(58),
        )
    if raw.msg_type == "j":
        seq = raw.get(45)
        return m.BusinessReject(
            ref_seq_num=int(seq) if seq else None,
            ref_msg_type=_required(raw, 372),
            business_reject_ref_id=raw.get(379),
            reason=m.BusinessRejectReason(_required(raw, 380)),
            text=raw.get(58) or "",  # add_field sends an empty text as no Text(58)
        )
    raise KeyError(raw.msg_type)


def encode_inbound(msg: m.InboundOrderMessage) -> RawMessage:
    """Normalised -> FIX for client-side messages; used by test clients and round-trip tests."""
    out: list[OutField] = []
    if isinstance(msg, m.NewOrder):
        msg_type = "D"
        add_field(out, 1, msg.account)
        add_field(out, 11, msg.cl_ord_id)
        add_field(out, 55, msg.instrument.symbol)
        add_field(out, 54, msg.side.value)
        add_field(out, 60, msg.transact_time)
        add_field(out, 38, msg.quantity)
        add_field(out, 40, msg.ord_type.value)
        add_field(out, 44, msg.price)
        add_field(out, 59, msg.time_in_force.value)
        add_field(out, 117, msg.quote_id)
    elif isinstance(msg, m.CancelRequest):
        msg_type = "F"
        add_field(out, 37, msg.order_id)
        add_field(out, 41, msg.orig_cl_ord_id)
        add_field(out, 11, msg.cl_ord_id)
        add_field(out, 55, msg.symbol)
        add_field(out, 54, msg.side.value)
        add_field(out, 60, msg.transact_time)
        add_field(out, 38, msg.quantity)
    elif isinstance(msg, m.ReplaceRequest):
        msg_type = "G"
        add_field(out, 37, msg.order_id)
        add_field(out, 41, msg.orig_cl_ord_id)
        add_field(out, 11, msg.cl_ord_id)
        add_field(out, 55, msg.instrument.symbol)
        add_field(out, 54, msg.side.value)
        add_field(out, 60, msg.transact_time)
        add_field(out, 38, msg.quantity)
        add_field(out, 40, msg.ord_type.value)
        add_field(out, 44, msg.price)
        add_field(out, 59, msg.time_in_force.value)
    elif isinstance(msg, m.StatusRequest):
        msg_type = "H"
        add_field(out, 37, msg.order_id)
        add_field(out, 11, msg.cl_ord_id)
        add_field(out, 55, msg.symbol)
        add_field(out, 54, msg.side.value)
    elif isinstance(msg, m.NewMultilegOrder):
        msg_type = "AB"
        add_field(out, 1, msg.account)
        add_field(out, 11, msg.cl_ord_id)
        add_field(out, 54, msg.side.value)
        legs: list[list[OutField]] = []
        for leg in msg.legs:
            entry: list[OutField] = []
            add_field(entry, 600, leg.instrument.symbol)
            add_field(entry, 623, leg.ratio)
            add_field(entry, 624, leg.side.value)
            legs.append(entry)
        out.append((555, legs))
        add_field(out, 60, msg.transact_time)
        add_field(out, 38, msg.quantity)
        add_field(out, 40, msg.ord_type.value)
        add_field(out, 44, msg.price)
        add_field(out, 59, msg.time_in_force.value)
    else:  # pragma: no cover - exhaustive over the union
        raise TypeError(type(msg))
    return RawMessage(msg_type, ((35, msg_type), *flatten(out)))


def wire_body(fields: Sequence[tuple[int, str]]) -> str:
    return "".join(f"{t}={v}{SOH}" for t, v in fields)
