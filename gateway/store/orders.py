"""Orders and executions: their tables, the rows the order core's values become, and the queries
that read them back (start-up restore, the API, start-up recovery).

Rows are written by :class:`gateway.store.writer.Writer` in batches; readers that must see what
the FIX thread has just handed over flush it first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from fixspec import messages as m
from fixspec.instruments import parse_symbol
from gateway.store.columns import decimal_column, utc_column
from otc.orders import Order

QUERY_CHUNK = 500  # ids per IN (...) clause


class OrderRow(SQLModel, table=True):
    __tablename__ = "orders"
    order_id: str = Field(primary_key=True)
    owner: str = Field(index=True)
    cl_ord_id: str = Field(index=True)
    orig_cl_ord_id: str | None = None
    symbol: str
    side: str
    ord_type: str
    time_in_force: str
    quantity: Decimal = decimal_column(nullable=False)
    price: Decimal | None = decimal_column(nullable=True)
    status: str
    cum_qty: Decimal = decimal_column(nullable=False)
    avg_px: Decimal = decimal_column(nullable=False)
    account: str | None = None
    text: str | None = None
    created_at: datetime = utc_column(nullable=False)
    updated_at: datetime = utc_column(nullable=False)


class ExecutionRow(SQLModel, table=True):
    __tablename__ = "executions"
    exec_id: str = Field(primary_key=True)
    seq: int = Field(index=True)
    order_id: str = Field(index=True)
    owner: str = Field(index=True)
    cl_ord_id: str
    exec_type: str
    ord_status: str
    symbol: str
    side: str
    last_qty: Decimal | None = decimal_column(nullable=True)
    last_px: Decimal | None = decimal_column(nullable=True)
    cum_qty: Decimal = decimal_column(nullable=False)
    leaves_qty: Decimal = decimal_column(nullable=False)
    avg_px: Decimal = decimal_column(nullable=False)
    ord_rej_reason: str | None = None
    text: str | None = None
    transact_time: datetime = utc_column(nullable=False)


ORDERS = OrderRow.__table__
EXECUTIONS = ExecutionRow.__table__

# The writer binds plain tuples in this column order (see gateway.store.writer)
ORDER_COLUMNS = (
    "order_id",
    "owner",
    "cl_ord_id",
    "orig_cl_ord_id",
    "symbol",
    "side",
    "ord_type",
    "time_in_force",
    "quantity",
    "price",
    "status",
    "cum_qty",
    "avg_px",
    "account",
    "text",
    "created_at",
    "updated_at",
)
EXECUTION_COLUMNS = (
    "exec_id",
    "seq",
    "order_id",
    "owner",
    "cl_ord_id",
    "exec_type",
    "ord_status",
    "symbol",
    "side",
    "last_qty",
    "last_px",
    "cum_qty",
    "leaves_qty",
    "avg_px",
    "ord_rej_reason",
    "text",
    "transact_time",
)
for _table, _columns in ((ORDERS, ORDER_COLUMNS), (EXECUTIONS, EXECUTION_COLUMNS)):
    # the writer's plain SQL must name every column the tables have
    assert set(_columns) == {c.name for c in _table.columns}, _table.name


# --- mapping ---------------------------------------------------------------------------------


def order_row(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "owner": order.owner,
        "cl_ord_id": order.cl_ord_id,
        "orig_cl_ord_id": order.orig_cl_ord_id,
        "symbol": order.instrument.symbol,
        "side": order.side.value,
        "ord_type": order.ord_type.value,
        "time_in_force": order.time_in_force.value,
        "quantity": order.quantity,
        "price": order.price,
        "status": order.status.value,
        "cum_qty": order.cum_qty,
        "avg_px": order.avg_px,
        "account": order.account,
        "text": order.text,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def order_from_row(row: OrderRow) -> Order:
    return Order(
        order_id=row.order_id,
        owner=row.owner,
        cl_ord_id=row.cl_ord_id,
        orig_cl_ord_id=row.orig_cl_ord_id,
        instrument=parse_symbol(row.symbol),
        side=m.Side(row.side),
        ord_type=m.OrdType(row.ord_type),
        time_in_force=m.TimeInForce(row.time_in_force),
        quantity=row.quantity,
        price=row.price,
        status=m.OrdStatus(row.status),
        cum_qty=row.cum_qty,
        avg_px=row.avg_px,
        account=row.account,
        text=row.text,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def execution_row(owner: str, er: m.ExecutionReport) -> dict[str, Any]:
    digits = er.exec_id.rsplit("E", 1)[-1]
    return {
        "exec_id": er.exec_id,
        "seq": int(digits) if digits.isdigit() else 0,
        "order_id": er.order_id,
        "owner": owner,
        "cl_ord_id": er.cl_ord_id,
        "exec_type": er.exec_type.value,
        "ord_status": er.ord_status.value,
        "symbol": er.symbol,
        "side": er.side.value,
        "last_qty": er.last_qty,
        "last_px": er.last_px,
        "cum_qty": er.cum_qty,
        "leaves_qty": er.leaves_qty,
        "avg_px": er.avg_px,
        "ord_rej_reason": er.ord_rej_reason.value if er.ord_rej_reason else None,
        "text": er.text,
        "transact_time": er.transact_time,
    }


# --- start-up restore ------------------------------------------------------------------------


def load_orders(database: Engine) -> list[Order]:
    with database.connect() as conn:
        rows = conn.execute(select(ORDERS)).mappings().all()
    return [order_from_row(OrderRow.model_validate(dict(r))) for r in rows]


def last_exec_seq(database: Engine) -> int:
    with database.connect() as conn:
        return conn.execute(select(func.max(ExecutionRow.seq))).scalar() or 0


# --- the API ---------------------------------------------------------------------------------


class Flushable(Protocol):
    """What a reader waits on before it reads: the writer holding the FIX thread's records."""

    def flush(self, timeout: float = 10.0) -> bool: ...


class OrderReader:
    """Orders for the API, read after committing what the writer still holds."""

    def __init__(self, database: Engine, writer: Flushable) -> None:
        self.database = database
        self.writer = writer

    def orders(self, owner: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
        """Newest first; filtered by client CompID (owner) and OrdStatus code."""
        self.writer.flush()
        stmt = select(ORDERS).order_by(ORDERS.c.created_at.desc()).limit(limit)
        if owner:
            stmt = stmt.where(ORDERS.c.owner == owner)
        if status:
            stmt = stmt.where(ORDERS.c.status == status)
        with self.database.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def order(self, order_id: str) -> dict[str, Any] | None:
        self.writer.flush()
        stmt = select(ORDERS).where(ORDERS.c.order_id == order_id)
        with self.database.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return dict(row) if row is not None else None


# --- start-up recovery (gateway.recovery), inside its transaction ----------------------------


def known_exec_ids(conn: Connection, exec_ids: Iterable[str]) -> set[str]:
    """Which of ``exec_ids`` the executions table holds."""
    ids = sorted(exec_ids)
    known: set[str] = set()
    column = EXECUTIONS.c.exec_id
    for start in range(0, len(ids), QUERY_CHUNK):
        chunk = ids[start : start + QUERY_CHUNK]
        known.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
    return known


def insert_executions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(EXECUTIONS.insert(), rows)


def stored_order(conn: Connection, order_id: str) -> Order | None:
    row = conn.execute(select(ORDERS).where(ORDERS.c.order_id == order_id)).mappings().first()
    return order_from_row(OrderRow.model_validate(dict(row))) if row is not None else None


def put_order(conn: Connection, order: Order, exists: bool) -> None:
    """Insert ``order``, or (``exists``) replace its row."""
    values = order_row(order)
    if exists:
        conn.execute(ORDERS.update().where(ORDERS.c.order_id == order.order_id).values(**values))
    else:
        conn.execute(ORDERS.insert().values(**values))
