"""TradeCaptureReportRequest (AD): a client asks for its trades, read from the database.

The answer is a TradeCaptureReportRequestAck (AQ) saying how many reports follow
(TotNumTradeReports 748), then one TradeCaptureReport (AE) per trade, oldest first, each
carrying the request's TradeRequestID(568), TotNumTradeReports and PreviouslyReported(570)=Y
(it was reported when captured), the last one LastRptRequested(912)=Y. A request the gateway
cannot answer is an AQ with TradeRequestStatus(750)=2 (rejected), a TradeRequestResult(749)
and Text saying why, and no reports.

Criteria (FIX 4.4): TradeRequestType(569) 0 (all trades) or 1 (matched trades matching the
criteria; every trade here is matched), optionally narrowed by TradeReportID(571) and by
NoDates(580): one entry is a trade date (TradeDate 75) or a time from which (TransactTime 60),
two entries the inclusive start and end. A requester sees only its own trades; a drop copy
session its clients'. Snapshots only: SubscriptionRequestType(263) other than 0 is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Engine

from fixspec.codec import DecodeError, OutField, RawMessage, add_field, groups
from gateway.fix.rfq_fields import MULTILEG_SYMBOL, Outgoing, decode_timestamp
from gateway.fix.rfq_outbound import stored_trade_report
from gateway.store.trades import client_trades, trade_from_record
from otc.trades import TradeCapture

ACCEPTED, REJECTED = "0", "2"  # TradeRequestStatus(750)
SUCCESSFUL = "0"  # TradeRequestResult(749)
TYPE_NOT_SUPPORTED = "8"
OTHER = "99"
SUPPORTED_TYPES = frozenset({"0", "1"})
DATE_MEMBERS = frozenset({75, 60})
# criteria FIX 4.4 allows on AD that this gateway does not filter by: refused, not ignored
UNSUPPORTED_CRITERIA = {
    17: "ExecID",
    37: "OrderID",
    11: "ClOrdID",
    55: "Symbol",
    54: "Side",
    453: "Parties",
    818: "SecondaryTradeReportID",
    880: "TrdMatchID",
}


@dataclass(frozen=True, slots=True)
class TradeQuery:
    """What an AD asks for, beyond whose trades: bounds are inclusive, None is open."""

    trade_report_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None


class RequestRefused(Exception):
    """An AD the gateway answers with AQ 750=2: ``result`` is TradeRequestResult(749)."""

    def __init__(self, result: str, text: str) -> None:
        super().__init__(text)
        self.result = result
        self.text = text


def _trade_date(entry: RawMessage) -> date | None:
    text = entry.get(75)
    if text is None:
        return None
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError(text)
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise RequestRefused(OTHER, f"TradeDate(75) is not a date YYYYMMDD: {text!r}") from None


def decode_request(raw: RawMessage) -> TradeQuery:
    """The query an AD asks; raises :class:`RequestRefused` saying why it cannot be answered."""
    kind = raw.get(569)
    if kind not in SUPPORTED_TYPES:
        raise RequestRefused(
            TYPE_NOT_SUPPORTED,
            f"TradeRequestType(569) {kind!r} not supported: 0 (all trades) or 1 (matched)",
        )
    if raw.get(263) not in (None, "0"):
        raise RequestRefused(
            OTHER, f"SubscriptionRequestType(263) {raw.get(263)!r}: only snapshots (0) are served"
        )
    named = [f"{name}({tag})" for tag, name in UNSUPPORTED_CRITERIA.items() if raw.get(tag)]
    if named:
        raise RequestRefused(
            OTHER, f"criteria not supported: {', '.join(named)}; use TradeReportID(571) or NoDates"
        )
    try:
        entries = groups(raw, 580, DATE_MEMBERS)
        times = [decode_timestamp(e, 60, "TransactTime") for e in entries]
    except DecodeError as exc:
        raise RequestRefused(OTHER, str(exc)) from None
    if len(entries) > 2:
        raise RequestRefused(OTHER, f"NoDates(580) must be 1 or 2, got {len(entries)}")
    dates = [_trade_date(e) for e in entries]
    if any(d is None and t is None for d, t in zip(dates, times, strict=True)):
        raise RequestRefused(
            OTHER, "each NoDates(580) entry needs TradeDate(75) or TransactTime(60)"
        )
    query = TradeQuery(trade_report_id=raw.get(571))
    if len(entries) == 1:  # one trade date, or from a time on
        query = TradeQuery(query.trade_report_id, dates[0], dates[0], times[0], None)
    elif len(entries) == 2:
        query = TradeQuery(query.trade_report_id, dates[0], dates[1], times[0], times[1])
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise RequestRefused(OTHER, "NoDates(580): the start TradeDate is after the end")
    if query.time_from and query.time_to and query.time_from > query.time_to:
        raise RequestRefused(OTHER, "NoDates(580): the start TransactTime is after the end")
    return query


def ack(raw: RawMessage, status: str, result: str, total: int, text: str | None) -> Outgoing:
    """TradeCaptureReportRequestAck (AQ); FIX 4.4 requires an Instrument: [N/A] for many."""
    out: list[OutField] = [(568, raw.get(568) or "NONE"), (569, raw.get(569) or "0")]
    add_field(out, 263, raw.get(263))
    out += [(748, str(total)), (749, result), (750, status), (55, MULTILEG_SYMBOL)]
    add_field(out, 58, text)
    return "AQ", out


def reports(request_id: str, trades: list[TradeCapture]) -> list[Outgoing]:
    """One AE per trade, marked as the answer to ``request_id``; the last LastRptRequested=Y."""
    out: list[Outgoing] = []
    for i, trade in enumerate(trades):
        msg_type, fields = stored_trade_report(trade)
        body: list[OutField] = [(568, request_id), (748, str(len(trades)))]
        if i == len(trades) - 1:
            body.append((912, "Y"))
        body += [(tag, "Y") if tag == 570 else (tag, value) for tag, value in fields]
        out.append((msg_type, body))
    return out


# whose trades (CompIDs), what -> the trades, oldest first
TradeFinder = Callable[[frozenset[str], TradeQuery], list[TradeCapture]]


def stored_trades(database: Engine) -> TradeFinder:
    """The :data:`TradeFinder` over the ``trades`` table (never the negotiation's memory)."""

    def find(clients: frozenset[str], query: TradeQuery) -> list[TradeCapture]:
        records = client_trades(
            database,
            clients,
            trade_id=query.trade_report_id,
            dates=(query.date_from, query.date_to),
            times=(query.time_from, query.time_to),
        )
        return [trade_from_record(r) for r in records]

    return find


class TradeReports:
    """Answers ADs: ``find`` reads the database; ``clients_of`` says whose trades a requester
    sees (its own; a drop copy session's, its clients')."""

    def __init__(self, find: TradeFinder, clients_of: Callable[[str], frozenset[str]]) -> None:
        self.find = find
        self.clients_of = clients_of

    def answer(self, requester: str, raw: RawMessage) -> list[Outgoing]:
        try:
            query = decode_request(raw)
        except RequestRefused as refused:
            return [ack(raw, REJECTED, refused.result, 0, refused.text)]
        trades = self.find(self.clients_of(requester), query)
        request_id = raw.get(568) or "NONE"
        return [ack(raw, ACCEPTED, SUCCESSFUL, len(trades), None), *reports(request_id, trades)]
