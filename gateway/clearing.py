"""The clearing bridge's edge: the outbox table, trade capture in one transaction with its
clearing message, and the worker thread that delivers, retries and applies answers.

The outbox state machine, renderers and senders live in ``otc.clearing``; this module is the
SQL repository behind them (compare-and-set on ``revision``, so two dispatchers never both
send one message) and the wiring.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import JSON, Column, LargeBinary, and_, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from gateway.db import TradeRow, trade_row, utc_column
from otc.clearing import dispatcher as clearing_dispatch
from otc.clearing.model import ClearingFormat, ClearingFormatError
from otc.clearing.outbox import (
    ClearingMessage,
    ClearingState,
    DuplicateMessage,
    StaleMessage,
    list_exceptions,
)
from otc.trades import TradeCapture

log = logging.getLogger("fixbridge.clearing")


class ClearingMessageRow(SQLModel, table=True):
    __tablename__ = "clearing_messages"
    key: str = Field(primary_key=True)
    trade_id: str = Field(index=True)
    fmt: str
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    state: str = Field(index=True)
    created_at: datetime = utc_column(nullable=False)
    updated_at: datetime = utc_column(nullable=False)
    next_attempt_at: datetime | None = utc_column(nullable=True)
    attempts: int = 0
    status_queries: int = 0
    ack_deadline: datetime | None = utc_column(nullable=True)
    last_error: str | None = None
    reject_reason: str | None = None
    clearing_trade_ids: list = Field(default_factory=list, sa_column=Column(JSON))
    revision: int = 0
    history: list = Field(default_factory=list, sa_column=Column(JSON))


TABLE = ClearingMessageRow.__table__


def _row(msg: ClearingMessage) -> dict:
    return {
        "key": msg.key, "trade_id": msg.trade_id, "fmt": msg.fmt.value, "body": msg.body,
        "state": msg.state.value, "created_at": msg.created_at, "updated_at": msg.updated_at,
        "next_attempt_at": msg.next_attempt_at, "attempts": msg.attempts,
        "status_queries": msg.status_queries, "ack_deadline": msg.ack_deadline,
        "last_error": msg.last_error, "reject_reason": msg.reject_reason,
        "clearing_trade_ids": list(msg.clearing_trade_ids), "revision": msg.revision,
        "history": [[t.isoformat(), s.value, note] for t, s, note in msg.history],
    }


def _message(r) -> ClearingMessage:
    return ClearingMessage(
        key=r["key"], trade_id=r["trade_id"], fmt=ClearingFormat(r["fmt"]), body=bytes(r["body"]),
        state=ClearingState(r["state"]), created_at=r["created_at"], updated_at=r["updated_at"],
        next_attempt_at=r["next_attempt_at"], attempts=r["attempts"],
        status_queries=r["status_queries"], ack_deadline=r["ack_deadline"],
        last_error=r["last_error"], reject_reason=r["reject_reason"],
        clearing_trade_ids=tuple(r["clearing_trade_ids"] or ()), revision=r["revision"],
        history=tuple((datetime.fromisoformat(t), ClearingState(s), n)
                      for t, s, n in r["history"] or ()),
    )


class SqlOutbox:
    """``otc.clearing.outbox.OutboxRepository`` on SQLModel (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, conn: Connection | None = None) -> None:
        self.engine = engine
        self.conn = conn  # set: add() joins that transaction (the trade's)

    def add(self, msg: ClearingMessage) -> None:
        if self.get(msg.key) is not None:
            raise DuplicateMessage(f"clearing message {msg.key} already queued")
        if self.conn is not None:
            self.conn.execute(TABLE.insert(), [_row(msg)])
        else:
            with self.engine.begin() as conn:
                conn.execute(TABLE.insert(), [_row(msg)])

    def get(self, key: str) -> ClearingMessage | None:
        stmt = select(TABLE).where(TABLE.c.key == key)
        if self.conn is not None:
            r = self.conn.execute(stmt).mappings().first()
        else:
            with self.engine.connect() as conn:
                r = conn.execute(stmt).mappings().first()
        return _message(r) if r else None

    def update(self, msg: ClearingMessage) -> None:
        row = _row(msg)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(TABLE)
                .where(and_(TABLE.c.key == msg.key, TABLE.c.revision == msg.revision - 1))
                .values(**{k: v for k, v in row.items() if k != "key"})
            ).rowcount
        if done != 1:
            stored = self.get(msg.key)
            if stored is None:
                raise KeyError(f"clearing message {msg.key} not in outbox")
            if stored != msg:
                raise StaleMessage(f"clearing message {msg.key} changed under us")

    def due(self, now: datetime, limit: int) -> list[ClearingMessage]:
        waiting = (ClearingState.PENDING.value, ClearingState.UNKNOWN.value)
        stmt = (
            select(TABLE)
            .where(or_(
                and_(TABLE.c.state.in_(waiting), TABLE.c.next_attempt_at <= now),
                and_(TABLE.c.state == ClearingState.SENT.value, TABLE.c.ack_deadline <= now),
            ))
            .order_by(TABLE.c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_message(r) for r in conn.execute(stmt).mappings()]

    def in_states(self, states: Collection[ClearingState]) -> list[ClearingMessage]:
        stmt = select(TABLE).where(TABLE.c.state.in_([s.value for s in states]))
        with self.engine.connect() as conn:
            return [_message(r) for r in conn.execute(stmt).mappings()]

    def for_trade(self, trade_id: str) -> list[ClearingMessage]:
        stmt = select(TABLE).where(TABLE.c.trade_id == trade_id).order_by(TABLE.c.created_at)
        with self.engine.connect() as conn:
            return [_message(r) for r in conn.execute(stmt).mappings()]


def capture(engine: Engine, trade: TradeCapture, now: datetime, clear: bool) -> bool:
    """Store ``trade`` and (with ``clear``) its clearing message in ONE transaction.
    Returns False if the trade was already stored (a replay): nothing is written twice."""
    with engine.begin() as conn:
        exists = conn.execute(
            select(TradeRow.__table__.c.trade_id).where(
                TradeRow.__table__.c.trade_id == trade.trade_id)
        ).first()
        if exists:
            return False
        conn.execute(TradeRow.__table__.insert(), [trade_row(trade)])
        if clear:
            try:
                clearing_dispatch.enqueue(SqlOutbox(engine, conn), trade, now)
            except ClearingFormatError as exc:  # the trade stands; a human must clear it
                log.error("trade %s stored but not sent for clearing: %s", trade.trade_id, exc)
    return True


def message_view(msg: ClearingMessage) -> dict:
    return {
        "key": msg.key, "trade_id": msg.trade_id, "format": msg.fmt.value,
        "state": msg.state.value, "attempts": msg.attempts, "last_error": msg.last_error,
        "reject_reason": msg.reject_reason, "clearing_trade_ids": list(msg.clearing_trade_ids),
        "updated_at": msg.updated_at.isoformat(),
    }


def exceptions_view(repo: SqlOutbox) -> list[dict]:
    return [
        {"key": e.key, "trade_id": e.trade_id, "format": e.fmt.value, "state": e.state.value,
         "reason": e.reason, "attempts": e.attempts, "updated_at": e.updated_at.isoformat()}
        for e in list_exceptions(repo)
    ]


class ClearingWorker:
    """Runs the dispatcher every ``interval`` seconds on its own thread."""

    def __init__(self, dispatcher, interval: float = 0.2, on_change=None) -> None:
        self.dispatcher = dispatcher
        self.interval = interval
        self.on_change = on_change or (lambda msg: None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clearing", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                for msg in self.dispatcher.run_once():
                    self.on_change(msg)
            except Exception:  # keep delivering; the failure is logged and retried next tick
                log.exception("clearing dispatcher pass failed")


class TradesWithClearing:
    """Trades read back from the database, each with its clearing messages' status."""

    def __init__(self, reader, repo: SqlOutbox) -> None:
        self.reader = reader
        self.repo = repo

    def _with_status(self, record: dict) -> dict:
        msgs = self.repo.for_trade(record["trade_id"])
        states = {m.state for m in msgs}
        status = (
            "not_cleared" if not msgs
            else "cleared" if states == {ClearingState.ACKED}
            else "rejected" if ClearingState.REJECTED in states
            else "failed" if ClearingState.FAILED in states
            else "pending"
        )
        return record | {"clearing_status": status,
                         "clearing": [message_view(m) for m in msgs]}

    def trades(self, desk_id: str | None, limit: int) -> list[dict]:
        return [self._with_status(r) for r in self.reader.trades(desk_id, limit)]

    def trade(self, trade_id: str) -> dict | None:
        record = self.reader.trade(trade_id)
        return self._with_status(record) if record else None



def trade_from_record(record: dict) -> TradeCapture:
    """A TradeCapture back from its stored JSON record (listed instruments; classic OTC terms
    are rebuilt field by field)."""
    from datetime import date
    from decimal import Decimal

    from fixspec.instruments import parse_symbol
    from fixspec.messages import Side
    from otc.trades import FxOptionTerms, IrsTerms, Party, PartyRole, TradeLeg

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
            values[name] = value
        return cls(**values)

    def ts(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return TradeCapture(
        trade_id=record["trade_id"], side=Side(record["side"]),
        quantity=Decimal(record["quantity"]), price=Decimal(record["price"]),
        currency=record["currency"],
        legs=tuple(TradeLeg(leg["leg_no"], product(leg["product"]), Side(leg["side"]),
                            Decimal(leg["quantity"]), Decimal(leg["price"]))
                   for leg in record["legs"]),
        client=party(record["client"]), desk=party(record["desk"]),
        requested_at=ts(record["requested_at"]), quoted_at=ts(record["quoted_at"]),
        accepted_at=ts(record["accepted_at"]), executed_at=ts(record["executed_at"]),
        trade_date=date.fromisoformat(record["trade_date"]),
        rfq_id=record.get("rfq_id"), quote_id=record.get("quote_id"),
        clearing_house=party(record.get("clearing_house")),
        clearing_firm=party(record.get("clearing_firm")),
    )
