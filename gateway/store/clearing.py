"""The clearing outbox table: :class:`SqlOutbox` is ``otc.clearing.outbox.OutboxRepository`` on
SQLModel (SQLite or PostgreSQL), with compare-and-set on ``revision`` so two dispatchers never
both send one message. The outbox state machine, renderers and senders live in ``otc.clearing``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, and_, func, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from gateway.store.columns import utc_column
from otc.clearing.model import ClearingFormat
from otc.clearing.outbox import (
    ClearingMessage,
    ClearingState,
    DuplicateMessage,
    StaleMessage,
    list_exceptions,
)


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


def _row(msg: ClearingMessage) -> dict[str, Any]:
    return {
        "key": msg.key,
        "trade_id": msg.trade_id,
        "fmt": msg.fmt.value,
        "body": msg.body,
        "state": msg.state.value,
        "created_at": msg.created_at,
        "updated_at": msg.updated_at,
        "next_attempt_at": msg.next_attempt_at,
        "attempts": msg.attempts,
        "status_queries": msg.status_queries,
        "ack_deadline": msg.ack_deadline,
        "last_error": msg.last_error,
        "reject_reason": msg.reject_reason,
        "clearing_trade_ids": list(msg.clearing_trade_ids),
        "revision": msg.revision,
        "history": [[t.isoformat(), s.value, note] for t, s, note in msg.history],
    }


def _message(r: Any) -> ClearingMessage:
    return ClearingMessage(
        key=r["key"],
        trade_id=r["trade_id"],
        fmt=ClearingFormat(r["fmt"]),
        body=bytes(r["body"]),
        state=ClearingState(r["state"]),
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        next_attempt_at=r["next_attempt_at"],
        attempts=r["attempts"],
        status_queries=r["status_queries"],
        ack_deadline=r["ack_deadline"],
        last_error=r["last_error"],
        reject_reason=r["reject_reason"],
        clearing_trade_ids=tuple(r["clearing_trade_ids"] or ()),
        revision=r["revision"],
        history=tuple(
            (datetime.fromisoformat(t), ClearingState(s), n) for t, s, n in r["history"] or ()
        ),
    )


class SqlOutbox:
    """``otc.clearing.outbox.OutboxRepository`` on SQLModel (SQLite or PostgreSQL)."""

    def __init__(self, database: Engine, conn: Connection | None = None) -> None:
        self.database = database
        self.conn = conn  # set: add() joins that transaction (the trade's)

    def add(self, msg: ClearingMessage) -> None:
        if self.get(msg.key) is not None:
            raise DuplicateMessage(f"clearing message {msg.key} already queued")
        if self.conn is not None:
            self.conn.execute(TABLE.insert(), [_row(msg)])
        else:
            with self.database.begin() as conn:
                conn.execute(TABLE.insert(), [_row(msg)])

    def get(self, key: str) -> ClearingMessage | None:
        stmt = select(TABLE).where(TABLE.c.key == key)
        if self.conn is not None:
            r = self.conn.execute(stmt).mappings().first()
        else:
            with self.database.connect() as conn:
                r = conn.execute(stmt).mappings().first()
        return _message(r) if r else None

    def update(self, msg: ClearingMessage) -> None:
        row = _row(msg)
        with self.database.begin() as conn:
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
            .where(
                or_(
                    and_(TABLE.c.state.in_(waiting), TABLE.c.next_attempt_at <= now),
                    and_(TABLE.c.state == ClearingState.SENT.value, TABLE.c.ack_deadline <= now),
                )
            )
            .order_by(TABLE.c.created_at)
            .limit(limit)
        )
        with self.database.connect() as conn:
            return [_message(r) for r in conn.execute(stmt).mappings()]

    def in_states(self, states: Collection[ClearingState]) -> list[ClearingMessage]:
        stmt = select(TABLE).where(TABLE.c.state.in_([s.value for s in states]))
        with self.database.connect() as conn:
            return [_message(r) for r in conn.execute(stmt).mappings()]

    def held(self) -> list[ClearingMessage]:
        """Later versions waiting for their trade's earlier messages (PENDING, never due)."""
        stmt = (
            select(TABLE)
            .where(
                and_(
                    TABLE.c.state == ClearingState.PENDING.value,
                    TABLE.c.next_attempt_at.is_(None),
                )
            )
            .order_by(TABLE.c.created_at)
        )
        with self.database.connect() as conn:
            return [_message(r) for r in conn.execute(stmt).mappings()]

    def counts(self) -> dict[str, int]:
        """Messages by state (states with none are absent)."""
        stmt = select(TABLE.c.state, func.count()).group_by(TABLE.c.state)
        with self.database.connect() as conn:
            return {state: n for state, n in conn.execute(stmt)}

    def for_trade(self, trade_id: str) -> list[ClearingMessage]:
        stmt = select(TABLE).where(TABLE.c.trade_id == trade_id).order_by(TABLE.c.created_at)
        with self.database.connect() as conn:
            return [_message(r) for r in conn.execute(stmt).mappings()]


def message_view(msg: ClearingMessage) -> dict[str, Any]:
    """A clearing message as the API shows it and the audit trail records its changes."""
    return {
        "key": msg.key,
        "trade_id": msg.trade_id,
        "format": msg.fmt.value,
        "state": msg.state.value,
        "attempts": msg.attempts,
        "last_error": msg.last_error,
        "reject_reason": msg.reject_reason,
        "clearing_trade_ids": list(msg.clearing_trade_ids),
        "updated_at": msg.updated_at.isoformat(),
    }


def exceptions_view(repo: SqlOutbox) -> list[dict[str, Any]]:
    """Rejected and given-up messages: not retried, they need a human."""
    return [
        {
            "key": e.key,
            "trade_id": e.trade_id,
            "format": e.fmt.value,
            "state": e.state.value,
            "reason": e.reason,
            "attempts": e.attempts,
            "updated_at": e.updated_at.isoformat(),
        }
        for e in list_exceptions(repo)
    ]
