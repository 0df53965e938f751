"""A client's RFQ messages as negotiation commands.

A QuoteRequest (R), QuoteResponse (AJ), NewOrderSingle with OrdType D (a quote accepted as a
fill-or-kill order) and QuoteCancel (Z) become the :mod:`otc.negotiation` command they mean, or a
:class:`~fixspec.codec.DecodeError` naming the offending tag, which
:func:`~gateway.fix.rfq_outbound.reject_for_rfq` answers. The layout both directions share is
in :mod:`~gateway.fix.rfq_fields`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from fixspec import messages as m
from fixspec.codec import (
    DecodeError,
    RawMessage,
    decode_decimal,
    decode_instrument,
    fmt_decimal,
    groups,
)
from fixspec.instruments import Instrument, InstrumentKind, PutCall
from fixspec.messages import Side
from fixspec.rfq_codes import QuoteRespType, QuoteType
from gateway.fix.rfq_classic import decode_classic
from gateway.fix.rfq_fields import (
    CANCEL_ALL_QUOTES,
    CLIENT_DISCLOSED,
    INSTRUMENT_DETAILS,
    LEG_DETAILS,
    LEG_MEMBER_TAGS,
    LIQUIDITY_PROVIDER,
    MULTILEG_SYMBOL,
    PARTY_MEMBER_TAGS,
    QUOTE_HASH,
    RELATED_SYM_MEMBERS,
    DetailTags,
    decode_side,
    decode_timestamp,
    required_text,
)
from otc.negotiation.commands import (
    AcceptQuote,
    CancelRfq,
    ClientCommand,
    ClientPass,
    CounterQuote,
    LegRequest,
    SubmitRfq,
)
from otc.negotiation.model import HEDGE_KINDS, AcceptVia

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


# --- instrument details ----------------------------------------------------------------------


def _local_date(text: str, tag: int) -> date:
    try:
        if not re.fullmatch(r"\d{8}", text):
            raise ValueError(text)
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise DecodeError(
            f"{_NAMES[tag]}({tag}) is not a YYYYMMDD date: {text!r}", tag=tag
        ) from None


def _check_details(inst: Instrument, fields: RawMessage, tags: DetailTags, where: str) -> None:
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


# --- messages --------------------------------------------------------------------------------


def strategy_label(entry: RawMessage) -> str | None:
    """The client's own name for a strategy: a Symbol other than [N/A] on an MLEG entry."""
    symbol = entry.get(55)
    return symbol if symbol not in (None, MULTILEG_SYMBOL) and entry.get(167) == "MLEG" else None


def _strategy(entry: RawMessage, leg_entries: list[RawMessage]) -> tuple[LegRequest, ...]:
    symbol = entry.get(55)
    if (sec_type := entry.get(167)) not in (None, "MLEG"):
        raise DecodeError(
            f"SecurityType(167) of a strategy must be MLEG, got {sec_type!r}", tag=167
        )
    if symbol not in (None, MULTILEG_SYMBOL) and sec_type != "MLEG":
        raise DecodeError(
            f"Symbol(55) must be {MULTILEG_SYMBOL} with legs in NoLegs(555), or the strategy's "
            f"name with SecurityType(167)=MLEG, got {symbol!r}",
            tag=55,
        )
    parsed: list[tuple[Instrument, Side, Decimal]] = []
    for n, leg in enumerate(leg_entries, start=1):
        inst = decode_instrument(leg.get(600), tag=600)
        _check_details(inst, leg, LEG_DETAILS, f"leg {n}")
        side = decode_side(leg, 624, "LegSide")
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
    quote_req_id = required_text(raw, 131, "QuoteReqID")
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
        inst = decode_classic(entry)  # a swap or FX option in the Instrument fields
        if inst is None:
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
        side=decode_side(entry, required=False),
        quote_type=quote_type,
        # An option with its delta hedge is still one priced instrument.
        multileg=sum(not leg.hedge for leg in legs) > 1,
        expire_at=decode_timestamp(entry, 126, "ExpireTime"),
        label=strategy_label(entry) if leg_entries else None,
        desks=_chosen_desks(entry),
        disclosed=_disclosed(raw),
    )


def _chosen_desks(entry: RawMessage) -> tuple[str, ...]:
    """The desks named in Parties (453) with PartyRole(452) 35 LiquidityProvider; parties in
    other roles do not choose dealers and are left alone."""
    desks = []
    for party in groups(entry, 453, PARTY_MEMBER_TAGS):
        if party.get(452) == LIQUIDITY_PROVIDER:
            desks.append(required_text(party, 448, "PartyID"))
    return tuple(desks)


def _disclosed(raw: RawMessage) -> bool | None:
    value = raw.get(CLIENT_DISCLOSED)
    if value is None:
        return None
    if value not in ("Y", "N"):
        raise DecodeError(
            f"ClientDisclosed({CLIENT_DISCLOSED}) must be Y or N, got {value!r}",
            tag=CLIENT_DISCLOSED,
        )
    return value == "Y"


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
    ref = required_text(raw, 693, "QuoteRespID")
    type_text = required_text(raw, 694, "QuoteRespType")
    try:
        resp_type = QuoteRespType(type_text)
    except ValueError:
        raise DecodeError(
            f"QuoteRespType(694) {type_text!r} is not a FIX 4.4 value", tag=694
        ) from None
    quote_id = required_text(raw, 117, "QuoteID")
    if resp_type is QuoteRespType.HIT_LIFT:
        return AcceptQuote(
            client_id=client_id,
            quote_id=quote_id,
            client_ref=ref,
            via=AcceptVia.QUOTE_RESPONSE,
            side=decode_side(raw),
            quote_hash=required_text(raw, QUOTE_HASH, "QuoteHash"),
            quantity=decode_decimal(raw, 38, required=False, positive=True),
            price=decode_decimal(raw, 44, required=False),
        )
    if resp_type is QuoteRespType.COUNTER:
        side = decode_side(raw)
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
        quote_id=required_text(raw, 117, "QuoteID"),
        client_ref=required_text(raw, 11, "ClOrdID"),
        via=AcceptVia.NEW_ORDER,
        side=decode_side(raw),
        quote_hash=required_text(raw, QUOTE_HASH, "QuoteHash"),
        quantity=decode_decimal(raw, 38, required=False, positive=True),
        price=decode_decimal(raw, 44, required=False),
    )


def _quote_cancel(raw: RawMessage, client_id: str, rfqs: RfqLookup | None) -> CancelRfq:
    """A client's QuoteCancel with its QuoteReqID and QuoteCancelType 4 (cancel all quotes)
    withdraws its request; FIX 4.4 has no other message for that."""
    quote_req_id = required_text(raw, 131, "QuoteReqID")
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
    :class:`DecodeError`, which :func:`~gateway.fix.rfq_outbound.reject_for_rfq` answers."""
    decoder = _DECODERS.get(raw.msg_type)
    if decoder is None:
        raise DecodeError(f"MsgType {raw.msg_type!r} is not part of the RFQ flow")
    return decoder(raw, client_id, rfqs)
