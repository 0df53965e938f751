"""Pure FIX 4.4 <-> negotiation translation for RFQs.

Inbound, a client's QuoteRequest (R), QuoteResponse (AJ), NewOrderSingle with OrdType D (a quote
accepted as a fill-or-kill order) and QuoteCancel (Z) become negotiation commands; outbound, the
negotiation events a client may see become Quote (S), QuoteRequestReject (AG), QuoteStatusReport
(AI), ExecutionReport (8) and TradeCaptureReport (AE) bodies. Like :mod:`fixspec.codec`, the
module works on :class:`~fixspec.codec.RawMessage` and ``OutField`` lists; QuickFIX never appears.

Conventions, so both directions agree:

* One instrument travels as Symbol(55). A strategy travels as Symbol ``[N/A]`` with NoLegs(555),
  each leg's LegSide(624) being the client's side when it *buys* the package. In a strategy of
  options, a future or perpetual leg is the delta hedge (priced on its own, outside the package).
* Instrument and leg detail fields (maturity, strike, CFI code, security type) are optional, but
  when present they must agree with the symbol: a contradiction is a DecodeError naming the tag.
* Some events lack what FIX must echo (a Quote's QuoteReqID, the Side and ClOrdID of the order an
  ExecutionReport answers). The edge passes the RFQ (``rfq``) and the client message the event
  answers (``answering``); without them every message still goes out in a valid, honest form.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from fixspec import messages as m
from fixspec.codec import (
    DecodeError,
    OutField,
    RawMessage,
    add_field,
    decode_decimal,
    decode_instrument,
    encode,
    flatten,
    fmt_decimal,
    fmt_time,
    groups,
    parse_time,
)
from fixspec.instruments import Instrument, InstrumentKind, PutCall, parse_symbol
from fixspec.messages import Side
from fixspec.rfq_codes import (
    QuoteRequestRejectReason,
    QuoteRespType,
    QuoteStatus,
    QuoteType,
)
from otc.negotiation import events as ev
from otc.negotiation.commands import (
    AcceptQuote,
    CancelRfq,
    ClientCommand,
    ClientPass,
    CounterQuote,
    LegRequest,
    SubmitRfq,
)
from otc.negotiation.errors import RejectReason
from otc.negotiation.model import HEDGE_KINDS, AcceptVia, LegQuote, Rfq, RfqLeg
from otc.negotiation.states import RfqState
from otc.trades import Party, PartyRole, TradeCapture, TradeLeg

Outgoing = tuple[str, list[OutField]]
"""(MsgType, body fields in dictionary order), as ``fixspec.codec.encode`` returns."""

MULTILEG_SYMBOL = "[N/A]"  # FIX's Symbol for a strategy whose legs are in NoLegs(555)
NO_ID = "NONE"  # FIX's value for a required id that does not exist (no order, no quote)
PARTY_ID_SOURCE = "D"  # PartyIDSource(447): proprietary (our CompIDs and desk ids)
QUOTE_HASH, QUOTE_SIGNATURE, QUOTE_SIGNER_KEY_ID = 5002, 5001, 5003  # fixspec.dictionary
CANCEL_ALL_QUOTES = "4"  # QuoteCancelType(298)
_LAST_LOOK = frozenset({RejectReason.LAST_LOOK_REJECTED, RejectReason.LAST_LOOK_TIMEOUT})

# Every tag a NoLegs(555) entry may hold in R, AG, S, AJ, AI, 8, AE (InstrumentLeg, LegQty,
# leg prices, leg stipulations, nested parties, leg benchmark curve), from QuickFIX's FIX44.xml.
LEG_MEMBER_TAGS = frozenset(
    {248, 249, 250, 251, 252, 253, 254, 257, 524, 525, 538, 539, 545, 556, 564, 565, 566, 587,
     588, 596, 597, 598, 599, 600, 601, 602, 603, 604, 605, 606, 607, 608, 609, 610, 611, 612,
     613, 614, 615, 616, 617, 618, 619, 620, 621, 622, 623, 624, 637, 654, 670, 671, 672, 673,
     674, 675, 676, 677, 678, 679, 680, 681, 683, 684, 686, 687, 688, 689, 690, 739, 740, 756,
     757, 758, 759, 760, 764, 804, 805, 806, 807, 942, 955, 956}
)  # fmt: skip


class _AllBut:
    """Membership of a group that runs to the next message-level field. QuickFIX has checked the
    message against the dictionary before it reaches us, so nothing else can follow the group;
    listing NoRelatedSym's 229 possible members instead would add nothing but length."""

    def __init__(self, message_level: Iterable[int]) -> None:
        self._message_level = frozenset(message_level)

    def __contains__(self, tag: object) -> bool:
        return tag not in self._message_level


# Message-level fields of R and AG (everything else in them sits inside NoRelatedSym) + trailer.
RELATED_SYM_MEMBERS = _AllBut({11, 58, 131, 146, 354, 355, 528, 644, 658, 10, 89, 93})

_NAMES = {
    167: "SecurityType", 200: "MaturityMonthYear", 201: "PutOrCall", 202: "StrikePrice",
    461: "CFICode", 541: "MaturityDate", 608: "LegCFICode", 609: "LegSecurityType",
    610: "LegMaturityMonthYear", 611: "LegMaturityDate", 612: "LegStrikePrice",
}  # fmt: skip


# --- lookups the edge provides ---------------------------------------------------------------


class RfqLookup(Protocol):
    """What FIX does not carry but a command needs: a QuoteResponse names a quote, not its RFQ,
    and a QuoteCancel names the client's QuoteReqID. Both return None for an id that is unknown
    or belongs to another client (so no client can probe another's ids)."""

    def rfq_of_quote(self, client_id: str, quote_id: str) -> str | None: ...

    def rfq_of_request(self, client_id: str, quote_req_id: str) -> str | None: ...


# --- inbound: field helpers ------------------------------------------------------------------


def _text(fields: RawMessage, tag: int, name: str) -> str:
    value = fields.get(tag)
    if not value:
        raise DecodeError(f"{name}({tag}) is required", tag=tag)
    return value


def _side(
    fields: RawMessage, tag: int = 54, name: str = "Side", *, required: bool = True
) -> Side | None:
    text = fields.get(tag)
    if text is None:
        if required:
            raise DecodeError(f"{name}({tag}) is required", tag=tag)
        return None
    try:
        return Side(text)
    except ValueError:
        raise DecodeError(
            f"{name}({tag}) must be 1 (buy) or 2 (sell), got {text!r}", tag=tag
        ) from None


def _local_date(text: str, tag: int) -> date:
    try:
        if not re.fullmatch(r"\d{8}", text):
            raise ValueError(text)
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise DecodeError(
            f"{_NAMES[tag]}({tag}) is not a YYYYMMDD date: {text!r}", tag=tag
        ) from None


def _timestamp(fields: RawMessage, tag: int, name: str) -> datetime | None:
    text = fields.get(tag)
    if text is None:
        return None
    try:
        return parse_time(text)
    except DecodeError:
        raise DecodeError(f"{name}({tag}) is not a UTCTimestamp: {text!r}", tag=tag) from None


@dataclass(frozen=True, slots=True)
class _DetailTags:
    security_type: int
    maturity_date: int
    month_year: int
    strike: int
    cfi: int
    put_or_call: int | None  # FIX 4.4 legs have no LegPutOrCall; their CFI code says it


INSTRUMENT_DETAILS = _DetailTags(167, 541, 200, 202, 461, 201)
LEG_DETAILS = _DetailTags(609, 611, 610, 612, 608, None)


def _check_details(inst: Instrument, fields: RawMessage, tags: _DetailTags, where: str) -> None:
    """Optional detail fields must describe the instrument the symbol names."""

    def contradiction(tag: int, value: str, fact: str) -> DecodeError:
        return DecodeError(
            f"{_NAMES[tag]}({tag}) {value!r} contradicts {where} {inst.symbol} ({fact})", tag=tag
        )

    expiry = f"expiry {inst.expiry:%Y%m%d}" if inst.expiry else "no expiry"
    value = fields.get(tags.security_type)
    if value is not None and value != inst.security_type:
        raise contradiction(tags.security_type, value, f"security type {inst.security_type}")
    value = fields.get(tags.maturity_date)
    if value is not None and _local_date(value, tags.maturity_date) != inst.expiry:
        raise contradiction(tags.maturity_date, value, expiry)
    value = fields.get(tags.month_year)
    if value is not None:
        if not re.fullmatch(r"\d{6}(\d{2}|w[1-5])?", value):
            raise DecodeError(
                f"{_NAMES[tags.month_year]}({tags.month_year}) is not a MonthYear: {value!r}",
                tag=tags.month_year,
            )
        known = value[:8] if value[6:7].isdigit() else value[:6]  # a week code is not checked
        if inst.expiry is None or known != f"{inst.expiry:%Y%m%d}"[: len(known)]:
            raise contradiction(tags.month_year, value, expiry)
    strike = decode_decimal(fields, tags.strike, required=False)
    if strike is not None and strike != inst.strike:
        fact = f"strike {fmt_decimal(inst.strike)}" if inst.strike else "no strike"
        raise contradiction(tags.strike, fields.get(tags.strike) or "", fact)
    value = fields.get(tags.cfi)
    if value is not None:
        want = inst.cfi_code  # "X" in a CFI code means "not specified"
        wrong_category = len(value) < 2 or value[0] not in (want[0], "X")
        option = inst.kind is InstrumentKind.OPTION
        if wrong_category or (option and value[1] not in (want[1], "X")):
            kind = f"a {inst.put_call.name.lower()} option" if option else f"a {inst.kind.value}"
            raise contradiction(tags.cfi, value, f"{kind}, CFI {want}")
    if tags.put_or_call is not None and (value := fields.get(tags.put_or_call)) is not None:
        put_call = {"0": PutCall.PUT, "1": PutCall.CALL}.get(value)
        if put_call is None:
            raise DecodeError(f"PutOrCall(201) must be 0 or 1, got {value!r}", tag=201)
        if put_call is not inst.put_call:
            fact = f"a {inst.put_call.name.lower()}" if inst.put_call else "not an option"
            raise contradiction(201, value, fact)


def hedge_flags(instruments: list[Instrument]) -> list[bool]:
    """In a strategy of options, the futures and perpetuals are delta hedges; elsewhere (a
    futures calendar, say) every leg is priced."""
    kinds = {inst.kind for inst in instruments}
    options_and_hedges = InstrumentKind.OPTION in kinds and kinds <= {
        InstrumentKind.OPTION,
        *HEDGE_KINDS,
    }
    return [options_and_hedges and inst.kind in HEDGE_KINDS for inst in instruments]


def _is_package(legs: Sequence[LegRequest | RfqLeg | LegQuote]) -> bool:
    """Whether legs travel in NoLegs(555): anything but one leg bought at ratio 1."""
    return len(legs) != 1 or legs[0].ratio != 1 or legs[0].side is not Side.BUY


# --- inbound: messages -----------------------------------------------------------------------


def _strategy(entry: RawMessage, leg_entries: list[RawMessage]) -> tuple[LegRequest, ...]:
    symbol = entry.get(55)
    if symbol not in (None, MULTILEG_SYMBOL):
        raise DecodeError(
            f"Symbol(55) must be {MULTILEG_SYMBOL} with legs in NoLegs(555), got {symbol!r}",
            tag=55,
        )
    if (sec_type := entry.get(167)) not in (None, "MLEG"):
        raise DecodeError(
            f"SecurityType(167) of a strategy must be MLEG, got {sec_type!r}", tag=167
        )
    parsed: list[tuple[Instrument, Side, Decimal]] = []
    for n, leg in enumerate(leg_entries, start=1):
        inst = decode_instrument(leg.get(600), tag=600)
        _check_details(inst, leg, LEG_DETAILS, f"leg {n}")
        side = _side(leg, 624, "LegSide")
        ratio = decode_decimal(leg, 623, required=False, positive=True) or Decimal(1)
        parsed.append((inst, side, ratio))
    hedges = hedge_flags([inst for inst, _, _ in parsed])
    return tuple(
        LegRequest(inst.symbol, side, ratio, hedge)
        for (inst, side, ratio), hedge in zip(parsed, hedges, strict=True)
    )


def _check_leg_quantities(
    leg_entries: list[RawMessage], legs: tuple[LegRequest, ...], quantity: Decimal
) -> None:
    """LegQty(687) is optional; when given it must be the package quantity times the ratio."""
    for n, (entry, leg) in enumerate(zip(leg_entries, legs, strict=True), start=1):
        leg_qty = decode_decimal(entry, 687, required=False, positive=True)
        if leg_qty is not None and leg_qty != quantity * leg.ratio:
            raise DecodeError(
                f"LegQty(687) {fmt_decimal(leg_qty)} on leg {n} is not OrderQty(38) x "
                f"LegRatioQty(623) = {fmt_decimal(quantity * leg.ratio)}",
                tag=687,
            )


def _quote_request(raw: RawMessage, client_id: str, rfqs: RfqLookup | None) -> SubmitRfq:
    quote_req_id = _text(raw, 131, "QuoteReqID")
    entries = groups(raw, 146, RELATED_SYM_MEMBERS)
    if len(entries) != 1:
        raise DecodeError(
            f"NoRelatedSym(146) must hold exactly one instrument or strategy, got {len(entries)}",
            tag=146,
        )
    entry = entries[0]
    leg_entries = groups(entry, 555, LEG_MEMBER_TAGS)
    if leg_entries:
        legs = _strategy(entry, leg_entries)
    elif entry.get(55) == MULTILEG_SYMBOL:
        raise DecodeError(f"Symbol(55) {MULTILEG_SYMBOL} needs the legs in NoLegs(555)", tag=55)
    else:
        inst = decode_instrument(entry.get(55))
        _check_details(inst, entry, INSTRUMENT_DETAILS, "Symbol")
        legs = (LegRequest(inst.symbol, Side.BUY),)
    quantity = decode_decimal(entry, 38, positive=True)
    if leg_entries:
        _check_leg_quantities(leg_entries, legs, quantity)
    quote_type_text = entry.get(537)
    try:
        quote_type = QuoteType(quote_type_text or QuoteType.TRADEABLE)
    except ValueError:
        raise DecodeError(
            f"QuoteType(537) must be 0 (indicative) or 1 (tradeable), got {quote_type_text!r}",
            tag=537,
        ) from None
    return SubmitRfq(
        client_id=client_id,
        quote_req_id=quote_req_id,
        legs=legs,
        quantity=quantity,
        side=_side(entry, required=False),
        quote_type=quote_type,
        # An option with its delta hedge is still one priced instrument.
        multileg=sum(not leg.hedge for leg in legs) > 1,
        expire_at=_timestamp(entry, 126, "ExpireTime"),
    )


def _lookup(rfqs: RfqLookup | None) -> RfqLookup:
    if rfqs is None:  # a wiring mistake, not the client's: let the edge log it
        raise TypeError("decode_client needs an RfqLookup for counters, passes and cancels")
    return rfqs


def _rfq_of_quote(rfqs: RfqLookup | None, client_id: str, quote_id: str) -> str:
    rfq_id = _lookup(rfqs).rfq_of_quote(client_id, quote_id)
    if rfq_id is None:
        raise DecodeError(f"QuoteID(117) {quote_id!r} names no quote of yours", tag=117)
    return rfq_id


def _counter_price(raw: RawMessage, side: Side) -> Decimal:
    """A buyer counters the offer, a seller the bid: Price(44) or that side's price."""
    own, other = (133, 132) if side is Side.BUY else (132, 133)
    own_name, other_name = ("OfferPx", "BidPx") if side is Side.BUY else ("BidPx", "OfferPx")
    if raw.get(other) is not None:
        raise DecodeError(
            f"{other_name}({other}) on a {side.name} counter; counter with Price(44) or "
            f"{own_name}({own})",
            tag=other,
        )
    price = decode_decimal(raw, 44, required=False)
    side_price = decode_decimal(raw, own, required=False)
    if price is not None and side_price is not None and price != side_price:
        raise DecodeError(f"Price(44) and {own_name}({own}) disagree", tag=own)
    if price is None and side_price is None:
        raise DecodeError(f"a counter needs Price(44) or {own_name}({own})", tag=44)
    return price if price is not None else side_price


def _quote_response(raw: RawMessage, client_id: str, rfqs: RfqLookup | None) -> ClientCommand:
    ref = _text(raw, 693, "QuoteRespID")
    type_text = _text(raw, 694, "QuoteRespType")
    try:
        resp_type = QuoteRespType(type_text)
    except ValueError:
        raise DecodeError(
            f"QuoteRespType(694) {type_text!r} is not a FIX 4.4 value", tag=694
        ) from None
    quote_id = _text(raw, 117, "QuoteID")
    if resp_type is QuoteRespType.HIT_LIFT:
        return AcceptQuote(
            client_id=client_id,
            quote_id=quote_id,
            client_ref=ref,
            via=AcceptVia.QUOTE_RESPONSE,
            side=_side(raw),
            quote_hash=_text(raw, QUOTE_HASH, "QuoteHash"),
            quantity=decode_decimal(raw, 38, required=False, positive=True),
            price=decode_decimal(raw, 44, required=False),
        )
    if resp_type is QuoteRespType.COUNTER:
        side = _side(raw)
        price = _counter_price(raw, side)
        quantity = decode_decimal(raw, 38, required=False, positive=True)
        rfq_id = _rfq_of_quote(rfqs, client_id, quote_id)
        return CounterQuote(client_id, rfq_id, quote_id, ref, side, price, quantity)
    if resp_type is QuoteRespType.PASS:
        return ClientPass(client_id, _rfq_of_quote(rfqs, client_id, quote_id), ref, quote_id)
    raise DecodeError(
        f"QuoteRespType(694) {type_text} ({resp_type.name}) is a dealer's answer; a client "
        "sends 1 (hit/lift), 2 (counter) or 6 (pass)",
        tag=694,
    )


def _accept_order(raw: RawMessage, client_id: str, rfqs: RfqLookup | None) -> AcceptQuote:
    if (ord_type := raw.get(40)) != m.OrdType.PREVIOUSLY_QUOTED:
        raise DecodeError(f"OrdType(40) must be D (previously quoted), got {ord_type!r}", tag=40)
    if (tif := raw.get(59)) != m.TimeInForce.FOK:
        raise DecodeError(
            f"TimeInForce(59) must be 4 (fill or kill) to accept a quote, got "
            f"{tif if tif is not None else 'none (day)'}",
            tag=59,
        )
    return AcceptQuote(
        client_id=client_id,
        quote_id=_text(raw, 117, "QuoteID"),
        client_ref=_text(raw, 11, "ClOrdID"),
        via=AcceptVia.NEW_ORDER,
        side=_side(raw),
        quote_hash=_text(raw, QUOTE_HASH, "QuoteHash"),
        quantity=decode_decimal(raw, 38, required=False, positive=True),
        price=decode_decimal(raw, 44, required=False),
    )


def _quote_cancel(raw: RawMessage, client_id: str, rfqs: RfqLookup | None) -> CancelRfq:
    """A client's QuoteCancel with its QuoteReqID and QuoteCancelType 4 (cancel all quotes)
    withdraws its request; FIX 4.4 has no other message for that."""
    quote_req_id = _text(raw, 131, "QuoteReqID")
    if (cancel_type := raw.get(298)) != CANCEL_ALL_QUOTES:
        raise DecodeError(
            f"QuoteCancelType(298) must be 4 (cancel all quotes of the request), got "
            f"{cancel_type!r}",
            tag=298,
        )
    rfq_id = _lookup(rfqs).rfq_of_request(client_id, quote_req_id)
    if rfq_id is None:
        raise DecodeError(f"QuoteReqID(131) {quote_req_id!r} names no request of yours", tag=131)
    return CancelRfq(client_id, rfq_id)


_DECODERS: dict[str, Callable[[RawMessage, str, RfqLookup | None], ClientCommand]] = {
    "R": _quote_request,
    "AJ": _quote_response,
    "D": _accept_order,
    "Z": _quote_cancel,
}


def is_rfq_message(raw: RawMessage) -> bool:
    """Whether a client message belongs to the negotiation (not the order path)."""
    if raw.msg_type == "D":
        return raw.get(40) == m.OrdType.PREVIOUSLY_QUOTED
    return raw.msg_type in _DECODERS


def decode_client(raw: RawMessage, client_id: str, rfqs: RfqLookup | None = None) -> ClientCommand:
    """A client's R, AJ, D (OrdType D) or Z as the negotiation command it means. ``client_id`` is
    the session's CompID; ``rfqs`` resolves the RFQ a counter, pass or cancel refers to. Raises
    :class:`DecodeError` (answer it with :func:`reject_for_rfq`)."""
    decoder = _DECODERS.get(raw.msg_type)
    if decoder is None:
        raise DecodeError(f"MsgType {raw.msg_type!r} is not part of the RFQ flow")
    return decoder(raw, client_id, rfqs)


# --- outbound: building blocks ---------------------------------------------------------------


def _parties(parties: Iterable[Party | None]) -> tuple[int, list[list[OutField]]]:
    return 453, [
        [(448, p.party_id), (447, PARTY_ID_SOURCE), (452, str(int(p.role)))]
        for p in parties
        if p is not None
    ]


def _valid_side(raw: RawMessage | None) -> Side | None:
    text = raw.get(54) if raw is not None else None
    return Side(text) if text in (Side.BUY, Side.SELL) else None


def _valid_decimal(raw: RawMessage | None, tag: int) -> Decimal | None:
    if raw is None or raw.get(tag) is None:
        return None
    try:
        return decode_decimal(raw, tag, positive=True)
    except DecodeError:
        return None


@dataclass(frozen=True, slots=True)
class _Context:
    rfq: Rfq | None
    answering: RawMessage | None

    @property
    def symbol(self) -> str:
        """The instrument as the client knows it: the RFQ's, else what it sent, else [N/A]."""
        if self.rfq is not None:
            legs = self.rfq.legs
            return MULTILEG_SYMBOL if _is_package(legs) else legs[0].instrument.symbol
        sent = self.answering.get(55) if self.answering is not None else None
        return sent or MULTILEG_SYMBOL

    @property
    def quote_req_id(self) -> str | None:
        return self.rfq.quote_req_id if self.rfq is not None else None

    @property
    def side(self) -> Side | None:
        return _valid_side(self.answering) or (self.rfq.side if self.rfq is not None else None)

    @property
    def quantity(self) -> Decimal | None:
        sent = _valid_decimal(self.answering, 38)
        return sent if sent is not None else (self.rfq.quantity if self.rfq else None)


def _status_report(
    ctx: _Context,
    *,
    quote_id: str | None,
    status: QuoteStatus,
    text: str,
    at: datetime,
    quote_req_id: str | None = None,
    quote_resp_id: str | None = None,
    party: Party | None = None,
) -> Outgoing:
    """QuoteStatusReport (AI): QuoteID is required, so a report about no quote says NONE."""
    out: list[OutField] = []
    add_field(out, 131, quote_req_id or ctx.quote_req_id)
    add_field(out, 117, quote_id or NO_ID)
    add_field(out, 693, quote_resp_id)
    if party is not None:
        out.append(_parties([party]))
    add_field(out, 55, ctx.symbol)
    add_field(out, 60, at)
    add_field(out, 297, status.value)
    add_field(out, 58, text)
    return "AI", out


def _business_reject(
    raw_or_type: RawMessage | str, ref_id: str | None, text: str, *, unknown_symbol=False
) -> Outgoing:
    if isinstance(raw_or_type, RawMessage):
        msg_type, seq = raw_or_type.msg_type, raw_or_type.get(34)
    else:
        msg_type, seq = raw_or_type, None
    reason = m.BusinessRejectReason
    return encode(
        m.BusinessReject(
            ref_msg_type=msg_type,
            reason=reason.UNKNOWN_SECURITY if unknown_symbol else reason.OTHER,
            text=text,
            ref_seq_num=int(seq) if seq and seq.isdigit() else None,
            business_reject_ref_id=ref_id,
        )
    )


def _echo_from_raw(raw: RawMessage) -> list[OutField]:
    """The requested instrument as the client sent it, keeping only well-formed values."""
    try:
        entries = groups(raw, 146, RELATED_SYM_MEMBERS)
    except DecodeError:
        entries = []
    if not entries:
        return [(55, raw.get(55) or MULTILEG_SYMBOL)]
    entry = entries[0]
    out: list[OutField] = [(55, entry.get(55) or MULTILEG_SYMBOL)]
    if entry.get(537) in tuple(QuoteType):
        add_field(out, 537, entry.get(537))
    add_field(out, 54, _valid_side(entry))
    add_field(out, 38, _valid_decimal(entry, 38))
    try:
        leg_entries = groups(entry, 555, LEG_MEMBER_TAGS)
    except DecodeError:
        leg_entries = []
    legs: list[list[OutField]] = []
    for leg in leg_entries:
        if leg.get(600):
            echoed: list[OutField] = [(600, leg.get(600))]
            add_field(echoed, 623, _valid_decimal(leg, 623))
            if leg.get(624) in (Side.BUY, Side.SELL):
                add_field(echoed, 624, leg.get(624))
            legs.append(echoed)
    if legs:
        out.append((555, legs))
    return out


def _echo_from_rfq(rfq: Rfq) -> list[OutField]:
    out: list[OutField] = [(55, _Context(rfq, None).symbol)]
    add_field(out, 537, rfq.quote_type.value)
    add_field(out, 54, rfq.side.value if rfq.side else None)
    add_field(out, 38, rfq.quantity)
    if _is_package(rfq.legs):
        legs: list[list[OutField]] = [
            [(600, leg.instrument.symbol), (623, fmt_decimal(leg.ratio)), (624, leg.side.value)]
            for leg in rfq.legs
        ]
        out.append((555, legs))
    return out


def _quote_request_reject(
    quote_req_id: str, reason: QuoteRequestRejectReason, echo: list[OutField], text: str
) -> Outgoing:
    """QuoteRequestReject (AG): FIX 4.4 requires NoRelatedSym, led by Symbol, echoing the ask."""
    return "AG", [(131, quote_req_id), (658, reason.value), (146, [echo]), (58, text)]


def _execution_report(er: m.ExecutionReport, extra: Iterable[OutField] = ()) -> Outgoing:
    msg_type, fields = encode(er)
    return msg_type, [*fields, *extra]


# --- outbound: events ------------------------------------------------------------------------


def _quote(e: ev.QuoteToClient, ctx: _Context) -> list[Outgoing]:
    q, sealed = e.sealed.quote, e.sealed
    out: list[OutField] = []
    add_field(out, 131, ctx.quote_req_id)
    add_field(out, 117, q.quote_id)
    add_field(out, 537, q.quote_type.value)
    out.append(_parties([Party(q.desk_id, PartyRole.EXECUTING_FIRM)]))
    package = _is_package(q.legs)
    add_field(out, 55, MULTILEG_SYMBOL if package else q.legs[0].symbol)
    add_field(out, 167, "MLEG" if package else None)
    if ctx.rfq is not None:
        add_field(out, 54, ctx.rfq.side.value if ctx.rfq.side else None)
        add_field(out, 38, ctx.rfq.quantity)
    if package:
        legs: list[list[OutField]] = []
        for leg in q.legs:
            entry: list[OutField] = [(600, leg.symbol)]
            add_field(entry, 623, leg.ratio)
            add_field(entry, 624, leg.side.value)
            add_field(entry, 681, leg.bid_px)
            add_field(entry, 684, leg.offer_px)
            legs.append(entry)
        out.append((555, legs))
    add_field(out, 132, q.bid_px)
    add_field(out, 133, q.offer_px)
    add_field(out, 134, q.bid_size)
    add_field(out, 135, q.offer_size)
    add_field(out, 62, q.valid_until)
    add_field(out, 60, q.quoted_at)
    if sealed.signature is not None:
        add_field(out, QUOTE_SIGNATURE, base64.b64encode(sealed.signature).decode("ascii"))
    add_field(out, QUOTE_HASH, sealed.quote_hash)
    if sealed.signature is not None:
        add_field(out, QUOTE_SIGNER_KEY_ID, q.desk_id)  # the keyring holds one key per desk
    return [("S", out)]


def _quote_request_rejected(e: ev.QuoteRequestRejected, ctx: _Context) -> list[Outgoing]:
    if ctx.answering is not None and ctx.answering.msg_type == "R":
        echo = _echo_from_raw(ctx.answering)
    elif ctx.rfq is not None:
        echo = _echo_from_rfq(ctx.rfq)
    else:
        echo = [(55, MULTILEG_SYMBOL)]
    return [_quote_request_reject(e.quote_req_id, e.fix_reason, echo, e.text)]


def _quote_status_changed(e: ev.QuoteStatusChanged, ctx: _Context) -> list[Outgoing]:
    return [_status_report(ctx, quote_id=e.quote_id, status=e.status, text=e.reason, at=e.at)]


def _desk_passed(e: ev.DeskPassed, ctx: _Context) -> list[Outgoing]:
    return [
        _status_report(
            ctx,
            quote_id=None,
            status=QuoteStatus.PASS,
            text=f"desk {e.desk_id} passed",
            at=e.at,
            party=Party(e.desk_id, PartyRole.EXECUTING_FIRM),
        )
    ]


_RFQ_END_STATUS = {
    RfqState.EXPIRED: QuoteStatus.EXPIRED,
    RfqState.CANCELLED: QuoteStatus.CANCELED_ALL,
}


def _rfq_ended(e: ev.RfqEnded, ctx: _Context) -> list[Outgoing]:
    status = _RFQ_END_STATUS.get(e.state, QuoteStatus.REMOVED_FROM_MARKET)
    return [
        _status_report(
            ctx, quote_id=None, status=status, text=e.reason, at=e.at, quote_req_id=e.quote_req_id
        )
    ]


def _client_action_rejected(e: ev.ClientActionRejected, ctx: _Context) -> list[Outgoing]:
    return [
        _status_report(
            ctx,
            quote_id=e.quote_id,
            status=e.quote_status,
            text=f"{e.action} refused: {e.text}",
            at=e.at,
            quote_resp_id=e.client_ref,
        )
    ]


def _counter_declined(e: ev.CounterDeclined, ctx: _Context) -> list[Outgoing]:
    text = f"counter {e.counter_id} declined by desk {e.desk_id}" + (
        f": {e.text}" if e.text else ""
    )
    return [
        _status_report(ctx, quote_id=e.quote_id, status=QuoteStatus.REJECTED, text=text, at=e.at)
    ]


def _acceptance_pending(e: ev.AcceptancePending, ctx: _Context) -> list[Outgoing]:
    text = f"awaiting the desk's last look until {fmt_time(e.hold_deadline)}"
    side, quantity = ctx.side, ctx.quantity
    if e.via is AcceptVia.QUOTE_RESPONSE or side is None or quantity is None:
        # Without the order's side and size an ER would have to invent them; AI says the same.
        resp_id = e.client_ref if e.via is AcceptVia.QUOTE_RESPONSE else None
        return [
            _status_report(
                ctx,
                quote_id=e.quote_id,
                status=QuoteStatus.PENDING,
                text=text,
                at=e.at,
                quote_resp_id=resp_id,
            )
        ]
    er = m.ExecutionReport(
        order_id=e.quote_id,
        exec_id=f"{e.quote_id}-A",
        cl_ord_id=e.client_ref,
        exec_type=m.ExecType.PENDING_NEW,
        ord_status=m.OrdStatus.PENDING_NEW,
        symbol=ctx.symbol,
        side=side,
        order_qty=quantity,
        leaves_qty=quantity,
        cum_qty=Decimal(0),
        avg_px=Decimal(0),
        ord_type=m.OrdType.PREVIOUSLY_QUOTED,
        text=text,
        transact_time=e.at,
    )
    return [_execution_report(er)]


def _acceptance_rejected(e: ev.AcceptanceRejected, ctx: _Context) -> list[Outgoing]:
    if e.via is AcceptVia.QUOTE_RESPONSE:
        return [
            _status_report(
                ctx,
                quote_id=e.quote_id,
                status=e.quote_status,
                text=e.text,
                at=e.at,
                quote_resp_id=e.client_ref,
            )
        ]
    side = ctx.side
    if side is None:
        return [_business_reject("D", e.client_ref, e.text)]
    er = m.ExecutionReport(
        # An order the desk refused in last look existed (pending); one refused on arrival didn't.
        order_id=e.quote_id if e.reason in _LAST_LOOK else NO_ID,
        exec_id=f"{e.client_ref}-{e.at:%Y%m%d%H%M%S%f}-R",
        cl_ord_id=e.client_ref,
        exec_type=m.ExecType.REJECTED,
        ord_status=m.OrdStatus.REJECTED,
        ord_rej_reason=e.ord_rej_reason,
        symbol=ctx.symbol,
        side=side,
        order_qty=ctx.quantity or Decimal(0),
        leaves_qty=Decimal(0),
        cum_qty=Decimal(0),
        avg_px=Decimal(0),
        ord_type=m.OrdType.PREVIOUSLY_QUOTED,
        text=e.text,
        transact_time=e.at,
    )
    return [_execution_report(er)]


def _leg_instrument(leg: TradeLeg) -> Instrument:
    if not isinstance(leg.product, Instrument):
        raise TypeError(f"leg {leg.leg_no}: RFQ trades carry listed instruments, not {leg.product}")
    return leg.product


def _trade_legs(trade: TradeCapture) -> tuple[int, list[list[OutField]]]:
    legs = []
    for leg in trade.legs:
        inst = _leg_instrument(leg)
        legs.append(
            [
                (600, inst.symbol),
                (608, inst.cfi_code),
                (609, inst.security_type),
                (624, leg.side.value),
                (687, fmt_decimal(leg.quantity)),
                (637, fmt_decimal(leg.price)),
            ]
        )
    return 555, legs


def _trade_captured(e: ev.TradeCaptured, ctx: _Context) -> list[Outgoing]:
    """The fill as ExecutionReports (package, then one per leg of a multi-leg trade, 442=3/2),
    then one TradeCaptureReport with both sides."""
    trade = e.trade
    order_id = trade.quote_id or trade.trade_id
    via_quote_response = e.via is AcceptVia.QUOTE_RESPONSE
    sent_cl_ord_id = ctx.answering.get(11) if ctx.answering is not None else None
    cl_ord_id = (sent_cl_ord_id if via_quote_response else None) or e.client_ref
    common: list[OutField] = []
    add_field(common, 693, e.client_ref if via_quote_response else None)
    add_field(common, 75, trade.trade_date)
    multileg = trade.is_multileg
    symbol = MULTILEG_SYMBOL if multileg else _leg_instrument(trade.legs[0]).symbol

    def fill(
        exec_id: str, symbol: str, side: Side, qty: Decimal, px: Decimal, extra: list[OutField]
    ) -> Outgoing:
        er = m.ExecutionReport(
            order_id=order_id,
            exec_id=exec_id,
            cl_ord_id=cl_ord_id,
            exec_type=m.ExecType.TRADE,
            ord_status=m.OrdStatus.FILLED,
            symbol=symbol,
            side=side,
            order_qty=qty,
            leaves_qty=Decimal(0),
            cum_qty=qty,
            avg_px=px,
            ord_type=m.OrdType.PREVIOUSLY_QUOTED,
            last_qty=qty,
            last_px=px,
            transact_time=trade.executed_at,
        )
        return _execution_report(er, [*common, *extra])

    package_extra = [(442, "3"), _trade_legs(trade)] if multileg else []
    out = [fill(trade.trade_id, symbol, trade.side, trade.quantity, trade.price, package_extra)]
    if multileg:
        for leg in trade.legs:
            out.append(
                fill(
                    f"{trade.trade_id}-{leg.leg_no}",
                    _leg_instrument(leg).symbol,
                    leg.side,
                    leg.quantity,
                    leg.price,
                    [(442, "2")],
                )
            )
    out.append(("AE", _trade_capture_report(trade, order_id, cl_ord_id)))
    return out


def _trade_capture_report(trade: TradeCapture, order_id: str, cl_ord_id: str) -> list[OutField]:
    """TradeCaptureReport (AE): a new (487=0) submitted (856=0) block trade (828=1) between the
    client and the desk, matched (573=0) because both agreed it through the RFQ.

    Not 856=7: in FIX 4.4 that value is "(Locked-In) Trade Break", a cancellation; the trade
    being locked in is what MatchStatus 573=0 (compared, matched) says."""
    out: list[OutField] = [
        (571, trade.trade_id),
        (487, "0"),
        (856, "0"),
        (828, "1"),
        (17, trade.trade_id),  # the package ExecutionReport's ExecID
        (570, "N"),
    ]
    if trade.is_multileg:
        out += [(55, MULTILEG_SYMBOL), (167, "MLEG")]
    else:
        inst = _leg_instrument(trade.legs[0])
        out += [(55, inst.symbol), (461, inst.cfi_code), (167, inst.security_type)]
    add_field(out, 32, trade.quantity)
    add_field(out, 31, trade.price)
    add_field(out, 75, trade.trade_date)
    add_field(out, 442, "3" if trade.is_multileg else "1")
    if trade.is_multileg:
        out.append(_trade_legs(trade))
    add_field(out, 60, trade.executed_at)
    add_field(out, 573, "0")
    desk_side = Side.SELL if trade.side is Side.BUY else Side.BUY
    client_entry: list[OutField] = [
        (54, trade.side.value),
        (37, order_id),
        (11, cl_ord_id),
        _parties([trade.client, trade.clearing_firm, trade.clearing_house]),
        (15, trade.currency),
    ]
    desk_entry: list[OutField] = [
        (54, desk_side.value),
        (37, order_id),
        _parties([trade.desk, trade.clearing_house]),
        (15, trade.currency),
    ]
    out.append((552, [client_entry, desk_entry]))
    return out


_EVENT_ENCODERS: dict[type, Callable[..., list[Outgoing]]] = {
    ev.QuoteToClient: _quote,
    ev.QuoteRequestRejected: _quote_request_rejected,
    ev.QuoteStatusChanged: _quote_status_changed,
    ev.DeskPassed: _desk_passed,
    ev.RfqEnded: _rfq_ended,
    ev.ClientActionRejected: _client_action_rejected,
    ev.CounterDeclined: _counter_declined,
    ev.AcceptancePending: _acceptance_pending,
    ev.AcceptanceRejected: _acceptance_rejected,
    ev.TradeCaptured: _trade_captured,
}


def encode_for_client(
    event: ev.Event, *, rfq: Rfq | None = None, answering: RawMessage | None = None
) -> list[Outgoing]:
    """The FIX messages a client receives for ``event`` (none for events it never sees, like
    desk notices or RfqAcknowledged). ``rfq`` is the RFQ the event belongs to (QuoteReqID,
    instrument, side, size); ``answering`` the client's message the event answers (the R, AJ or D:
    its ClOrdID, Side, OrderQty). Without them messages still go out, with less echoed: an
    acceptance refused with no known Side becomes a BusinessMessageReject, a pending one a
    QuoteStatusReport."""
    encoder = _EVENT_ENCODERS.get(type(event))
    return [] if encoder is None else encoder(event, _Context(rfq, answering))


def reject_for_rfq(raw: RawMessage, err: DecodeError) -> list[Outgoing]:
    """The answer to a client message :func:`decode_client` refused: AG for a QuoteRequest, AI for
    a QuoteResponse naming a quote, a rejected ExecutionReport for an order, else
    BusinessMessageReject (j)."""
    ctx = _Context(None, raw)
    if raw.msg_type == "R":
        reason = (
            QuoteRequestRejectReason.UNKNOWN_SYMBOL
            if err.unknown_symbol
            else QuoteRequestRejectReason.OTHER
        )
        return [_quote_request_reject(raw.get(131) or NO_ID, reason, _echo_from_raw(raw), err.text)]
    if raw.msg_type == "AJ" and raw.get(117):
        status = QuoteStatus.QUOTE_NOT_FOUND if err.tag == 117 else QuoteStatus.REJECTED
        return [
            _status_report(
                ctx,
                quote_id=raw.get(117),
                status=status,
                text=err.text,
                at=m.utcnow(),
                quote_resp_id=raw.get(693),
            )
        ]
    if raw.msg_type == "D" and raw.get(11) and (side := ctx.side) is not None:
        er = m.ExecutionReport(
            order_id=NO_ID,
            exec_id=f"{raw.get(11)}-{m.utcnow():%Y%m%d%H%M%S%f}-R",
            cl_ord_id=raw.get(11),
            exec_type=m.ExecType.REJECTED,
            ord_status=m.OrdStatus.REJECTED,
            ord_rej_reason=(
                m.OrdRejReason.UNKNOWN_SYMBOL if err.unknown_symbol else m.OrdRejReason.OTHER
            ),
            symbol=ctx.symbol,
            side=side,
            order_qty=ctx.quantity or Decimal(0),
            leaves_qty=Decimal(0),
            cum_qty=Decimal(0),
            avg_px=Decimal(0),
            ord_type=m.OrdType.PREVIOUSLY_QUOTED if raw.get(40) == "D" else None,
            text=err.text,
        )
        return [_execution_report(er)]
    ref = raw.get(131) or raw.get(693) or raw.get(11)
    return [_business_reject(raw, ref, err.text, unknown_symbol=err.unknown_symbol)]


# --- client side: building requests and reading quotes ---------------------------------------


def _raw(msg_type: str, fields: list[OutField]) -> RawMessage:
    return RawMessage(msg_type, ((35, msg_type), *flatten(fields)))


def _instrument_details(inst: Instrument, tags: _DetailTags) -> list[OutField]:
    out: list[OutField] = [(tags.cfi, inst.cfi_code), (tags.security_type, inst.security_type)]
    add_field(out, tags.maturity_date, inst.expiry)
    if tags.put_or_call is not None and inst.put_call is not None:
        add_field(out, tags.put_or_call, "1" if inst.put_call is PutCall.CALL else "0")
    add_field(out, tags.strike, inst.strike)
    return out


def encode_client_rfq(cmd: SubmitRfq, *, details: bool = True) -> RawMessage:
    """The QuoteRequest (R) a client sends for ``cmd`` (``client_id`` travels as SenderCompID;
    hedge flags are implied by the legs' kinds). ``details`` adds CFI code, security type,
    maturity and strike for every instrument, as some clients do."""
    entry: list[OutField] = []
    if _is_package(cmd.legs):
        entry.append((55, MULTILEG_SYMBOL))
    else:
        inst = parse_symbol(cmd.legs[0].symbol)
        entry.append((55, inst.symbol))
        if details:
            entry += _instrument_details(inst, INSTRUMENT_DETAILS)
    add_field(entry, 537, cmd.quote_type.value)
    add_field(entry, 54, cmd.side.value if cmd.side else None)
    add_field(entry, 38, cmd.quantity)
    if _is_package(cmd.legs):
        legs: list[list[OutField]] = []
        for leg in cmd.legs:
            inst = parse_symbol(leg.symbol)
            leg_entry: list[OutField] = [(600, inst.symbol)]
            if details:
                leg_entry += _instrument_details(inst, LEG_DETAILS)
            add_field(leg_entry, 623, leg.ratio)
            add_field(leg_entry, 624, leg.side.value)
            legs.append(leg_entry)
        entry.append((555, legs))
    add_field(entry, 126, cmd.expire_at)
    return _raw("R", [(131, cmd.quote_req_id), (146, [entry])])


def encode_quote_response(
    cmd: AcceptQuote | CounterQuote | ClientPass,
    *,
    symbol: str = MULTILEG_SYMBOL,
    cl_ord_id: str | None = None,
) -> RawMessage:
    """The QuoteResponse (AJ) for a hit/lift, counter or pass; ``symbol`` fills the Instrument
    FIX 4.4 requires, ``cl_ord_id`` the ClOrdID the resulting ExecutionReports will carry."""
    out: list[OutField] = []
    if isinstance(cmd, AcceptQuote):
        if cmd.via is not AcceptVia.QUOTE_RESPONSE:
            raise ValueError("an AcceptQuote via NEW_ORDER travels as encode_accept_order")
        out += [(693, cmd.client_ref), (117, cmd.quote_id), (694, QuoteRespType.HIT_LIFT.value)]
        add_field(out, 11, cl_ord_id)
        out += [(55, symbol), (54, cmd.side.value)]
        add_field(out, 38, cmd.quantity)
        add_field(out, 44, cmd.price)
        add_field(out, QUOTE_HASH, cmd.quote_hash)
    elif isinstance(cmd, CounterQuote):
        out += [(693, cmd.quote_resp_id), (117, cmd.quote_id), (694, QuoteRespType.COUNTER.value)]
        out += [(55, symbol), (54, cmd.side.value)]
        add_field(out, 38, cmd.quantity)
        add_field(out, 133 if cmd.side is Side.BUY else 132, cmd.price)
    else:
        if cmd.quote_id is None:
            raise ValueError(
                "FIX 4.4 QuoteResponse names a quote; withdraw an RFQ with QuoteCancel"
            )
        out += [(693, cmd.quote_resp_id), (117, cmd.quote_id), (694, QuoteRespType.PASS.value)]
        out.append((55, symbol))
    return _raw("AJ", out)


def encode_accept_order(cmd: AcceptQuote, *, symbol: str, transact_time: datetime) -> RawMessage:
    """The NewOrderSingle (D, OrdType D, FOK) accepting a quote; ClOrdID is ``cmd.client_ref``."""
    if cmd.via is not AcceptVia.NEW_ORDER:
        raise ValueError("an AcceptQuote via QUOTE_RESPONSE travels as encode_quote_response")
    out: list[OutField] = [(11, cmd.client_ref), (55, symbol), (54, cmd.side.value)]
    add_field(out, 60, transact_time)
    add_field(out, 38, cmd.quantity)
    add_field(out, 40, m.OrdType.PREVIOUSLY_QUOTED.value)
    add_field(out, 44, cmd.price)
    out += [(117, cmd.quote_id), (59, m.TimeInForce.FOK.value), (QUOTE_HASH, cmd.quote_hash)]
    return _raw("D", out)


def encode_quote_cancel(quote_req_id: str) -> RawMessage:
    """The QuoteCancel (Z) withdrawing the client's request ``quote_req_id``. QuoteID is required
    by FIX 4.4 but means nothing when cancelling all quotes; ``*`` says so."""
    return _raw("Z", [(131, quote_req_id), (117, "*"), (298, CANCEL_ALL_QUOTES)])


@dataclass(frozen=True, slots=True)
class QuoteLegView:
    symbol: str
    side: Side | None
    ratio: Decimal
    bid_px: Decimal | None
    offer_px: Decimal | None


@dataclass(frozen=True, slots=True)
class QuoteView:
    """A Quote (S) as a client reads it: enough to accept it (id, hash) and check it."""

    quote_id: str
    quote_req_id: str | None
    quote_type: QuoteType
    symbol: str
    bid_px: Decimal | None
    offer_px: Decimal | None
    bid_size: Decimal | None
    offer_size: Decimal | None
    valid_until: datetime | None
    transact_time: datetime | None
    legs: tuple[QuoteLegView, ...]
    quote_hash: str | None
    signature: bytes | None
    signer_key_id: str | None

    def price_for(self, side: Side) -> Decimal | None:
        return self.offer_px if side is Side.BUY else self.bid_px


def decode_quote(raw: RawMessage) -> QuoteView:
    """Read a Quote (S); raises :class:`DecodeError` for a malformed one."""
    if raw.msg_type != "S":
        raise DecodeError(f"not a Quote (S): MsgType {raw.msg_type!r}")
    signature_text = raw.get(QUOTE_SIGNATURE)
    try:
        signature = base64.b64decode(signature_text, validate=True) if signature_text else None
    except binascii.Error:
        raise DecodeError("QuoteSignature(5001) is not base64", tag=QUOTE_SIGNATURE) from None
    quote_type_text = raw.get(537)
    try:
        quote_type = QuoteType(quote_type_text or QuoteType.INDICATIVE)  # FIX's default
    except ValueError:
        raise DecodeError(f"unsupported QuoteType(537) {quote_type_text!r}", tag=537) from None
    legs = tuple(
        QuoteLegView(
            symbol=_text(leg, 600, "LegSymbol"),
            side=_side(leg, 624, "LegSide", required=False),
            ratio=decode_decimal(leg, 623, required=False, positive=True) or Decimal(1),
            bid_px=decode_decimal(leg, 681, required=False),
            offer_px=decode_decimal(leg, 684, required=False),
        )
        for leg in groups(raw, 555, LEG_MEMBER_TAGS)
    )
    return QuoteView(
        quote_id=_text(raw, 117, "QuoteID"),
        quote_req_id=raw.get(131),
        quote_type=quote_type,
        symbol=_text(raw, 55, "Symbol"),
        bid_px=decode_decimal(raw, 132, required=False),
        offer_px=decode_decimal(raw, 133, required=False),
        bid_size=decode_decimal(raw, 134, required=False),
        offer_size=decode_decimal(raw, 135, required=False),
        valid_until=_timestamp(raw, 62, "ValidUntilTime"),
        transact_time=_timestamp(raw, 60, "TransactTime"),
        legs=legs,
        quote_hash=raw.get(QUOTE_HASH),
        signature=signature,
        signer_key_id=raw.get(QUOTE_SIGNER_KEY_ID),
    )
