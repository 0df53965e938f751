"""The persistence layer on SQLite and, when reachable, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from fixspec import messages as m
from fixspec.instruments import parse_symbol
from gateway.store.connect import SCHEMA_VERSION, connect, migrate
from gateway.store.orders import (
    ExecutionRow,
    OrderHistory,
    finished_exposure,
    last_exec_seq,
    last_order_seq,
    load_open_orders,
    load_orders,
    used_clordids,
)
from gateway.store.sessions import SessionEvent, SessionEventRow
from gateway.store.writer import Writer
from load.fixclient import FixClient
from otc.orders import ClOrdIdUsed, Lookup, Order
from tests.harness import API_TOKEN, GatewayProcess, order_fields

PG_URL = os.environ.get("FIXBRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> bool:
    try:
        with sa.create_engine(PG_URL).connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except Exception:
        return False


PG = _pg_reachable()
if os.environ.get("CI") and not PG:
    raise RuntimeError(f"CI: PostgreSQL is not reachable at {PG_URL}")


@contextmanager
def scratch_pg_database():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not PG:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    name = f"fb_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with scratch_pg_database() as pg:
        yield pg


@pytest.fixture
def pg_url():
    with scratch_pg_database() as pg:
        yield pg


def _order(order_id="O1", status=m.OrdStatus.NEW, cum="0") -> Order:
    t = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)
    return Order(
        order_id=order_id,
        owner="C1",
        cl_ord_id=f"cl-{order_id}",
        instrument=parse_symbol("BTC-27DEC26-100000-C"),
        side=m.Side.BUY,
        ord_type=m.OrdType.LIMIT,
        quantity=Decimal("1.00000001"),
        price=Decimal("4200.123456789"),
        time_in_force=m.TimeInForce.GTC,
        status=status,
        cum_qty=Decimal(cum),
        avg_px=Decimal("0"),
        created_at=t,
        updated_at=t,
    )


def test_schema_is_created_and_migration_is_idempotent(url):
    database = connect(url)
    assert migrate(database) == SCHEMA_VERSION
    with database.connect() as conn:
        versions = conn.execute(sa.text("select version from schema_version")).scalars().all()
    assert versions == [SCHEMA_VERSION]
    database.dispose()


def test_writer_persists_exact_decimals_utc_microseconds_and_last_snapshot(url):
    database = connect(url)
    writer = Writer(database)
    writer.order(_order())
    writer.order(_order(status=m.OrdStatus.PARTIALLY_FILLED, cum="0.5"))
    er = m.ExecutionReport(
        order_id="O1",
        exec_id="OE7",
        cl_ord_id="cl-O1",
        exec_type=m.ExecType.TRADE,
        ord_status=m.OrdStatus.PARTIALLY_FILLED,
        symbol="BTC-27DEC26-100000-C",
        side=m.Side.BUY,
        order_qty=Decimal("1.00000001"),
        leaves_qty=Decimal("0.50000001"),
        cum_qty=Decimal("0.5"),
        avg_px=Decimal("4200.5"),
        last_qty=Decimal("0.5"),
        last_px=Decimal("4200.5"),
        transact_time=datetime(2026, 11, 24, 10, 0, 1, 654321, tzinfo=UTC),
    )
    writer.execution("C1", er)
    writer.execution("C1", er)  # a replayed execution is stored once
    writer.close()
    (order,) = load_orders(database)
    assert order.status is m.OrdStatus.PARTIALLY_FILLED and order.cum_qty == Decimal("0.5")
    assert order.price == Decimal("4200.123456789") and order.quantity == Decimal("1.00000001")
    assert order.created_at == datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)
    assert last_exec_seq(database) == 7
    with database.connect() as conn:
        rows = conn.execute(sa.select(ExecutionRow.__table__)).mappings().all()
    assert len(rows) == 1
    assert rows[0]["transact_time"] == er.transact_time
    assert rows[0]["leaves_qty"] == Decimal("0.50000001")
    database.dispose()


def test_session_events_are_recorded(url):
    database = connect(url)
    writer = Writer(database)
    at = datetime.now(UTC)
    writer.session_event(SessionEvent("C1", "logon_refused", "127.0.0.1:5000", "bad", at))
    writer.close()
    with database.connect() as conn:
        row = conn.execute(sa.select(SessionEventRow.__table__)).mappings().one()
    assert (row["comp_id"], row["event"], row["peer"], row["text"]) == (
        "C1",
        "logon_refused",
        "127.0.0.1:5000",
        "bad",
    )
    database.dispose()


def test_gateway_runs_on_postgresql(tmp_path, pg_url):
    url = pg_url
    gw = GatewayProcess(tmp_path, database_url=url).start()
    try:
        c = FixClient("127.0.0.1", gw.fix_port, "CLIENT2", "FIXBRIDGE")
        assert c.logon().msg_type == "A"
        c.send("D", order_fields("pg-1", qty="0.25"))
        order_id = c.expect("8").get(37)
        c.expect("8")
        c.logout()
        body = httpx.get(
            f"{gw.http}/orders/{order_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        ).json()
        assert (body["status"], body["cum_qty"], body["avg_px"]) == ("2", "0.25", "65000")
    finally:
        assert gw.stop() == 0
    database = sa.create_engine(url)
    with database.connect() as conn:
        n = conn.execute(
            sa.text("select count(*) from executions where order_id=:o"), {"o": order_id}
        ).scalar()
    database.dispose()
    assert n == 2


def test_one_bad_record_does_not_lose_the_rest_of_its_batch(url):
    database = connect(url)
    writer = Writer(database)
    at = datetime.now(UTC)
    writer.session_event(SessionEvent(None, "broken", None, None, at))  # NOT NULL violated
    writer.order(_order("O9"))
    writer.session_event(SessionEvent("C1", "logon", None, None, at))
    writer.close()
    assert [o.order_id for o in load_orders(database)] == ["O9"]
    with database.connect() as conn:
        events = conn.execute(sa.select(SessionEventRow.__table__.c.event)).scalars().all()
    assert events == ["logon"]
    assert writer.failures >= 1
    database.dispose()


def test_used_cl_ord_ids_open_orders_and_finished_exposure_round_trip(url):
    """What start-up and the order core's lookups read back, on both databases."""
    database = connect(url)
    writer = Writer(database)
    today, before = date(2026, 11, 24), date(2026, 11, 20)
    for day, cl in ((today, "a"), (today, "b"), (before, "old")):
        writer.clordid(ClOrdIdUsed("C1", cl, day))
    writer.clordid(ClOrdIdUsed("C1", "a", today))  # recorded twice: one row
    writer.order(_order("O7"))
    writer.order(_order("O8", m.OrdStatus.FILLED, cum="1.00000001"))
    writer.finished_exposure("C1", Decimal("4200.12345679"), datetime.now(UTC))
    writer.finished_exposure("C1", Decimal("8400.5"), datetime.now(UTC))  # the latest wins
    writer.close()

    assert sorted((u.trading_day, u.cl_ord_id) for u in used_clordids(database, today)) == [
        (today, "a"),
        (today, "b"),
    ]
    assert [o.order_id for o in load_open_orders(database)] == ["O7"]
    assert last_order_seq(database) == 8
    assert finished_exposure(database) == {"C1": Decimal("8400.5")}
    history = OrderHistory(database, Writer(database), recent=1)
    lookup = Lookup("C1", today, ("a", "zzz"), "cl-O8")
    assert history.used(lookup) == {"a"}
    found = history.order("C1", "cl-O8")
    assert found is not None and (found.order_id, found.status) == ("O8", m.OrdStatus.FILLED)
    history.writer.close()
