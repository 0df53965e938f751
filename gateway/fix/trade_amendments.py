"""A correction or bust of a trade as the FIX messages its client receives.

FIX 4.4 says a changed fill twice: an ExecutionReport with ExecType(150) G (trade correct: the
corrected LastQty/LastPx) or H (trade cancel), whose ExecRefID(19) names the execution it changes;
and a TradeCaptureReport (AE) with TradeReportTransType(487) 2 (replace, TradeReportType 856=5
No/Was) or 1 (cancel, 856=6 Trade Report Cancel), whose TradeReportRefID(572) is the previous
version's TradeReportID(571). Both repeat the whole trade as it now stands. An allocation
changes no fill: it is told with the TradeCaptureReport (replace) alone.
"""

from __future__ import annotations

from decimal import Decimal

from fixspec import messages as m
from fixspec.codec import OutField, add_field
from gateway.fix.rfq_fields import MULTILEG_SYMBOL, Outgoing
from gateway.fix.rfq_outbound import (
    _execution_report,
    _leg_instrument,
    _trade_capture_report,
)
from otc.trade_versions import TradeVersion, VersionKind

TRANS_CANCEL = "1"  # TradeReportTransType(487)
TRANS_REPLACE = "2"
REPORT_NO_WAS = "5"  # TradeReportType(856)
REPORT_CANCEL = "6"


def amendment_messages(previous: TradeVersion, version: TradeVersion) -> list[Outgoing]:
    """The ExecutionReport (G or H) and the TradeCaptureReport of ``version``, which replaces
    or cancels ``previous``."""
    trade = version.trade
    bust = version.kind is VersionKind.BUST
    allocation = version.kind is VersionKind.ALLOCATION
    order_id = trade.quote_id or trade.trade_id
    exec_id = f"{trade.trade_id}-v{version.version}"
    symbol = MULTILEG_SYMBOL if trade.is_multileg else _leg_instrument(trade.legs[0]).symbol
    zero = Decimal(0)
    er = m.ExecutionReport(
        order_id=order_id,
        exec_id=exec_id,
        cl_ord_id="",  # not kept with the trade; optional in an ExecutionReport
        exec_type=m.ExecType.TRADE_CANCEL if bust else m.ExecType.TRADE_CORRECT,
        ord_status=m.OrdStatus.CANCELED if bust else m.OrdStatus.FILLED,
        symbol=symbol,
        side=trade.side,
        order_qty=trade.quantity,
        leaves_qty=zero,
        cum_qty=zero if bust else trade.quantity,
        avg_px=zero if bust else trade.price,
        ord_type=m.OrdType.PREVIOUSLY_QUOTED,
        last_qty=None if bust else trade.quantity,
        last_px=None if bust else trade.price,
        text=version.reason,
        transact_time=version.applied_at or version.proposed_at,
    )
    extra: list[OutField] = [(19, trade.trade_id)]  # ExecRefID: the original fill's ExecID
    add_field(extra, 1, trade.account)
    add_field(extra, 75, trade.trade_date)
    if trade.is_multileg:
        extra.append((442, "3"))
    report = _trade_capture_report(
        trade,
        order_id,
        None,
        report_id=version.report_id,
        trans_type=TRANS_CANCEL if bust else TRANS_REPLACE,
        report_type=REPORT_CANCEL if bust else REPORT_NO_WAS,
        ref_report_id=previous.report_id,
        exec_id=exec_id,
    )
    if allocation:  # the fill is unchanged: the client's AllocationInstructionAck says the rest
        return [("AE", report)]
    return [_execution_report(er, extra), ("AE", report)]
