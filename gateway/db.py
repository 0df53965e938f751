"""Persistence: orders, executions and session events in SQLModel tables.

The FIX thread never waits on the database: it hands records to :class:`Writer`, whose thread
commits them in batches (one transaction per batch, so a crash leaves whole batches or nothing).
The same code runs on SQLite (the default, in the data directory) and PostgreSQL.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import JSON, Column, Numeric, String, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel, create_engine

from fixspec import messages as m
from fixspec.instruments import parse_symbol
from otc.orders import Order

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1


class ExactDecimal(TypeDecorator):
    """Decimal stored exactly: NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC is a float)."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(38, 12))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return value if dialect.name == "postgresql" else format(value, "f")

    def process_result_value(self, value, dialect):
        return None if value is None else m.plain(Decimal(value))


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, microseconds kept on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dec(**kw):
    return Field(sa_column=Column(ExactDecimal(), **kw))


def utc_column(**kw):
    """A model field stored as :class:`UtcDateTime`."""
    return Field(sa_column=Column(UtcDateTime(), **kw))


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
    quantity: Decimal = _dec(nullable=False)
    price: Decimal | None = _dec(nullable=True)
    status: str
    cum_qty: Decimal = _dec(nullable=False)
    avg_px: Decimal = _dec(nullable=False)
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
    last_qty: Decimal | None = _dec(nullable=True)
    last_px: Decimal | None = _dec(nullable=True)
    cum_qty: Decimal = _dec(nullable=False)
    leaves_qty: Decimal = _dec(nullable=False)
    avg_px: Decimal = _dec(nullable=False)
    ord_rej_reason: str | None = None
    text: str | None = None
    transact_time: datetime = utc_column(nullable=False)


class SessionEventRow(SQLModel, table=True):
    __tablename__ = "session_events"
    id: int | None = Field(default=None, primary_key=True)
    comp_id: str = Field(index=True)
    event: str
    peer: str | None = None
    text: str | None = None
    at: datetime = utc_column(nullable=False)


class TradeRow(SQLModel, table=True):
    """A captured trade. The primary key makes capture exactly-once in storage too."""

    __tablename__ = "trades"
    trade_id: str = Field(primary_key=True)
    rfq_id: str | None = Field(default=None, index=True)
    quote_id: str | None = None
    client_id: str = Field(index=True)
    desk_id: str = Field(index=True)
    side: str
    quantity: Decimal = _dec(nullable=False)
    price: Decimal = _dec(nullable=False)
    currency: str
    trade_date: str
    executed_at: datetime = utc_column(nullable=False)
    record: dict = Field(sa_column=Column(JSON, nullable=False))  # the full TradeCapture


class SchemaVersionRow(SQLModel, table=True):
    __tablename__ = "schema_version"
    version: int = Field(primary_key=True)
    applied_at: datetime = utc_column(nullable=False)


# Each migration takes the schema from version N-1 to N. Version 1 is the initial schema.
MIGRATIONS: dict[int, list[str]] = {1: []}


def connect(url: str) -> Engine:
    """An engine with the schema created or migrated to :data:`SCHEMA_VERSION`."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # WAL: readers never block the writer
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    migrate(engine)
    return engine


def migrate(engine: Engine) -> int:
    SQLModel.metadata.create_all(engine)
    with engine.begin() as conn:
        current = conn.execute(select(func.max(SchemaVersionRow.version))).scalar() or 0
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                conn.execute(text(statement))
            conn.execute(
                SchemaVersionRow.__table__.insert().values(
                    version=version, applied_at=datetime.now(UTC)
                )
            )
            log.info("database schema migrated to version %d", version)
    return SCHEMA_VERSION


# --- mapping ---------------------------------------------------------------------------------


def order_row(order: Order) -> dict:
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


def execution_row(owner: str, er: m.ExecutionReport) -> dict:
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


@dataclass(frozen=True, slots=True)
class SessionEvent:
    comp_id: str
    event: str
    peer: str | None
    text: str | None
    at: datetime


# --- writer ----------------------------------------------------------------------------------

ORDER_COLUMNS = (
    "order_id", "owner", "cl_ord_id", "orig_cl_ord_id", "symbol", "side", "ord_type",
    "time_in_force", "quantity", "price", "status", "cum_qty", "avg_px", "account", "text",
    "created_at", "updated_at",
)
EXECUTION_COLUMNS = (
    "exec_id", "seq", "order_id", "owner", "cl_ord_id", "exec_type", "ord_status", "symbol",
    "side", "last_qty", "last_px", "cum_qty", "leaves_qty", "avg_px", "ord_rej_reason", "text",
    "transact_time",
)
SESSION_EVENT_COLUMNS = ("comp_id", "event", "peer", "text", "at")
for _table, _columns in (
    (OrderRow.__table__, ORDER_COLUMNS),
    (ExecutionRow.__table__, EXECUTION_COLUMNS),
    (SessionEventRow.__table__, SESSION_EVENT_COLUMNS + ("id",)),
):  # the writer's plain SQL must name every column the tables have
    assert set(_columns) == {c.name for c in _table.columns}, _table.name


def _insert_sql(table: str, columns: tuple[str, ...], mark: str, conflict: str) -> str:
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))}) {conflict}"
    )


def _sqlite_decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _sqlite_time(value: datetime) -> str:
    """What SQLAlchemy's SQLite DateTime stores: naive UTC text, always with microseconds."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _same(value):
    return value


class Writer:
    """Commits order snapshots, executions and session events in batches on its own thread.

    Durability window: a record handed to the writer is committed within ``linger`` seconds
    (default 10 ms) plus one commit's time. The writer sleeps that long after the first record
    of a batch so that one transaction carries many records (a commit per order costs several
    times the per-row work); :meth:`flush` and :meth:`close` cut the wait short, and nothing
    queued is ever dropped: a failed batch is retried whole. Rows are bound as plain tuples
    through the DBAPI driver's ``executemany`` (the per-row work of SQLAlchemy's typed binds
    dominated the writer's cost), converted exactly as the ``ExactDecimal`` and
    ``UtcDateTime`` column types convert them, so reads through SQLAlchemy see the same values.
    """

    def __init__(self, engine: Engine, max_batch: int = 2000, linger: float = 0.010) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.linger = linger
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._urgent = threading.Event()  # a flush or close is waiting: stop lingering
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._stopping = False
        self.failures = 0
        dialect = engine.dialect.name
        sqlite_dialect = dialect == "sqlite"
        self._dec = _sqlite_decimal if sqlite_dialect else _same
        self._time = _sqlite_time if sqlite_dialect else _same
        mark = "?" if engine.dialect.dbapi.paramstyle == "qmark" else "%s"
        updates = ", ".join(f"{c} = excluded.{c}" for c in ORDER_COLUMNS[1:])
        self._order_sql = _insert_sql(
            "orders", ORDER_COLUMNS, mark, f"ON CONFLICT (order_id) DO UPDATE SET {updates}"
        )
        self._exec_sql = _insert_sql(
            "executions", EXECUTION_COLUMNS, mark, "ON CONFLICT (exec_id) DO NOTHING"
        )
        self._session_sql = _insert_sql("session_events", SESSION_EVENT_COLUMNS, mark, "")
        self._trade_insert = (postgresql if dialect == "postgresql" else sqlite).insert(
            TradeRow.__table__
        ).on_conflict_do_nothing(index_elements=["trade_id"])
        self._thread.start()

    def order(self, order: Order) -> None:
        self._q.put(("order", order))

    def execution(self, owner: str, er: m.ExecutionReport) -> None:
        self._q.put(("exec", (owner, er)))

    def session_event(self, ev: SessionEvent) -> None:
        self._q.put(("session", ev))

    def trade(self, row: dict) -> None:
        self._q.put(("trade", row))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued before this call is committed."""
        done = threading.Event()
        self._q.put(("flush", done))
        self._urgent.set()
        return done.wait(timeout)

    def close(self) -> None:
        self.flush()
        self._stopping = True
        self._q.put(("stop", None))
        self._urgent.set()
        self._thread.join(10)

    def _run(self) -> None:
        q, urgent = self._q, self._urgent
        full = False
        while True:
            batch = [q.get()]
            if not full and batch[0][0] not in ("flush", "stop") and not urgent.is_set():
                urgent.wait(self.linger)  # let the batch grow; a flush or close wakes us
            urgent.clear()
            while len(batch) < self.max_batch:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            full = len(batch) >= self.max_batch  # more is waiting: do not linger next time
            self._commit(batch)
            for kind, item in batch:
                if kind == "flush":
                    item.set()
            if any(kind == "stop" for kind, _ in batch):
                return

    def _order_values(self, o: Order) -> tuple:
        dec, ts = self._dec, self._time
        return (
            o.order_id, o.owner, o.cl_ord_id, o.orig_cl_ord_id, o.instrument.symbol,
            o.side.value, o.ord_type.value, o.time_in_force.value, dec(o.quantity),
            dec(o.price), o.status.value, dec(o.cum_qty), dec(o.avg_px), o.account, o.text,
            ts(o.created_at), ts(o.updated_at),
        )

    def _execution_values(self, owner: str, er: m.ExecutionReport) -> tuple:
        dec = self._dec
        digits = er.exec_id.rsplit("E", 1)[-1]
        return (
            er.exec_id, int(digits) if digits.isdigit() else 0, er.order_id, owner,
            er.cl_ord_id, er.exec_type.value, er.ord_status.value, er.symbol, er.side.value,
            dec(er.last_qty), dec(er.last_px), dec(er.cum_qty), dec(er.leaves_qty),
            dec(er.avg_px), er.ord_rej_reason.value if er.ord_rej_reason else None, er.text,
            self._time(er.transact_time),
        )

    def _commit(self, batch: Iterable[tuple[str, object]]) -> None:
        latest: dict[str, Order] = {}
        execs: list[tuple] = []
        sessions: list[tuple] = []
        trades: list[dict] = []
        for kind, item in batch:
            if kind == "order":
                latest[item.order_id] = item  # last snapshot wins
            elif kind == "exec":
                execs.append(self._execution_values(*item))
            elif kind == "trade":
                trades.append(item)
            elif kind == "session":
                sessions.append(
                    (item.comp_id, item.event, item.peer, item.text, self._time(item.at))
                )
        if not (latest or execs or sessions or trades):
            return
        orders = [self._order_values(o) for o in latest.values()]
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    with closing(conn.connection.dbapi_connection.cursor()) as cursor:
                        if orders:
                            cursor.executemany(self._order_sql, orders)
                        if execs:
                            cursor.executemany(self._exec_sql, execs)
                        if sessions:
                            cursor.executemany(self._session_sql, sessions)
                    if trades:
                        conn.execute(self._trade_insert, trades)
                return
            except Exception:  # the batch is kept and retried; nothing is dropped silently
                self.failures += 1
                log.exception("database write failed (attempt %d), retrying", attempt + 1)
                threading.Event().wait(0.2 * (attempt + 1))
        # One bad record must not take a whole batch of other clients' records with it:
        # commit them one by one and give up only on those that still fail.
        lost = 0
        for sql, rows in ((self._order_sql, orders), (self._exec_sql, execs),
                          (self._session_sql, sessions)):
            for row in rows:
                try:
                    with (
                        self.engine.begin() as conn,
                        closing(conn.connection.dbapi_connection.cursor()) as cursor,
                    ):
                        cursor.execute(sql, row)
                except Exception:
                    lost += 1
                    log.critical("record not persisted after retries: %r", row, exc_info=True)
        for trade in trades:
            try:
                with self.engine.begin() as conn:
                    conn.execute(self._trade_insert, [trade])
            except Exception:
                lost += 1
                log.critical("trade %s not persisted after retries", trade.get("trade_id"),
                             exc_info=True)
        if lost:
            log.critical("database write: %d records of a batch could not be persisted", lost)


# --- reads -----------------------------------------------------------------------------------


def load_orders(engine: Engine) -> list[Order]:
    with engine.connect() as conn:
        rows = conn.execute(select(OrderRow.__table__)).mappings().all()
    return [order_from_row(OrderRow.model_validate(dict(r))) for r in rows]


def last_exec_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(ExecutionRow.seq))).scalar() or 0


def trade_row(trade) -> dict:
    """A TradeCapture as a ``trades`` row (the full record kept as JSON)."""
    from gateway.jsonable import to_jsonable

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


class TradeReader:
    """Reads trades back for the API, after committing what the writer still holds."""

    def __init__(self, engine: Engine, writer: Writer) -> None:
        self.engine = engine
        self.writer = writer

    def trades(self, desk_id: str | None, limit: int) -> list[dict]:
        self.writer.flush()
        t = TradeRow.__table__
        stmt = select(t.c.record).order_by(t.c.executed_at.desc()).limit(limit)
        if desk_id is not None:
            stmt = stmt.where(t.c.desk_id == desk_id)
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).scalars())

    def trade(self, trade_id: str) -> dict | None:
        self.writer.flush()
        t = TradeRow.__table__
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.record).where(t.c.trade_id == trade_id)).scalar()
