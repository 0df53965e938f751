"""The client's side of the RFQ flow: building what a client sends, reading what it receives.

The gateway never calls this. Tests and load generators do, to play a client: the R, AJ, D
(OrdType D) and Z they send are built, and the Quote (S) they receive is read, with the same
layout (:mod:`~gateway.fix.rfq_fields`) the gateway decodes and encodes with, so the two cannot
drift apart.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fixspec import messages as m
from fixspec.codec import (
    DecodeError,
    OutField,
    RawMessage,
    add_field,
    decode_decimal,
    flatten,
    groups,
)
from fixspec.instruments import Instrument, PutCall, parse_symbol
from fixspec.messages import Side
from fixspec.rfq_codes import QuoteRespType, QuoteType
from gateway.fix.rfq_classic import instrument_fields
from gateway.fix.rfq_fields import (
    CANCEL_ALL_QUOTES,
    INSTRUMENT_DETAILS,
    LEG_DETAILS,
    LEG_MEMBER_TAGS,
    MULTILEG_SYMBOL,
    QUOTE_HASH,
    QUOTE_SIGNATURE,
    QUOTE_SIGNER_KEY_ID,
    DetailTags,
    decode_side,
    decode_timestamp,
    is_package,
    required_text,
)
from otc.negotiation.commands import AcceptQuote, ClientPass, CounterQuote, SubmitRfq
from otc.negotiation.model import AcceptVia


def _raw(msg_type: str, fields: list[OutField]) -> RawMessage:
    return RawMessage(msg_type, ((35, msg_type), *flatten(fields)))


def _instrument_details(inst: Instrument, tags: DetailTags) -> list[OutField]:
    out: list[OutField] = [(tags.cfi, inst.cfi_code), (tags.security_type, inst.security_type)]
    add_field(out, tags.maturity_date, inst.expiry)
    if tags.put_or_call is not None and inst.put_call is not None:
        add_field(out, tags.put_or_call, "1" if inst.put_call is PutCall.CALL else "0")
    add_field(out, tags.strike, inst.strike)
    return out


def encode_client_rfq(cmd: SubmitRfq, *, details: bool = True) -> RawMessage:
    """The QuoteRequest (R) a client sends for ``cmd`` (``client_id`` travels as SenderCompID;
    hedge flags are implied by the legs' kinds). ``details`` adds CFI code, security type,
    maturity and strike for every instrument, as some clients do; a swap or FX option then
    travels in the Instrument fields (:mod:`~gateway.fix.rfq_classic`), else by its symbol."""
    entry: list[OutField] = []
    if is_package(cmd.legs):
        entry.append((55, cmd.label or MULTILEG_SYMBOL))
        add_field(entry, 167, "MLEG" if cmd.label else None)
    else:
        inst = parse_symbol(cmd.legs[0].symbol)
        if details and inst.terms is not None:  # a swap or FX option in the Instrument fields
            entry += instrument_fields(inst)
        else:
            entry.append((55, inst.symbol))
            if details:
                entry += _instrument_details(inst, INSTRUMENT_DETAILS)
    add_field(entry, 537, cmd.quote_type.value)
    add_field(entry, 54, cmd.side.value if cmd.side else None)
    add_field(entry, 38, cmd.quantity)
    if is_package(cmd.legs):
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
    if cmd.desks:
        entry.append((453, [[(448, desk), (447, "D"), (452, "35")] for desk in cmd.desks]))
    head: list[OutField] = [(131, cmd.quote_req_id)]
    if cmd.disclosed is not None:
        head.append((5004, "Y" if cmd.disclosed else "N"))
    return _raw("R", [*head, (146, [entry])])


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


# --- reading quotes --------------------------------------------------------------------------


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
            symbol=required_text(leg, 600, "LegSymbol"),
            side=decode_side(leg, 624, "LegSide", required=False),
            ratio=decode_decimal(leg, 623, required=False, positive=True) or Decimal(1),
            bid_px=decode_decimal(leg, 681, required=False),
            offer_px=decode_decimal(leg, 684, required=False),
        )
        for leg in groups(raw, 555, LEG_MEMBER_TAGS)
    )
    return QuoteView(
        quote_id=required_text(raw, 117, "QuoteID"),
        quote_req_id=raw.get(131),
        quote_type=quote_type,
        symbol=required_text(raw, 55, "Symbol"),
        bid_px=decode_decimal(raw, 132, required=False),
        offer_px=decode_decimal(raw, 133, required=False),
        bid_size=decode_decimal(raw, 134, required=False),
        offer_size=decode_decimal(raw, 135, required=False),
        valid_until=decode_timestamp(raw, 62, "ValidUntilTime"),
        transact_time=decode_timestamp(raw, 60, "TransactTime"),
        legs=legs,
        quote_hash=raw.get(QUOTE_HASH),
        signature=signature,
        signer_key_id=raw.get(QUOTE_SIGNER_KEY_ID),
    )
