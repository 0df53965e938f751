"""Fail closed when records cannot be made durable, lose nothing, resume by itself.

Real gateway processes over real sockets:

- *database outage*: the gateway's own throwaway PostgreSQL (never the shared one) is stopped
  for 30 s while a client sends NewOrderSingles at a steady 20 per second. The process does not
  crash and every order gets an answer (no session goes silent); orders sent while the database
  is away are refused with BusinessMessageReject 380=4 naming it, /ready says why; the gateway
  admits orders again by itself once the database is back, and every order and execution the
  client holds an ExecutionReport for is in the database exactly once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa

from load.fixclient import FixClient
from tests.conftest import connect
from tests.harness import GatewayProcess, order_fields


@dataclass
class Tally:
    """What a client was told, order by order."""

    ers: list = field(default_factory=list)  # every ExecutionReport received
    accepted: list[str] = field(default_factory=list)  # ClOrdIDs answered with an ER
    refused: list[tuple[str, str]] = field(default_factory=list)  # (ClOrdID, Text) of BMRs
    silent: list[str] = field(default_factory=list)  # ClOrdIDs with no answer in time


def answer_of(client: FixClient, cl: str, tally: Tally, timeout: float = 5.0):
    """Read until the first answer to order ``cl`` (its first ER or a BMR naming it)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            msg = client.recv(left)
        except TimeoutError:
            return None
        if msg.msg_type == "8":
            tally.ers.append(msg)
            if msg.get(11) == cl:
                return msg
        elif msg.msg_type == "j" and msg.get(379) == cl:
            return msg


def trade_steadily(client: FixClient, tag: str, seconds: float, rate: float, tally: Tally):
    """Send IOC orders (alternating sides, each fills against the venue's depth) at ``rate``
    per second for ``seconds``, each answered before the next is due."""
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        cl = f"{tag}-{n}"
        side, px = ("1", "66000") if n % 2 == 0 else ("2", "64000")
        client.send("D", order_fields(cl, qty="1", px=px, side=side, tif="3"))
        answer = answer_of(client, cl, tally)
        if answer is None:
            tally.silent.append(cl)
        elif answer.msg_type == "8":
            tally.accepted.append(cl)
        else:
            tally.refused.append((cl, answer.get(58) or ""))
        n += 1
        time.sleep(max(0.0, start + n / rate - time.monotonic()))


def drain_messages(client: FixClient, tally: Tally, quiet: float = 1.0) -> None:
    while True:
        try:
            msg = client.recv(quiet)
        except TimeoutError:
            return
        if msg.msg_type == "8":
            tally.ers.append(msg)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout} s")


def test_database_outage_refuses_new_business_and_loses_nothing(tmp_path, throwaway_postgres):
    pg = throwaway_postgres
    gw = GatewayProcess(tmp_path, database_url=pg.url).start()
    try:
        client = connect(gw)
        tally = Tally()
        trade_steadily(client, "pre", 2, 20, tally)
        assert tally.accepted and not tally.refused and not tally.silent

        pg.stop()
        outage = Tally()
        trade_steadily(client, "out", 30, 20, outage)
        ready = httpx.get(f"{gw.http}/ready")
        assert ready.status_code == 503
        assert "database" in ready.json()["detail"]
        assert gw.proc is not None and gw.proc.poll() is None  # no crash
        pg.start()

        # no order went unanswered; once the gateway saw the outage, orders were refused
        # explicitly, naming the database
        assert not outage.silent, outage.silent[:5]
        assert len(outage.refused) >= 400, (len(outage.refused), len(outage.accepted))
        assert all(text.startswith("database unavailable") for _, text in outage.refused), (
            outage.refused[:3]
        )
        # detection takes a moment: orders accepted then are held until the database is back
        first_refused = outage.refused[0][0]
        assert all(
            int(cl.split("-")[1]) < int(first_refused.split("-")[1]) for cl in outage.accepted
        ), "an order was accepted after the gate had closed and before the database was back"

        after = Tally()

        def trading_again():
            trade_steadily(client, f"post{time.monotonic_ns()}", 0.5, 20, after)
            return after.accepted

        wait_for(trading_again, 30, "orders accepted again after the database came back")
        assert not after.silent
        drain_messages(client, after)
        assert httpx.get(f"{gw.http}/ready").status_code == 200
        client.logout()
    finally:
        code = gw.stop()
    assert code == 0, gw.stderr()

    held = [*tally.ers, *outage.ers, *after.ers]
    exec_ids = [er.get(17) for er in held]
    order_ids = {er.get(37) for er in held}
    database = sa.create_engine(pg.url)
    try:
        with database.connect() as conn:
            executions = list(conn.execute(sa.text("SELECT exec_id FROM executions")).scalars())
            orders = list(conn.execute(sa.text("SELECT order_id FROM orders")).scalars())
    finally:
        database.dispose()
    assert len(executions) == len(set(executions))
    assert len(orders) == len(set(orders))
    missing = set(exec_ids) - set(executions)
    assert not missing, sorted(missing)[:10]
    assert order_ids <= set(orders), sorted(order_ids - set(orders))[:10]
    assert "record not persisted" not in gw.stderr()
