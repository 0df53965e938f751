"""Pre-trade risk, kill switch, throttling and cancel-on-disconnect, end to end."""

from __future__ import annotations

import time

import httpx
import pytest

from load.fixclient import FixClient, fix_time
from tests.harness import API_TOKEN, VIEWER_TOKEN, GatewayProcess

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}
EXTRA = """
[[sessions]]
comp_id = "BANDED"
[sessions.risk]
price_band = "0.05"
credit_limit = "200000"

[[sessions]]
comp_id = "CHATTY"
[sessions.throttle]
reject_above = 5
logout_above = 15

[[sessions]]
comp_id = "COD"
cancel_on_disconnect = true
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    g = GatewayProcess(tmp_path_factory.mktemp("risk"), extra=EXTRA).start()
    yield g
    assert g.stop() == 0


def session(gw, comp_id):
    c = FixClient("127.0.0.1", gw.fix_port, comp_id, "FIXBRIDGE")
    assert c.logon().msg_type == "A"
    return c


def order(cl, qty="1", px="60000", side="1", symbol="BTC-PERP"):
    return [(11, cl), (55, symbol), (54, side), (60, fix_time()), (38, qty), (40, "2"), (44, px)]


def test_price_band_and_credit_limit(gw):
    c = session(gw, "BANDED")
    try:
        c.send("D", order("band-1", px="50000"))  # 23 % below the 65000 reference
        rej = c.expect("8")
        assert (rej.get(39), rej.get(103)) == ("8", "3") and "band" in rej.get(58)
        c.send("D", order("credit-1", qty="2", px="63000"))  # rests: 126000 of 200000 used
        assert c.expect("8").get(39) == "0"
        c.send("D", order("credit-2", qty="2", px="63000"))  # would take it to 252000
        rej = c.expect("8")
        assert (rej.get(39), rej.get(103)) == ("8", "3") and "credit limit" in rej.get(58)
        view = httpx.get(f"{gw.http}/risk/BANDED", headers=ADMIN).json()
        assert view["exposure"] == "126000" and view["limits"]["credit_limit"] == "200000"
        # cancelling frees the credit
        c.send(
            "F",
            [(41, "credit-1"), (11, "credit-1-x"), (55, "BTC-PERP"), (54, "1"), (60, fix_time())],
        )
        assert c.expect("8").get(39) == "4"
        c.send("D", order("credit-3", qty="2", px="63000"))
        assert c.expect("8").get(39) == "0"
    finally:
        c.logout()


def test_limits_change_at_run_time(gw):
    c = session(gw, "CLIENT2")
    try:
        r = httpx.put(f"{gw.http}/risk/CLIENT2/limits", headers=ADMIN, json={"max_order_qty": "2"})
        assert r.status_code == 200 and r.json()["limits"]["max_order_qty"] == "2"
        c.send("D", order("lim-1", qty="3"))
        rej = c.expect("8")
        assert rej.get(103) == "3" and "exceeds limit 2" in rej.get(58)
        bad = httpx.put(
            f"{gw.http}/risk/CLIENT2/limits", headers=ADMIN, json={"max_order_qty": "-1"}
        )
        assert bad.status_code == 422
        assert (
            httpx.put(
                f"{gw.http}/risk/CLIENT2/limits", headers=ADMIN, json={"max_order_qty": "1000"}
            ).status_code
            == 200
        )
        assert "risk limits for CLIENT2 changed by test-admin" in gw.stderr()
    finally:
        c.logout()


def test_kill_switch_cancels_and_refuses_until_resumed(gw):
    c = session(gw, "CLIENT2")
    try:
        c.send("D", order("kill-1", px="60000"))
        assert c.expect("8").get(39) == "0"
        denied = httpx.post(
            f"{gw.http}/risk/kill",
            headers={"Authorization": f"Bearer {VIEWER_TOKEN}"},
            json={"client": "CLIENT2", "reason": "x"},
        )
        assert denied.status_code == 403
        r = httpx.post(
            f"{gw.http}/risk/kill",
            headers=ADMIN,
            json={"client": "CLIENT2", "reason": "desk limit breach"},
        )
        assert r.status_code == 200 and r.json()["cancelled_orders"] == 1
        cxl = c.expect("8")
        assert (cxl.get(39), cxl.get(11)) == ("4", "kill-1")
        assert "kill switch: desk limit breach" in cxl.get(58)
        c.send("D", order("kill-2"))
        rej = c.expect("8")
        assert rej.get(39) == "8" and "kill switch engaged: desk limit breach" in rej.get(58)
        r = httpx.post(
            f"{gw.http}/risk/resume", headers=ADMIN, json={"client": "CLIENT2", "reason": "cleared"}
        )
        assert r.json()["resumed"] is True
        c.send("D", order("kill-3", px="66000"))
        assert c.expect("8").get(39) == "0"
        assert c.expect("8").get(39) == "2"  # filled: nothing left resting
    finally:
        c.logout()


def test_global_kill_switch(gw):
    c = session(gw, "CLIENT2")
    try:
        c.send("D", order("gk-0", px="60000"))
        assert c.expect("8").get(39) == "0"
        assert (
            httpx.post(
                f"{gw.http}/risk/kill", headers=ADMIN, json={"reason": "market halt"}
            ).status_code
            == 200
        )
        cxl = c.expect("8")
        assert (cxl.get(11), cxl.get(39)) == ("gk-0", "4")
        c.send("D", order("gk-1"))
        rej = c.expect("8")
        assert rej.get(39) == "8" and "market halt" in rej.get(58)
        httpx.post(f"{gw.http}/risk/resume", headers=ADMIN, json={"reason": "open"})
        c.send("D", order("gk-2"))
        ack = c.expect("8")
        assert ack.get(39) == "0", ack.get(58)
    finally:
        c.logout()


def test_throttle_rejects_then_logs_out(gw):
    c = session(gw, "CHATTY")
    for i in range(8):
        c.send("D", order(f"fl-{i}"))
    answers = [c.recv() for _ in range(8)]
    rejected = [a for a in answers if a.msg_type == "j"]
    assert rejected and all("throttled" in a.get(58) for a in rejected)
    assert sum(1 for a in answers if a.msg_type == "8") >= 5
    for i in range(8, 40):
        try:
            c.send("D", order(f"fl-{i}"))
        except OSError:
            break
    deadline = time.monotonic() + 10
    logout = None
    while time.monotonic() < deadline and logout is None:
        try:
            msg = c.recv(timeout=5)
        except (ConnectionError, TimeoutError):
            break
        if msg.msg_type == "5":
            logout = msg
    assert logout is not None and "throttled" in logout.get(58)


def test_cancel_on_disconnect(gw):
    c = session(gw, "COD")
    c.send("D", order("cod-1", px="60000"))
    order_id = c.expect("8").get(37)
    c.logout()
    deadline = time.monotonic() + 10
    status = None
    while time.monotonic() < deadline and status != "4":
        status = httpx.get(f"{gw.http}/orders/{order_id}", headers=ADMIN).json()["status"]
        time.sleep(0.05)
    assert status == "4"


def test_kill_switch_from_the_cli(gw):
    import os
    import subprocess
    import sys

    from tests.harness import ROOT

    env = {**os.environ, "FIXBRIDGE_TOKEN": API_TOKEN}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "kill",
            "--client",
            "COD",
            "--reason",
            "ops drill",
            "--url",
            gw.http,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    assert httpx.get(f"{gw.http}/risk/COD", headers=ADMIN).json()["halted"] == "ops drill"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "kill",
            "--client",
            "COD",
            "--reason",
            "done",
            "--resume",
            "--url",
            gw.http,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0
    assert httpx.get(f"{gw.http}/risk/COD", headers=ADMIN).json()["halted"] is None
