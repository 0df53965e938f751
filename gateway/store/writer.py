"""The database writer: the FIX thread never waits on the database.

The order path hands order snapshots, executions and session events to :class:`Writer`, whose
thread commits them in batches (one transaction per batch, so a crash leaves whole batches or
nothing). The same code runs on SQLite (the default, in the data directory) and PostgreSQL.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from fixspec import messages as m
from gateway.store.orders import EXECUTION_COLUMNS, ORDER_COLUMNS
from gateway.store.sessions import SESSION_EVENT_COLUMNS, SessionEvent
from gateway.store.trades import TRADES
from otc.orders import Order

log = logging.getLogger("gateway.db")


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

    def __init__(self, database: Engine, max_batch: int = 2000, linger: float = 0.010) -> None:
        self.database = database
        self.max_batch = max_batch
        self.linger = linger
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._urgent = threading.Event()  # a flush or close is waiting: stop lingering
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._stopping = False
        self.failures = 0
        dialect = database.dialect.name
        sqlite_dialect = dialect == "sqlite"
        self._dec = _sqlite_decimal if sqlite_dialect else _same
        self._time = _sqlite_time if sqlite_dialect else _same
        mark = "?" if database.dialect.dbapi.paramstyle == "qmark" else "%s"
        updates = ", ".join(f"{c} = excluded.{c}" for c in ORDER_COLUMNS[1:])
        self._order_sql = _insert_sql(
            "orders", ORDER_COLUMNS, mark, f"ON CONFLICT (order_id) DO UPDATE SET {updates}"
        )
        self._exec_sql = _insert_sql(
            "executions", EXECUTION_COLUMNS, mark, "ON CONFLICT (exec_id) DO NOTHING"
        )
        self._session_sql = _insert_sql("session_events", SESSION_EVENT_COLUMNS, mark, "")
        self._trade_insert = (
            (postgresql if dialect == "postgresql" else sqlite)
            .insert(TRADES)
            .on_conflict_do_nothing(index_elements=["trade_id"])
        )
        self._thread.start()

    def order(self, order: Order) -> None:
        self._q.put(("order", order))

    def execution(self, owner: str, er: m.ExecutionReport) -> None:
        self._q.put(("exec", (owner, er)))

    def session_event(self, event: SessionEvent) -> None:
        self._q.put(("session", event))

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
            o.order_id,
            o.owner,
            o.cl_ord_id,
            o.orig_cl_ord_id,
            o.instrument.symbol,
            o.side.value,
            o.ord_type.value,
            o.time_in_force.value,
            dec(o.quantity),
            dec(o.price),
            o.status.value,
            dec(o.cum_qty),
            dec(o.avg_px),
            o.account,
            o.text,
            ts(o.created_at),
            ts(o.updated_at),
        )

    def _execution_values(self, owner: str, er: m.ExecutionReport) -> tuple:
        dec = self._dec
        digits = er.exec_id.rsplit("E", 1)[-1]
        return (
            er.exec_id,
            int(digits) if digits.isdigit() else 0,
            er.order_id,
            owner,
            er.cl_ord_id,
            er.exec_type.value,
            er.ord_status.value,
            er.symbol,
            er.side.value,
            dec(er.last_qty),
            dec(er.last_px),
            dec(er.cum_qty),
            dec(er.leaves_qty),
            dec(er.avg_px),
            er.ord_rej_reason.value if er.ord_rej_reason else None,
            er.text,
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
                with self.database.begin() as conn:
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
        for sql, rows in (
            (self._order_sql, orders),
            (self._exec_sql, execs),
            (self._session_sql, sessions),
        ):
            for row in rows:
                try:
                    with (
                        self.database.begin() as conn,
                        closing(conn.connection.dbapi_connection.cursor()) as cursor,
                    ):
                        cursor.execute(sql, row)
                except Exception:
                    lost += 1
                    log.critical("record not persisted after retries: %r", row, exc_info=True)
        for trade in trades:
            try:
                with self.database.begin() as conn:
                    conn.execute(self._trade_insert, [trade])
            except Exception:
                lost += 1
                log.critical(
                    "trade %s not persisted after retries", trade.get("trade_id"), exc_info=True
                )
        if lost:
            log.critical("database write: %d records of a batch could not be persisted", lost)
