"""Orders and executions: their tables, the rows the order core's values become, and the queries
that read them back (start-up restore, the API, start-up recovery).

Rows are written by :class:`gateway.store.writer.Writer` in batches; readers that must see what
the FIX thread has just handed over flush it first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Column, Date, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from fixspec import messages as m
from fixspec.instruments import parse_symbol
from gateway.store.columns import decimal_column, utc_column
from otc.orders import TERMINAL, ClOrdIdUsed, Lookup, Order

QUERY_CHUNK = 500  # ids per IN (...) clause
FINISHED = sorted(s.value for s in TERMINAL)
# newest orders by creation time among which the highest OrderID is taken at start-up (a clock
# stepped back a little still finds it)
NEWEST_ORDERS = 1000
# finished orders and used ClOrdIDs the lookups answer from memory: far more than the writer
# holds uncommitted, so that a database stall does not stall lookups of what just happened
RECENT = 20_000


class OrderRow(SQLModel, table=True):
    __tablename__ = "orders"
    order_id: str = Field(primary_key=True)
    owner: str = Field(index=True)
    cl_ord_id: str = Field(index=True)
    orig_cl_ord_id: str | None = Field(default=None, index=True)
    symbol: str
    side: str
    ord_type: str
    time_in_force: str
    quantity: Decimal = decimal_column(nullable=False)
    price: Decimal | None = decimal_column(nullable=True)
    status: str = Field(index=True)  # start-up reads the open ones only
    cum_qty: Decimal = decimal_column(nullable=False)
    avg_px: Decimal = decimal_column(nullable=False)
    account: str | None = None
    text: str | None = None
    created_at: datetime = utc_column(nullable=False, index=True)
    updated_at: datetime = utc_column(nullable=False)


class ClOrdIdRow(SQLModel, table=True):
    """Every ClOrdID a client used, by trading day: the primary key is what makes a ClOrdID
    unique per client and day (the order core keeps only fixed-size filters of them)."""

    __tablename__ = "clordids"
    # the day first: start-up reads the last days' rows by the key alone
    trading_day: date = Field(sa_column=Column(Date, primary_key=True))
    owner: str = Field(primary_key=True)
    cl_ord_id: str = Field(primary_key=True)


class ExposureRow(SQLModel, table=True):
    """Per client, the notional of its finished orders: the part of its exposure that start-up
    takes from here rather than from every finished order."""

    __tablename__ = "finished_exposure"
    owner: str = Field(primary_key=True)
    notional: Decimal = decimal_column(nullable=False)
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
CLORDIDS = ClOrdIdRow.__table__
CLORDID_COLUMNS = ("trading_day", "owner", "cl_ord_id")
EXPOSURE = ExposureRow.__table__
EXPOSURE_COLUMNS = ("owner", "notional", "updated_at")

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
    """Every order (tests and tools; start-up reads :func:`load_open_orders`)."""
    with database.connect() as conn:
        rows = conn.execute(select(ORDERS)).mappings().all()
    return [order_from_row(OrderRow.model_validate(dict(r))) for r in rows]


def load_open_orders(database: Engine) -> list[Order]:
    """The orders not finished: what the order core holds. Finished ones stay here."""
    stmt = select(ORDERS).where(ORDERS.c.status.not_in(FINISHED))
    with database.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [order_from_row(OrderRow.model_validate(dict(r))) for r in rows]


def last_order_seq(database: Engine, prefix: str = "O") -> int:
    """The highest OrderID number among the newest orders (indexed: no scan of history)."""
    stmt = select(ORDERS.c.order_id).order_by(ORDERS.c.created_at.desc()).limit(NEWEST_ORDERS)
    with database.connect() as conn:
        ids = conn.execute(stmt).scalars().all()
    digits = (i.removeprefix(prefix) for i in ids)
    return max((int(d) for d in digits if d.isdigit()), default=0)


def finished_exposure(database: Engine) -> dict[str, Decimal]:
    with database.connect() as conn:
        rows = conn.execute(select(EXPOSURE.c.owner, EXPOSURE.c.notional)).all()
    return {owner: notional for owner, notional in rows}


def used_clordids(database: Engine, since: date) -> Iterator[ClOrdIdUsed]:
    """The ClOrdIDs used on trading days from ``since`` on (what the core's filters reload).
    Read through the driver: a day may hold millions, and typed rows cost several times more."""
    days: dict[object, date] = {}
    with database.connect() as conn:
        cursor = conn.exec_driver_sql(
            "SELECT owner, trading_day, cl_ord_id FROM clordids WHERE trading_day >= "
            + ("%(since)s" if conn.dialect.name == "postgresql" else ":since"),
            {"since": since if conn.dialect.name == "postgresql" else since.isoformat()},
        )
        while rows := cursor.fetchmany(10_000):
            for owner, day, cl_ord_id in rows:
                parsed = days.get(day)
                if parsed is None:
                    parsed = days[day] = day if isinstance(day, date) else date.fromisoformat(day)
                yield ClOrdIdUsed(owner, cl_ord_id, parsed)


class OrderHistory:
    """Answers the order core's lookups (:class:`otc.orders.Lookup`): from a bounded window of
    what the core finished or used most recently (which the writer may not have committed yet),
    else from the database after committing what the writer holds. Only asked when the core's
    own memory cannot answer, so the order path rarely waits on the database."""

    def __init__(self, database: Engine, writer: Flushable, recent: int = RECENT) -> None:
        self.database = database
        self.writer = writer
        self.recent = recent
        self._orders: OrderedDict[tuple[str, str], Order] = OrderedDict()
        self._used: OrderedDict[tuple[str, date, str], None] = OrderedDict()

    def finished(self, order: Order) -> None:
        """``order`` finished: the core no longer holds it."""
        for cid in (order.cl_ord_id, order.orig_cl_ord_id):
            if cid:
                self._orders[(order.owner, cid)] = order
        while len(self._orders) > self.recent:
            self._orders.popitem(last=False)

    def used_now(self, used: ClOrdIdUsed) -> None:
        self._used[(used.owner, used.trading_day, used.cl_ord_id)] = None
        if len(self._used) > self.recent:
            self._used.popitem(last=False)

    def used(self, lookup: Lookup) -> frozenset[str]:
        owner, day = lookup.owner, lookup.trading_day
        known = {c for c in lookup.cl_ord_ids if (owner, day, c) in self._used}
        ask = [c for c in lookup.cl_ord_ids if c not in known]
        if not ask:
            return frozenset(known)
        self.writer.flush()
        stmt = select(CLORDIDS.c.cl_ord_id).where(
            CLORDIDS.c.owner == owner,
            CLORDIDS.c.trading_day == day,
            CLORDIDS.c.cl_ord_id.in_(ask),
        )
        with self.database.connect() as conn:
            return frozenset(known | set(conn.execute(stmt).scalars()))

    def order(self, owner: str, cl_ord_id: str) -> Order | None:
        """The newest order of ``owner`` that ``cl_ord_id`` names (its own or its original)."""
        recent = self._orders.get((owner, cl_ord_id))
        if recent is not None:
            return recent
        self.writer.flush()
        stmt = (
            select(ORDERS)
            .where(
                ORDERS.c.owner == owner,
                or_(ORDERS.c.cl_ord_id == cl_ord_id, ORDERS.c.orig_cl_ord_id == cl_ord_id),
            )
            .order_by(ORDERS.c.updated_at.desc())
            .limit(1)
        )
        with self.database.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return order_from_row(OrderRow.model_validate(dict(row))) if row is not None else None


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


def insert_used_clordids(conn: Connection, rows: list[ClOrdIdUsed]) -> None:
    """Record ClOrdIDs as used (those already recorded are left alone)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(CLORDIDS).on_conflict_do_nothing()
    values = [
        {"owner": r.owner, "trading_day": r.trading_day, "cl_ord_id": r.cl_ord_id} for r in rows
    ]
    conn.execute(stmt, values)


def add_finished_exposure(conn: Connection, owner: str, notional: Decimal, at: datetime) -> None:
    """Add ``notional`` to ``owner``'s finished exposure (start-up recovery)."""
    held = conn.execute(select(EXPOSURE.c.notional).where(EXPOSURE.c.owner == owner)).scalar()
    if held is None:
        conn.execute(EXPOSURE.insert().values(owner=owner, notional=notional, updated_at=at))
    else:
        stmt = EXPOSURE.update().where(EXPOSURE.c.owner == owner)
        conn.execute(stmt.values(notional=held + notional, updated_at=at))


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
