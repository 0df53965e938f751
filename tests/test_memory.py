"""Finished orders leave the gateway's memory, and start-up reads only open ones, over real
FIX sessions and HTTP against ``fixbridge run`` processes."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx

from load.fixclient import fix_time
from tests.conftest import connect
from tests.harness import API_TOKEN, GatewayProcess, order_fields

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def gauge(gw: GatewayProcess, name: str) -> float:
    text = httpx.get(f"{gw.http}/metrics", headers=AUTH).text
    match = re.search(rf"^{name}(?:_total)? (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def status_request(cl: str) -> list[tuple[int, str]]:
    return [(11, cl), (55, "BTC-PERP"), (54, "1")]


def cancel(cl: str, orig: str) -> list[tuple[int, str]]:
    return [(11, cl), (41, orig), (55, "BTC-PERP"), (54, "1"), (60, fix_time())]


def test_a_finished_order_leaves_memory_and_is_still_answered(tmp_path):
    gw = GatewayProcess(tmp_path).start()
    try:
        c = connect(gw)
        c.send("D", order_fields("done-1", qty="2", px="66000"))  # marketable: filled
        assert c.expect("8").get(39) == "0"
        filled = c.expect("8")
        assert filled.get(39) == "2"
        c.send("D", order_fields("rest-1", qty="1", px="60000"))  # rests
        assert c.expect("8").get(39) == "0"
        assert gauge(gw, "fixbridge_orders_in_memory") == 1
        assert gauge(gw, "fixbridge_orders_evicted") == 1

        c.send("H", status_request("done-1"))  # from the database
        status = c.expect("8")
        assert (status.get(150), status.get(39), status.get(37), status.get(14)) == (
            "I",
            "2",
            filled.get(37),
            "2",
        )
        c.send("D", order_fields("done-1", qty="1", px="1"))  # the same ClOrdID today
        dup = c.expect("8")
        assert (dup.get(39), dup.get(103)) == ("8", "6")
        c.send("F", cancel("done-1-cxl", "done-1"))
        late = c.expect("9")
        assert (late.get(102), late.get(39), late.get(37)) == ("0", "2", filled.get(37))
        c.send("F", cancel("done-1", "rest-1"))  # a used ClOrdID for a cancel
        assert c.expect("9").get(102) == "6"
        c.logout()
    finally:
        assert gw.stop() == 0, gw.stderr()


def _seed_finished(database: str, count: int, day: datetime) -> None:
    """Finished orders of an earlier day, written straight into SQLite (as the writer would)."""
    at = day.replace(tzinfo=None).isoformat(" ", "microseconds")
    rows = [
        (f"H{i}", "CLIENT2", f"old-{i}", None, "BTC-PERP", "1", "2", "0", "1", "65000", "2", "1")
        + ("65000", None, None, at, at)
        for i in range(count)
    ]
    with sqlite3.connect(database) as db:
        db.executemany(f"INSERT INTO orders VALUES ({', '.join('?' * 17)})", rows)
        db.executemany(
            "INSERT INTO clordids (owner, trading_day, cl_ord_id) VALUES (?, ?, ?)",
            [("CLIENT2", day.date().isoformat(), f"old-{i}") for i in range(count)],
        )


def test_restart_loads_only_open_orders_and_keeps_today_s_cl_ord_ids(tmp_path):
    gw = GatewayProcess(tmp_path).start()
    c = connect(gw)
    for i in range(20):
        c.send("D", order_fields(f"f-{i}", qty="1", px="66000"))
        c.expect("8"), c.expect("8")
    for i in range(2):
        c.send("D", order_fields(f"r-{i}", qty="1", px="60000"))
        assert c.expect("8").get(39) == "0"
    c.logout()
    assert gw.stop() == 0, gw.stderr()
    yesterday = datetime.now(UTC) - timedelta(days=1)
    _seed_finished(str(gw.data_dir / "fixbridge.db"), 5000, yesterday)

    gw.start()
    try:
        assert "order core restored: 2 open orders in memory" in gw.stderr()
        assert gauge(gw, "fixbridge_orders_in_memory") == 2
        c = connect(gw)
        c.send("D", order_fields("f-3", qty="1", px="1"))  # used today, before the restart
        assert c.expect("8").get(103) == "6"
        c.send("D", order_fields("old-7", qty="1", px="66000"))  # yesterday's: a new day
        new = c.expect("8")
        assert (new.get(39), new.get(11)) == ("0", "old-7")
        assert int(new.get(37)[1:]) == 23  # ids continue after the highest one
        assert c.expect("8").get(39) == "2"
        c.send("H", status_request("f-0"))  # finished before the restart
        assert (s := c.expect("8")).get(39) == "2" and s.get(150) == "I"
        c.send("F", cancel("r-0-cxl", "r-0"))  # open before the restart: live again
        assert c.expect("8").get(39) == "4"
        c.logout()
    finally:
        assert gw.stop() == 0, gw.stderr()
