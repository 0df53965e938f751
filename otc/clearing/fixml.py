"""FIXML 5.0 SP2 TradeCaptureReport (AE) for listed-style trades, its ack, and readers for both.

Mapping of a :class:`TradeCapture` (pure; same trade -> same bytes):

* ``RptID`` is the idempotency key, ``TrdID`` our trade id; ``TransTyp=0`` (new),
  ``RptTyp=0`` (submit); a correction is ``TransTyp=2`` (replace) and a bust ``TransTyp=1``
  (cancel), each with ``RptRefID`` = the RptID of the version it replaces; ``TrdTyp=1``
  (block) for RFQ-negotiated trades, else ``0`` (regular). A corrected account is the client
  side's ``Acct``; its allocations are ``Alloc`` (``Acct``, ``Qty``) in the client's
  ``RptSide``, each with a ``Pty R=14`` (give-up firm) when given up.
* ``Instrmt`` carries ``Sym``/``SecTyp``/``CFI``/``MMY``/``MatDt``/``StrkPx``/``PutCall``;
  a multi-leg package is ``SecTyp=MLEG`` with one ``TrdLeg`` per leg and ``MLegRptTyp=3``.
* Perpetuals go as ``SecTyp=FUT`` without ``MMY`` (FIX has no perpetual security type).
* Two ``RptSide``: the client's side (its own role, normally 24 customer account, then 4
  clearing firm and 21 clearing organisation) and the desk's opposite side (1 executing firm,
  then 21). The first ``Pty`` of a side is always the principal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lxml import etree

from fixspec.instruments import Instrument, InstrumentKind, PutCall
from fixspec.messages import Side
from otc.clearing.model import (
    XML_DECLARATION,
    AckOutcome,
    ClearedTrade,
    ClearingAck,
    ClearingFormatError,
    Economics,
    fmt_date,
    fmt_decimal,
    fmt_timestamp,
    parse_date,
    parse_decimal,
)
from otc.trades import Allocation, Party, TradeCapture

FIXML_NS = "http://www.fixprotocol.org/FIXML-5-0-SP2"
FIXML_VERSION = "FIX.5.0SP2"
_NSMAP = {None: FIXML_NS}
_PUT_CALL = {PutCall.PUT: "0", PutCall.CALL: "1"}  # PutOrCall(201)
_TRD_TYP_REGULAR = "0"
_TRD_TYP_BLOCK = "1"
_MLEG_SINGLE = "1"
_MLEG_MULTILEG_SECURITY = "3"
GIVE_UP_FIRM = "14"  # PartyRole: the firm an allocation is given up to
TRANS_NEW = "0"  # TradeReportTransType(487)
TRANS_CANCEL = "1"
TRANS_REPLACE = "2"
TRD_RPT_ACCEPTED = "0"  # TrdRptStatus(939)
TRD_RPT_REJECTED = "1"


def _q(tag: str) -> str:
    return f"{{{FIXML_NS}}}{tag}"


def _opposite(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


def _root() -> etree._Element:
    return etree.Element(_q("FIXML"), nsmap=_NSMAP, v=FIXML_VERSION)


def serialize(root: etree._Element) -> bytes:
    body = etree.tostring(root, xml_declaration=False, encoding="UTF-8", pretty_print=True)
    return XML_DECLARATION + body


def _instrument_attrs(inst: Instrument, *, leg: bool) -> dict[str, str]:
    attrs = {"Sym": inst.symbol, "CFI": inst.cfi_code, "SecTyp": inst.security_type}
    if inst.expiry is not None:
        attrs["MMY"] = inst.expiry.strftime("%Y%m%d")
        attrs["Mat" if leg else "MatDt"] = fmt_date(inst.expiry)
    if inst.kind is InstrumentKind.OPTION:
        if inst.strike is None or inst.put_call is None:
            raise ClearingFormatError(f"option {inst.symbol} lacks strike or put/call")
        attrs["Strk" if leg else "StrkPx"] = fmt_decimal(inst.strike)
        attrs["PutCall"] = _PUT_CALL[inst.put_call]
    return attrs


def _side(
    parent: etree._Element,
    side: Side,
    parties: list[Party],
    account: str | None = None,
    allocations: tuple[Allocation, ...] = (),
) -> None:
    el = etree.SubElement(parent, _q("RptSide"), Side=side.value)
    if account:
        el.set("Acct", account)
    for party in parties:
        etree.SubElement(el, _q("Pty"), ID=party.party_id, R=str(int(party.role)))
    for alloc in allocations:
        a = etree.SubElement(el, _q("Alloc"), Acct=alloc.account, Qty=fmt_decimal(alloc.quantity))
        if alloc.give_up_firm:
            etree.SubElement(a, _q("Pty"), ID=alloc.give_up_firm, R=GIVE_UP_FIRM)


def build_trade_capture_report(
    trade: TradeCapture,
    report_id: str,
    *,
    trans_type: str = TRANS_NEW,
    ref_report_id: str | None = None,
) -> bytes:
    """The FIXML document submitting ``trade`` for clearing under ``report_id``; a replace or
    cancel (``trans_type``) names the report it refers to (``ref_report_id``)."""
    if (trans_type == TRANS_NEW) != (ref_report_id is None):
        raise ClearingFormatError(
            f"trade {trade.trade_id}: TransTyp {trans_type} with RptRefID {ref_report_id!r}"
        )
    instruments = [leg.product for leg in trade.legs]
    if not instruments or not all(isinstance(p, Instrument) for p in instruments):
        raise ClearingFormatError(
            f"trade {trade.trade_id}: FIXML trade reports carry listed instruments only"
        )
    if trade.clearing_house is None:
        raise ClearingFormatError(f"trade {trade.trade_id}: no clearing house to submit to")
    if any(i.kind is InstrumentKind.SPOT for i in instruments):  # type: ignore[union-attr]
        raise ClearingFormatError(f"trade {trade.trade_id}: spot trades are not cleared")

    root = _root()
    rpt = etree.SubElement(root, _q("TrdCaptRpt"))
    rpt.attrib.update(
        {
            "RptID": report_id,
            "TrdID": trade.trade_id,
            "TransTyp": trans_type,
            "RptTyp": "0",
            "TrdTyp": _TRD_TYP_BLOCK if trade.rfq_id else _TRD_TYP_REGULAR,
            "LastQty": fmt_decimal(trade.quantity),
            "LastPx": fmt_decimal(trade.price),
            "Ccy": trade.currency,
            "TrdDt": fmt_date(trade.trade_date),
            "MLegRptTyp": _MLEG_MULTILEG_SECURITY if trade.is_multileg else _MLEG_SINGLE,
            "TxnTm": fmt_timestamp(trade.executed_at),
        }
    )
    if ref_report_id is not None:
        rpt.set("RptRefID", ref_report_id)
    if trade.is_multileg:
        etree.SubElement(rpt, _q("Instrmt"), Sym="[N/A]", SecTyp="MLEG")
        for leg in trade.legs:
            trd_leg = etree.SubElement(
                rpt,
                _q("TrdLeg"),
                LegNo=str(leg.leg_no),
                Qty=fmt_decimal(leg.quantity),
                LastPx=fmt_decimal(leg.price),
            )
            attrs = _instrument_attrs(leg.product, leg=True)  # type: ignore[arg-type]
            attrs["Side"] = leg.side.value
            etree.SubElement(trd_leg, _q("Leg"), attrs)
    else:
        etree.SubElement(rpt, _q("Instrmt"), _instrument_attrs(instruments[0], leg=False))  # type: ignore[arg-type]

    common = [p for p in (trade.clearing_firm, trade.clearing_house) if p is not None]
    _side(rpt, trade.side, [trade.client, *common], trade.account, trade.allocations)
    _side(rpt, _opposite(trade.side), [trade.desk, trade.clearing_house])
    return serialize(root)


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportSide:
    side: Side
    parties: tuple[tuple[str, int], ...]  # (party id, PartyRole) in document order
    allocations: tuple[Allocation, ...] = ()

    @property
    def principal(self) -> str:
        if not self.parties:
            raise ClearingFormatError(f"RptSide Side={self.side.value} has no Pty")
        return self.parties[0][0]


@dataclass(frozen=True, slots=True)
class ReportLeg:
    leg_no: int
    symbol: str
    side: Side | None
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class TradeReportView:
    """The clearing-relevant content of a received TrdCaptRpt."""

    report_id: str
    trade_id: str
    trade_type: str
    trade_date: date
    symbol: str
    quantity: Decimal
    price: Decimal
    currency: str
    sides: tuple[ReportSide, ...]
    legs: tuple[ReportLeg, ...]
    trans_type: str = TRANS_NEW
    ref_report_id: str | None = None

    def side(self, side: Side) -> ReportSide:
        for s in self.sides:
            if s.side is side:
                return s
        raise ClearingFormatError(f"TrdCaptRpt {self.report_id}: no RptSide Side={side.value}")

    def economics(self) -> Economics:
        instrument = "|".join(leg.symbol for leg in self.legs) if self.legs else self.symbol
        return Economics(
            self.trade_id,
            instrument,
            self.side(Side.BUY).principal,
            self.side(Side.SELL).principal,
            self.quantity,
            self.price,
            self.currency,
        )


def _message(root: etree._Element, tag: str) -> etree._Element:
    if root.tag != _q("FIXML"):
        raise ClearingFormatError(f"not a FIXML document: root is {etree.QName(root).localname}")
    msg = root.find(_q(tag))
    if msg is None:  # first message of a Batch
        msg = root.find(f"{_q('Batch')}/{_q(tag)}")
    if msg is None:
        raise ClearingFormatError(f"FIXML document holds no {tag}")
    return msg


def _req(el: etree._Element, attr: str) -> str:
    value = el.get(attr)
    if value is None or value == "":
        raise ClearingFormatError(f"{etree.QName(el).localname}: missing attribute {attr}")
    return value


def _side_of(text: str, where: str) -> Side:
    try:
        return Side(text)
    except ValueError as exc:
        raise ClearingFormatError(f"{where}: unsupported Side {text!r}") from exc


def read_trade_capture_report(root: etree._Element) -> TradeReportView:
    """Read a parsed FIXML document holding one TrdCaptRpt."""
    rpt = _message(root, "TrdCaptRpt")
    instrmt = rpt.find(_q("Instrmt"))
    if instrmt is None:
        raise ClearingFormatError("TrdCaptRpt: missing Instrmt")
    sides = []
    for el in rpt.findall(_q("RptSide")):
        side = _side_of(_req(el, "Side"), "RptSide")
        parties = []
        for pty in el.findall(_q("Pty")):
            try:
                role = int(_req(pty, "R"))
            except ValueError as exc:
                raise ClearingFormatError(
                    f"Pty {pty.get('ID')}: bad role {pty.get('R')!r}"
                ) from exc
            parties.append((_req(pty, "ID"), role))
        allocations = []
        for alloc in el.findall(_q("Alloc")):
            give_up = alloc.find(_q("Pty"))
            allocations.append(
                Allocation(
                    _req(alloc, "Acct"),
                    parse_decimal(alloc.get("Qty"), "Alloc Qty"),
                    give_up.get("ID") if give_up is not None else None,
                )
            )
        sides.append(ReportSide(side, tuple(parties), tuple(allocations)))
    legs = []
    for trd_leg in rpt.findall(_q("TrdLeg")):
        leg = trd_leg.find(_q("Leg"))
        if leg is None:
            raise ClearingFormatError("TrdLeg: missing Leg")
        side_text = leg.get("Side")
        leg_no = _req(trd_leg, "LegNo")
        if not leg_no.isdigit():
            raise ClearingFormatError(f"TrdLeg: LegNo {leg_no!r} is not a number")
        legs.append(
            ReportLeg(
                int(leg_no),
                _req(leg, "Sym"),
                _side_of(side_text, "Leg") if side_text else None,
                parse_decimal(trd_leg.get("Qty"), "TrdLeg Qty"),
                parse_decimal(trd_leg.get("LastPx"), "TrdLeg LastPx"),
            )
        )
    return TradeReportView(
        report_id=_req(rpt, "RptID"),
        trade_id=rpt.get("TrdID") or _req(rpt, "RptID"),
        trade_type=rpt.get("TrdTyp", _TRD_TYP_REGULAR),
        trade_date=parse_date(rpt.get("TrdDt"), "TrdCaptRpt TrdDt"),
        symbol=_req(instrmt, "Sym"),
        quantity=parse_decimal(rpt.get("LastQty"), "TrdCaptRpt LastQty"),
        price=parse_decimal(rpt.get("LastPx"), "TrdCaptRpt LastPx"),
        currency=rpt.get("Ccy", ""),
        sides=tuple(sides),
        legs=tuple(legs),
        trans_type=rpt.get("TransTyp", TRANS_NEW),
        ref_report_id=rpt.get("RptRefID"),
    )


# --- acks -----------------------------------------------------------------------------------

# TradeReportRejectReason(751) values the simulator uses.
REJECT_OTHER = "99"
REJECT_UNKNOWN_INSTRUMENT = "2"
REJECT_INVALID_PARTY = "1"


def build_trade_capture_report_ack(
    report: TradeReportView,
    *,
    accepted: bool,
    clearing_trade_id: str | None = None,
    reject_reason: str = REJECT_OTHER,
    reject_text: str | None = None,
) -> bytes:
    """A clearinghouse's TrdCaptRptAck answering ``report`` (used by the simulator)."""
    root = _root()
    ack = etree.SubElement(root, _q("TrdCaptRptAck"))
    ack.set("RptID", report.report_id)
    if clearing_trade_id:
        ack.set("TrdID", clearing_trade_id)
    ack.set("TransTyp", report.trans_type)
    ack.set("RptTyp", "0")
    ack.set("TrdRptStat", TRD_RPT_ACCEPTED if accepted else TRD_RPT_REJECTED)
    if not accepted:
        ack.set("RejRsn", reject_reason)
        if reject_text:
            ack.set("Txt", reject_text)  # Text(58): FIXML 5.0 SP2 has no RejectText on this ack
    ack.set("TrdDt", fmt_date(report.trade_date))
    etree.SubElement(ack, _q("Instrmt"), Sym=report.symbol)
    if accepted:  # each allocation acknowledged, as the clearinghouse books it
        for side in report.sides:
            if side.allocations:
                _side(ack, side.side, [], allocations=side.allocations)
    return serialize(root)


def read_trade_capture_report_ack(root: etree._Element) -> ClearingAck:
    """TrdCaptRptAck -> :class:`ClearingAck`; ``TrdRptStat`` (or ``TrdAckStat``) decides."""
    ack = _message(root, "TrdCaptRptAck")
    status = ack.get("TrdRptStat", ack.get("TrdAckStat"))
    if status not in (TRD_RPT_ACCEPTED, TRD_RPT_REJECTED):
        raise ClearingFormatError(f"TrdCaptRptAck: unknown status {status!r}")
    accepted = status == TRD_RPT_ACCEPTED
    reason = None
    if not accepted:
        reason = f"RejRsn={ack.get('RejRsn', '?')}"
        if ack.get("Txt"):
            reason += f": {ack.get('Txt')}"
    trd_id = ack.get("TrdID")
    return ClearingAck(
        outcome=AckOutcome.ACCEPTED if accepted else AckOutcome.REJECTED,
        reference=ack.get("RptID") or ack.get("RptRefID"),
        cleared=(ClearedTrade(trd_id),) if accepted and trd_id else (),
        reason=reason,
    )
