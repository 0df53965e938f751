"""The database writer: the FIX thread never waits on the database.

The order path hands order snapshots, executions and session events to :class:`Writer`, whose
thread commits them in batches (one transaction per batch, so a crash leaves whole batches or
nothing). The same code runs on SQLite (the default, in the data directory) and PostgreSQL.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from fixspec import messages as m
from gateway.store.orders import (
    CLORDID_COLUMNS,
    EXECUTION_COLUMNS,
    EXPOSURE_COLUMNS,
    ORDER_COLUMNS,
)
from gateway.store.sessions import SESSION_EVENT_COLUMNS, SessionEvent
from gateway.store.trades import TRADES
from otc.orders import ClOrdIdUsed, Order

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
    """Commits order snapshots, executions, session events, used ClOrdIDs and finished orders'
    exposure in batches on its own thread.

    Durability window: a record handed to the writer is committed within ``linger`` seconds
    (default 10 ms) plus one commit's time. The writer sleeps that long after the first record
    of a batch so that one transaction carries many records (a commit per order costs several
    times the per-row work); :meth:`flush` and :meth:`close` cut the wait short, and nothing
    queued is ever dropped: a failed batch is retried whole, with a capped backoff, for as long
    as the database is unreachable (while :meth:`refusal` names it, the admission gate refuses
    new business); a batch the database answers but refuses is committed record by record, and
    only a record it refuses on its own is logged and left out. Every statement is idempotent
    (orders are upserted, executions and trades keyed by their ids), so a retried batch whose
    first commit did reach the database duplicates nothing. Rows are bound as plain tuples
    through the DBAPI driver's ``executemany`` (the per-row work of SQLAlchemy's typed binds
    dominated the writer's cost), converted exactly as the ``ExactDecimal`` and
    ``UtcDateTime`` column types convert them, so reads through SQLAlchemy see the same values.
    """

    def __init__(
        self,
        database: Engine,
        max_batch: int = 2000,
        linger: float = 0.010,
        max_backoff: float = 1.0,
    ) -> None:
        self.database = database
        self.max_backoff = max_backoff
        self._backoff = threading.Event()  # never set: waited on between attempts
        self.failing_since: float | None = None
        self.max_batch = max_batch
        self.linger = linger
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._urgent = threading.Event()  # a flush or close is waiting: stop lingering
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._stopping = False
        self.failures = 0
        # for /ready and /metrics: batches taken off the queue, and why the last attempt to
        # commit one failed (None once a batch commits again)
        self.batches = 0
        self.failing: str | None = None
        dialect = database.dialect.name
        sqlite_dialect = self._sqlite = dialect == "sqlite"
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
        self._exposure_sql = _insert_sql(
            "finished_exposure",
            EXPOSURE_COLUMNS,
            mark,
            "ON CONFLICT (owner) DO UPDATE SET notional = excluded.notional, "
            "updated_at = excluded.updated_at",
        )
        self._clordid_sql = _insert_sql(
            "clordids",
            CLORDID_COLUMNS,
            mark,
            "ON CONFLICT (trading_day, owner, cl_ord_id) DO NOTHING",
        )
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

    def finished_exposure(self, owner: str, notional: Decimal, at: datetime) -> None:
        """``owner``'s finished orders now add up to ``notional`` (the latest value wins)."""
        self._q.put(("exposure", (owner, notional, at)))

    def clordid(self, used: ClOrdIdUsed) -> None:
        self._q.put(("clordid", used))

    def session_event(self, event: SessionEvent) -> None:
        self._q.put(("session", event))

    def trade(self, row: dict) -> None:
        self._q.put(("trade", row))

    @property
    def queued(self) -> int:
        """Records waiting for a batch (approximate, as queue sizes are)."""
        return self._q.qsize()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

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
            self.batches += 1
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
        clordids: list[tuple] = []
        exposure: dict[str, tuple] = {}
        for kind, item in batch:
            if kind == "order":
                latest[item.order_id] = item  # last snapshot wins
            elif kind == "exposure":
                owner, notional, at = item
                exposure[owner] = (owner, self._dec(notional), self._time(at))
            elif kind == "clordid":
                day = item.trading_day
                clordids.append(
                    (day.isoformat() if self._sqlite else day, item.owner, item.cl_ord_id)
                )
            elif kind == "exec":
                execs.append(self._execution_values(*item))
            elif kind == "trade":
                trades.append(item)
            elif kind == "session":
                sessions.append(
                    (item.comp_id, item.event, item.peer, item.text, self._time(item.at))
                )
        if not (latest or execs or sessions or trades or clordids or exposure):
            return
        orders = [self._order_values(o) for o in latest.values()]
        attempt = 0
        while True:
            try:
                with self.database.begin() as conn:
                    with closing(conn.connection.dbapi_connection.cursor()) as cursor:
                        if orders:
                            cursor.executemany(self._order_sql, orders)
                        if execs:
                            cursor.executemany(self._exec_sql, execs)
                        if sessions:
                            cursor.executemany(self._session_sql, sessions)
                        if clordids:
                            cursor.executemany(self._clordid_sql, clordids)
                        if exposure:
                            cursor.executemany(self._exposure_sql, list(exposure.values()))
                    if trades:
                        conn.execute(self._trade_insert, trades)
                self._recovered()
                return
            except Exception as exc:  # the batch is kept and retried; nothing is dropped
                attempt += 1
                self._failed(exc, attempt)
                if attempt >= 5 and not outage(exc):
                    break  # the database answers but refuses the batch: find the bad record
                self._pause(attempt)
        # One bad record must not take a whole batch of other clients' records with it:
        # commit them one by one; an outage meanwhile is waited out, and only a record the
        # database itself refuses (a constraint, a value it cannot hold) is left out, loudly.
        lost = 0
        items: list[tuple[str, object]] = [
            *((self._order_sql, row) for row in orders),
            *((self._exec_sql, row) for row in execs),
            *((self._session_sql, row) for row in sessions),
            *((self._clordid_sql, row) for row in clordids),
            *((self._exposure_sql, row) for row in exposure.values()),
            *(("trade", trade) for trade in trades),
        ]
        for sql, row in items:
            attempt = 0
            while True:
                try:
                    with self.database.begin() as conn:
                        if sql == "trade":
                            conn.execute(self._trade_insert, [row])
                        else:
                            with closing(conn.connection.dbapi_connection.cursor()) as cursor:
                                cursor.execute(sql, row)
                    break
                except Exception as exc:
                    attempt += 1
                    if outage(exc):
                        self._failed(exc, attempt)
                        self._pause(attempt)
                        continue
                    lost += 1
                    log.critical("record refused by the database: %r", row, exc_info=True)
                    break
        if lost:
            log.critical("database write: %d records of a batch were refused", lost)
        self._recovered()

    def _failed(self, exc: BaseException, attempt: int) -> None:
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.failing = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
        if attempt == 1 or attempt % 20 == 0:
            log.error("database write failed (attempt %d), retrying: %s", attempt, self.failing)

    def _recovered(self) -> None:
        if self.failing_since is not None:
            log.warning(
                "database writes resumed after %.1f s", time.monotonic() - self.failing_since
            )
        self.failing = None
        self.failing_since = None

    def _pause(self, attempt: int) -> None:
        """Capped backoff: 0.1 s, 0.2 s, ... up to ``max_backoff``."""
        self._backoff.wait(min(0.1 * attempt, self.max_backoff))

    def refusal(self) -> str | None:
        """Why new business must wait for the database (the admission gate), or None."""
        if not self._thread.is_alive() and not self._stopping:
            return "database unavailable: the database writer has stopped"
        if self.failing is not None:
            return f"database unavailable: {self.failing}"
        return None


def outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or used at all (retried for as
    long as it lasts), rather than that it refused these rows (a bad record)."""
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | OSError):
        return True
    orig = getattr(exc, "orig", None)
    name = type(orig or exc).__name__
    return name in {"OperationalError", "InterfaceError", "ConnectionException"}
