"""Captured trades: the table (the full TradeCapture kept as JSON), capture in one transaction
with the trade's clearing message, and the reads behind GET /trades and the reconciliation.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Column, select
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from fixspec.instruments import parse_symbol
from fixspec.messages import Side
from gateway.jsonable import to_jsonable
from gateway.store.clearing import SqlOutbox, message_view
from gateway.store.columns import decimal_column, utc_column
from gateway.store.orders import Flushable
from otc.clearing import dispatcher as clearing_dispatch
from otc.clearing.model import ClearingFormatError
from otc.clearing.outbox import ClearingState
from otc.trades import (
    Allocation,
    DayCount,
    FxOptionTerms,
    IrsTerms,
    OptionStyle,
    Party,
    PartyRole,
    TradeCapture,
    TradeLeg,
)

log = logging.getLogger("fixbridge.clearing")
_TERM_ENUMS = {"DayCount": DayCount, "OptionStyle": OptionStyle}  # annotations are text here


class TradeRow(SQLModel, table=True):
    """A captured trade. The primary key makes capture exactly-once in storage too."""

    __tablename__ = "trades"
    trade_id: str = Field(primary_key=True)
    rfq_id: str | None = Field(default=None, index=True)
    quote_id: str | None = None
    client_id: str = Field(index=True)
    desk_id: str = Field(index=True)
    side: str
    quantity: Decimal = decimal_column(nullable=False)
    price: Decimal = decimal_column(nullable=False)
    currency: str
    trade_date: str
    executed_at: datetime = utc_column(nullable=False)
    record: dict = Field(sa_column=Column(JSON, nullable=False))  # the full TradeCapture


TRADES = TradeRow.__table__


def trade_row(trade: TradeCapture) -> dict[str, Any]:
    """A TradeCapture as a ``trades`` row (the full record kept as JSON)."""
    return {
        "trade_id": trade.trade_id,
        "rfq_id": trade.rfq_id,
        "quote_id": trade.quote_id,
        "client_id": trade.client.party_id,
        "desk_id": trade.desk.party_id,
        "side": trade.side.value,
        "quantity": trade.quantity,
        "price": trade.price,
        "currency": trade.currency,
        "trade_date": trade.trade_date.isoformat(),
        "executed_at": trade.executed_at,
        "record": to_jsonable(trade),
    }


def capture(database: Engine, trade: TradeCapture, now: datetime, clear: bool) -> bool:
    """Store ``trade`` and (with ``clear``) its clearing message in ONE transaction.
    Returns False if the trade was already stored (a replay): nothing is written twice."""
    with database.begin() as conn:
        exists = conn.execute(
            select(TRADES.c.trade_id).where(TRADES.c.trade_id == trade.trade_id)
        ).first()
        if exists:
            return False
        conn.execute(TRADES.insert(), [trade_row(trade)])
        if clear:
            try:
                clearing_dispatch.enqueue(SqlOutbox(database, conn), trade, now)
            except ClearingFormatError as exc:  # the trade stands; a human must clear it
                log.error("trade %s stored but not sent for clearing: %s", trade.trade_id, exc)
    return True


class TradeReader:
    """Reads trades back for the API, after committing what the writer still holds."""

    def __init__(self, database: Engine, writer: Flushable) -> None:
        self.database = database
        self.writer = writer

    def trades(self, desk_id: str | None, limit: int) -> list[dict[str, Any]]:
        self.writer.flush()
        t = TRADES
        stmt = select(t.c.record).order_by(t.c.executed_at.desc()).limit(limit)
        if desk_id is not None:
            stmt = stmt.where(t.c.desk_id == desk_id)
        with self.database.connect() as conn:
            return list(conn.execute(stmt).scalars())

    def trade(self, trade_id: str) -> dict[str, Any] | None:
        self.writer.flush()
        t = TRADES
        with self.database.connect() as conn:
            return conn.execute(select(t.c.record).where(t.c.trade_id == trade_id)).scalar()


def client_trades(
    database: Engine,
    client_ids: frozenset[str],
    *,
    trade_id: str | None = None,
    dates: tuple[date | None, date | None] = (None, None),
    times: tuple[datetime | None, datetime | None] = (None, None),
) -> list[dict[str, Any]]:
    """The records of ``client_ids``' trades, oldest first: optionally one trade, trade dates
    and execution times within inclusive bounds (None: open). Behind TradeCaptureReportRequest."""
    t = TRADES
    stmt = select(t.c.record).where(t.c.client_id.in_(sorted(client_ids)))
    if trade_id is not None:
        stmt = stmt.where(t.c.trade_id == trade_id)
    if dates[0] is not None:
        stmt = stmt.where(t.c.trade_date >= dates[0].isoformat())
    if dates[1] is not None:
        stmt = stmt.where(t.c.trade_date <= dates[1].isoformat())
    if times[0] is not None:
        stmt = stmt.where(t.c.executed_at >= times[0])
    if times[1] is not None:
        stmt = stmt.where(t.c.executed_at <= times[1])
    with database.connect() as conn:
        return list(conn.execute(stmt.order_by(t.c.executed_at, t.c.trade_id)).scalars())


class TradesWithClearing:
    """Trades read back from the database, each with its clearing messages' status."""

    def __init__(self, reader: TradeReader, repo: SqlOutbox) -> None:
        self.reader = reader
        self.repo = repo

    def _with_status(self, record: dict[str, Any]) -> dict[str, Any]:
        msgs = self.repo.for_trade(record["trade_id"])
        states = {m.state for m in msgs}
        status = (
            "not_cleared"
            if not msgs
            else "cleared"
            if states == {ClearingState.ACKED}
            else "rejected"
            if ClearingState.REJECTED in states
            else "failed"
            if ClearingState.FAILED in states
            else "pending"
        )
        return record | {"clearing_status": status, "clearing": [message_view(m) for m in msgs]}

    def trades(self, desk_id: str | None, limit: int) -> list[dict[str, Any]]:
        return [self._with_status(r) for r in self.reader.trades(desk_id, limit)]

    def trade(self, trade_id: str) -> dict[str, Any] | None:
        record = self.reader.trade(trade_id)
        return self._with_status(record) if record else None


def trade_from_record(record: dict[str, Any]) -> TradeCapture:
    """A TradeCapture back from its stored JSON record (listed instruments; classic OTC terms
    are rebuilt field by field)."""

    def party(p: dict | None) -> Party | None:
        if p is None:
            return None
        return Party(p["party_id"], PartyRole(p["role"]), p.get("name"), p.get("lei"))

    def product(p: dict):
        if "symbol" in p:
            return parse_symbol(p["symbol"])
        cls = IrsTerms if "fixed_rate" in p else FxOptionTerms
        hints = cls.__annotations__
        values = {}
        for name, value in p.items():
            kind = hints.get(name, "")
            if "Decimal" in kind:
                value = Decimal(value)
            elif kind.startswith("date"):
                value = date.fromisoformat(value)
            elif kind in _TERM_ENUMS:
                value = _TERM_ENUMS[kind](value)
            values[name] = value
        return cls(**values)

    def ts(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return TradeCapture(
        trade_id=record["trade_id"],
        side=Side(record["side"]),
        quantity=Decimal(record["quantity"]),
        price=Decimal(record["price"]),
        currency=record["currency"],
        legs=tuple(
            TradeLeg(
                leg["leg_no"],
                product(leg["product"]),
                Side(leg["side"]),
                Decimal(leg["quantity"]),
                Decimal(leg["price"]),
            )
            for leg in record["legs"]
        ),
        client=party(record["client"]),
        desk=party(record["desk"]),
        requested_at=ts(record["requested_at"]),
        quoted_at=ts(record["quoted_at"]),
        accepted_at=ts(record["accepted_at"]),
        executed_at=ts(record["executed_at"]),
        trade_date=date.fromisoformat(record["trade_date"]),
        rfq_id=record.get("rfq_id"),
        quote_id=record.get("quote_id"),
        clearing_house=party(record.get("clearing_house")),
        clearing_firm=party(record.get("clearing_firm")),
        label=record.get("label"),
        account=record.get("account"),
        allocations=tuple(
            Allocation(a["account"], Decimal(a["quantity"]), a.get("give_up_firm"))
            for a in record.get("allocations") or ()
        ),
    )


def trade_records(database: Engine) -> list[dict[str, Any]]:
    """Every stored trade's record, for reconciliation against a clearinghouse register."""
    with database.connect() as conn:
        return list(conn.execute(select(TRADES.c.record)).scalars().all())
