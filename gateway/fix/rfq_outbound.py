"""Negotiation events as the FIX messages a client receives.

The events a client may see become Quote (S), QuoteRequestReject (AG), QuoteStatusReport (AI),
ExecutionReport (8) and TradeCaptureReport (AE) bodies; a client message that could not be
decoded gets the answer FIX defines for it (:func:`reject_for_rfq`). The layout both directions
share is in :mod:`~gateway.fix.rfq_fields`.

Some events lack what FIX must echo (a Quote's QuoteReqID, the Side and ClOrdID of the order an
ExecutionReport answers). The edge passes the RFQ (``rfq``) and the client message the event
answers (``answering``); without them every message still goes out in a valid, honest form.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fixspec import messages as m
from fixspec.classic import is_classic_symbol
from fixspec.codec import (
    DecodeError,
    OutField,
    RawMessage,
    add_field,
    decode_decimal,
    encode,
    fmt_decimal,
    fmt_time,
    groups,
)
from fixspec.instruments import Instrument, InstrumentError, parse_symbol
from fixspec.messages import Side
from fixspec.rfq_codes import QuoteRequestRejectReason, QuoteStatus, QuoteType
from gateway.fix.rfq_classic import detail_fields, instrument_fields, wire_symbol
from gateway.fix.rfq_fields import (
    LEG_MEMBER_TAGS,
    MULTILEG_SYMBOL,
    QUOTE_HASH,
    QUOTE_SIGNATURE,
    QUOTE_SIGNER_KEY_ID,
    RELATED_SYM_MEMBERS,
    Outgoing,
    is_package,
)
from otc.negotiation import events as ev
from otc.negotiation.errors import RejectReason
from otc.negotiation.model import AcceptVia, Rfq
from otc.negotiation.states import RfqState
from otc.trades import FxOptionTerms, IrsTerms, Party, PartyRole, TradeCapture, TradeLeg

NO_ID = "NONE"  # FIX's value for a required id that does not exist (no order, no quote)
PARTY_ID_SOURCE = "D"  # PartyIDSource(447): proprietary (our CompIDs and desk ids)
_LAST_LOOK = frozenset({RejectReason.LAST_LOOK_REJECTED, RejectReason.LAST_LOOK_TIMEOUT})


# --- building blocks -------------------------------------------------------------------------


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
            if is_package(legs):
                return self.rfq.label or MULTILEG_SYMBOL
            return legs[0].instrument.symbol
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
    if entry.get(167) == "MLEG":
        out.append((167, "MLEG"))
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


def _classic(symbol: str) -> Instrument | None:
    """The swap or FX option ``symbol`` names (answers carry its fields), else None."""
    if not is_classic_symbol(symbol):
        return None
    try:
        return parse_symbol(symbol)
    except InstrumentError:
        return None


def _echo_from_rfq(rfq: Rfq) -> list[OutField]:
    single = None if is_package(rfq.legs) else rfq.legs[0].instrument
    if single is not None and single.terms is not None:
        out: list[OutField] = instrument_fields(single)
    else:
        out = [(55, _Context(rfq, None).symbol)]
        if rfq.label is not None and is_package(rfq.legs):
            out.append((167, "MLEG"))
    add_field(out, 537, rfq.quote_type.value)
    add_field(out, 54, rfq.side.value if rfq.side else None)
    add_field(out, 38, rfq.quantity)
    if is_package(rfq.legs):
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


# --- events ----------------------------------------------------------------------------------


def _quote(e: ev.QuoteToClient, ctx: _Context) -> list[Outgoing]:
    q, sealed = e.sealed.quote, e.sealed
    out: list[OutField] = []
    add_field(out, 131, ctx.quote_req_id)
    add_field(out, 117, q.quote_id)
    add_field(out, 537, q.quote_type.value)
    out.append(_parties([Party(q.desk_id, PartyRole.EXECUTING_FIRM)]))
    package = is_package(q.legs)
    label = ctx.rfq.label if ctx.rfq is not None else None
    classic = None if package else _classic(q.legs[0].symbol)
    if classic is not None:
        out += instrument_fields(classic)
    else:
        add_field(out, 55, (label or MULTILEG_SYMBOL) if package else q.legs[0].symbol)
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
    """The instrument a leg was negotiated as (a swap or FX option keeps its symbol)."""
    product = leg.product
    if isinstance(product, IrsTerms | FxOptionTerms) and product.instrument_symbol:
        return parse_symbol(product.instrument_symbol)
    if not isinstance(product, Instrument):
        raise TypeError(f"leg {leg.leg_no}: not negotiated as an instrument: {product}")
    return product


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
    single = None if multileg else _leg_instrument(trade.legs[0])
    symbol = (trade.label or MULTILEG_SYMBOL) if single is None else wire_symbol(single)
    if single is not None:
        common += detail_fields(single)

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


def _allocations(trade: TradeCapture) -> tuple[int, list[list[OutField]]]:
    """TrdAllocGrp (78): account, the give-up firm as NestedParties2 role 14, quantity."""
    entries = []
    for a in trade.allocations:
        entry: list[OutField] = [(79, a.account)]
        if a.give_up_firm:
            entry.append((756, [[(757, a.give_up_firm), (758, PARTY_ID_SOURCE), (759, "14")]]))
        entry.append((80, fmt_decimal(a.quantity)))
        entries.append(entry)
    return 78, entries


def _trade_capture_report(
    trade: TradeCapture,
    order_id: str,
    cl_ord_id: str | None,
    *,
    report_id: str | None = None,
    trans_type: str = "0",
    report_type: str = "0",
    ref_report_id: str | None = None,
    exec_id: str | None = None,
) -> list[OutField]:
    """TradeCaptureReport (AE): a new (487=0) submitted (856=0) block trade (828=1) between the
    client and the desk, matched (573=0) because both agreed it through the RFQ.

    Not 856=7: in FIX 4.4 that value is "(Locked-In) Trade Break", a cancellation; the trade
    being locked in is what MatchStatus 573=0 (compared, matched) says. A later version of the
    trade passes its own ``report_id``, ``trans_type`` (2 replace, 1 cancel), ``report_type``
    and the report it refers to (``ref_report_id``, TradeReportRefID 572)."""
    out: list[OutField] = [
        (571, report_id or trade.trade_id),
        (487, trans_type),
        (856, report_type),
        (828, "1"),
    ]
    add_field(out, 572, ref_report_id)
    out += [
        (17, exec_id or trade.trade_id),  # the package ExecutionReport's ExecID
        (570, "N"),
    ]
    if trade.is_multileg:
        out += [(55, trade.label or MULTILEG_SYMBOL), (167, "MLEG")]
    else:
        inst = _leg_instrument(trade.legs[0])
        if inst.terms is not None:
            out += [*instrument_fields(inst, currency=False), (461, inst.cfi_code)]
        else:
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
    client_entry: list[OutField] = [(54, trade.side.value), (37, order_id)]
    add_field(client_entry, 11, cl_ord_id)
    client_entry.append(_parties([trade.client, trade.clearing_firm, trade.clearing_house]))
    add_field(client_entry, 1, trade.account)
    client_entry.append((15, trade.currency))
    if trade.allocations:
        client_entry.append(_allocations(trade))
    desk_entry: list[OutField] = [
        (54, desk_side.value),
        (37, order_id),
        _parties([trade.desk, trade.clearing_house]),
        (15, trade.currency),
    ]
    out.append((552, [client_entry, desk_entry]))
    return out


def stored_trade_report(trade: TradeCapture) -> Outgoing:
    """The TradeCaptureReport (AE) of a trade read back from the database, as sent when it was
    captured but without the client's ClOrdID, which the trade does not keep."""
    fields = _trade_capture_report(trade, trade.quote_id or trade.trade_id, NO_ID)
    out: list[OutField] = []
    for tag, value in fields:
        if tag == 552 and isinstance(value, list):
            value = [[f for f in side if f != (11, NO_ID)] for side in value]
        out.append((tag, value))
    return "AE", out


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
    """The answer to a client message :func:`~gateway.fix.rfq_inbound.decode_client` refused:
    AG for a QuoteRequest, AI for a QuoteResponse naming a quote, a rejected ExecutionReport for
    an order, else BusinessMessageReject (j)."""
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
