"""One entry point per direction: trade -> clearing message, and bytes -> what they say.

Pure functions; the senders, the outbox and the simulator all go through here so the format
choice, the idempotency key and the readers cannot drift apart.
"""

from __future__ import annotations

from lxml import etree

from otc.clearing import fixml, fpml
from otc.clearing.fixml import FIXML_NS, TradeReportView
from otc.clearing.fpml import FPML_NS, ClearingRequestView
from otc.clearing.model import (
    ClearingAck,
    ClearingFormat,
    ClearingFormatError,
    Economics,
    OutgoingMessage,
    format_for,
    idempotency_key,
    trade_economics,
)
from otc.trades import TradeCapture

Submission = TradeReportView | ClearingRequestView


def safe_parser() -> etree.XMLParser:
    """A parser for untrusted XML: no DTDs, no entity expansion, no network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted bytes; raises :class:`etree.XMLSyntaxError` naming line and cause."""
    return etree.fromstring(data, safe_parser())


def render(trade: TradeCapture, version: int = 1, *, cancel: bool = False) -> OutgoingMessage:
    """The clearing message for ``trade`` (trade ``version`` bumps on amendment): version 1 is
    new, a later one replaces version - 1 (or, with ``cancel``, cancels it). Only FIXML trade
    reports can replace or cancel; an FpML-cleared trade is refused before it gets here."""
    fmt = format_for(trade)
    key = idempotency_key(trade.trade_id, fmt, version)
    if fmt is ClearingFormat.FIXML_TRADE_CAPTURE:
        if version == 1:
            body = fixml.build_trade_capture_report(trade, key)
        else:
            body = fixml.build_trade_capture_report(
                trade,
                key,
                trans_type=fixml.TRANS_CANCEL if cancel else fixml.TRANS_REPLACE,
                ref_report_id=idempotency_key(trade.trade_id, fmt, version - 1),
            )
    elif version == 1:
        body = fpml.build_request_clearing(trade, key)
    else:
        raise ClearingFormatError(
            f"trade {trade.trade_id}: an FpML-cleared trade cannot be corrected or cancelled"
        )
    return OutgoingMessage(key=key, trade_id=trade.trade_id, fmt=fmt, body=body)


def _parse(data: bytes) -> etree._Element:
    try:
        return parse_xml(data)
    except etree.XMLSyntaxError as exc:
        raise ClearingFormatError(f"line {exc.lineno}: not well-formed XML: {exc.msg}") from exc


def parse_ack(data: bytes) -> ClearingAck:
    """A clearinghouse answer: FIXML TrdCaptRptAck, FpML clearingConfirmed/clearingRefused."""
    root = _parse(data)
    namespace = etree.QName(root).namespace
    if namespace == FIXML_NS:
        return fixml.read_trade_capture_report_ack(root)
    if namespace == FPML_NS:
        return fpml.read_clearing_answer(root)
    raise ClearingFormatError(f"not a clearing answer: root {etree.QName(root).text}")


def read_submission(data: bytes) -> Submission:
    """A submission as a clearinghouse sees it: FIXML TrdCaptRpt or FpML requestClearing."""
    root = _parse(data)
    namespace = etree.QName(root).namespace
    if namespace == FIXML_NS:
        return fixml.read_trade_capture_report(root)
    if namespace == FPML_NS:
        return fpml.read_request_clearing(root)
    raise ClearingFormatError(f"not a clearing submission: root {etree.QName(root).text}")


def economics_breaks(ours: Economics, theirs: Economics) -> list[str]:
    """Field-by-field differences, each naming the field and both values."""
    breaks = []
    for name in ("instrument", "buyer", "seller", "quantity", "price", "currency"):
        a, b = getattr(ours, name), getattr(theirs, name)
        if a != b:
            breaks.append(f"{name}: ours {a} != theirs {b}")
    return breaks


def compare_with_trade(trade: TradeCapture, submission: Submission) -> list[str]:
    """What a received/parsed clearing message disagrees with in our captured trade."""
    return economics_breaks(trade_economics(trade), submission.economics())
