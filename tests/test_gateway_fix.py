"""End to end over real TCP: a FIX client, the gateway process, the simulated venue."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest

from load.fixclient import FixClient, fix_time
from tests.conftest import connect
from tests.harness import PASSWORD, GatewayProcess
from tests.harness import order_fields as order


def er(client: FixClient):
    msg = client.expect("8")
    return msg


# --- logon ------------------------------------------------------------------------------------


def test_logon_with_password(gateway):
    c = connect(gateway, "CLIENT1")
    c.send("1", [(112, "ping")])
    assert c.expect("0").get(112) == "ping"
    c.logout()


@pytest.mark.parametrize(
    ("creds", "why"),
    [
        ({"username": "client1", "password": "wrong"}, "invalid username or password"),
        ({"username": "someone", "password": PASSWORD}, "invalid username or password"),
        ({}, "Username(553) and Password(554) are required"),
    ],
)
def test_logon_refused_with_text_and_no_session(gateway, creds, why):
    c = FixClient("127.0.0.1", gateway.fix_port, "CLIENT1", "FIXBRIDGE")
    reply = c.logon(**creds)
    assert reply.msg_type == "5"
    assert why in reply.get(58)
    assert c.closed()
    assert "logon refused: CompID=CLIENT1 peer=127.0.0.1:" in gateway.stderr()


def test_heartbeat_outside_bounds_is_refused(gateway):
    c = FixClient("127.0.0.1", gateway.fix_port, "CLIENT2", "FIXBRIDGE")
    reply = c.logon(heartbeat=100000)
    assert reply.msg_type == "5" and "HeartBtInt must be between" in reply.get(58)
    assert c.closed()


def test_unknown_compid_is_disconnected(gateway):
    c = FixClient("127.0.0.1", gateway.fix_port, "INTRUDER", "FIXBRIDGE")
    c.send("A", [(98, 0), (108, 30), (141, "Y")])
    assert c.closed()


def test_repeated_failures_lock_the_address_out(tmp_path):
    gw = GatewayProcess(tmp_path, max_failures=3).start()
    try:
        for _ in range(3):
            c = FixClient("127.0.0.1", gw.fix_port, "CLIENT1", "FIXBRIDGE")
            assert c.logon(username="client1", password="nope").msg_type == "5"
            c.closed()
        # now even the right password is refused: the connection is dropped at once
        c = FixClient("127.0.0.1", gw.fix_port, "CLIENT1", "FIXBRIDGE")
        with contextlib.suppress(OSError):
            c.send("A", [(98, 0), (108, 30), (141, "Y"), (553, "client1"), (554, PASSWORD)])
        assert c.closed()
        assert "locked out" in gw.stderr()
    finally:
        assert gw.stop() == 0


# --- orders -----------------------------------------------------------------------------------


def test_marketable_order_new_then_fill(client, clordid):
    cl = clordid()
    client.send("D", order(cl, qty="5", px="66000"))
    new = er(client)
    assert (new.get(150), new.get(39), new.get(11), new.get(151)) == ("0", "0", cl, "5")
    assert new.get(59) == "0"  # TimeInForce echoed (DAY by default), so a recovery keeps it
    fill = er(client)
    assert (fill.get(150), fill.get(39)) == ("F", "2")
    assert (fill.get(32), fill.get(31), fill.get(14), fill.get(151), fill.get(6)) == (
        "5",
        "65000",
        "5",
        "0",
        "65000",
    )
    assert fill.get(37) == new.get(37) and fill.get(17) != new.get(17)
    assert len(fill.get(60).split(".")[1]) == 6  # µs UTC timestamps


def test_partial_fill_then_cancel_of_the_rest(client, clordid):
    cl, cxl = clordid(), clordid()
    client.send("D", order(cl, qty="15", px="66000"))
    assert er(client).get(39) == "0"
    part = er(client)
    assert (part.get(150), part.get(39), part.get(32), part.get(151)) == ("F", "1", "10", "5")
    client.send("F", [(41, cl), (11, cxl), (55, "BTC-PERP"), (54, "1"), (60, fix_time())])
    done = er(client)
    assert (done.get(150), done.get(39), done.get(11), done.get(41)) == ("4", "4", cxl, cl)
    assert (done.get(14), done.get(151)) == ("10", "0")


def test_market_order_sweeps_depth_and_cancels_remainder(client, clordid):
    client.send("D", order(clordid(), qty="12", px=None, ord_type="1"))
    assert er(client).get(150) == "0"
    assert er(client).get(32) == "10"
    rest = er(client)
    assert (rest.get(150), rest.get(39), rest.get(14)) == ("4", "4", "10")


def test_resting_order_replace_and_status(client, clordid):
    cl, rep = clordid(), clordid()
    client.send("D", order(cl, qty="3", px="60000"))
    new = er(client)
    assert new.get(39) == "0"
    client.send(
        "G",
        [
            (41, cl),
            (11, rep),
            (55, "BTC-PERP"),
            (54, "1"),
            (60, fix_time()),
            (38, "4"),
            (40, "2"),
            (44, "61000"),
        ],
    )
    replaced = er(client)
    assert (replaced.get(150), replaced.get(39), replaced.get(11), replaced.get(41)) == (
        "5",
        "0",
        rep,
        cl,
    )
    assert (replaced.get(38), replaced.get(44), replaced.get(151)) == ("4", "61000", "4")
    client.send("H", [(11, rep), (55, "BTC-PERP"), (54, "1")])
    status = er(client)
    assert (status.get(150), status.get(39), status.get(37)) == ("I", "0", new.get(37))


def test_replace_that_crosses_fills(client, clordid):
    cl, rep = clordid(), clordid()
    client.send("D", order(cl, qty="2", px="60000"))
    assert er(client).get(39) == "0"
    client.send(
        "G",
        [
            (41, cl),
            (11, rep),
            (55, "BTC-PERP"),
            (54, "1"),
            (60, fix_time()),
            (38, "2"),
            (40, "2"),
            (44, "65500"),
        ],
    )
    assert er(client).get(150) == "5"
    fill = er(client)
    assert (fill.get(150), fill.get(39), fill.get(31)) == ("F", "2", "65000")


def test_resting_orders_cross_between_clients(gateway, clordid):
    seller = connect(gateway, "CLIENT1")
    buyer = connect(gateway, "CLIENT2")
    try:
        sell, buy = clordid(), clordid()
        seller.send("D", order(sell, qty="1", px="70000", side="2", symbol="ETH-PERP"))
        assert er(seller).get(39) == "0"  # above the reference: rests
        buyer.send("D", order(buy, qty="1", px="70000", side="1", symbol="ETH-PERP"))
        assert er(buyer).get(39) == "0"
        b = er(buyer)
        s = er(seller)
        assert (b.get(39), b.get(31), s.get(39), s.get(31)) == ("2", "70000", "2", "70000")
    finally:
        seller.logout()
        buyer.logout()


def test_duplicate_clordid_is_rejected(client, clordid):
    cl = clordid()
    client.send("D", order(cl))
    assert er(client).get(39) == "0"
    assert er(client).get(39) == "2"
    client.send("D", order(cl))
    dup = er(client)
    assert (dup.get(150), dup.get(39), dup.get(103)) == ("8", "8", "6")


def test_order_over_limit_is_rejected(client, clordid):
    client.send("D", order(clordid(), qty="5000"))
    rej = er(client)
    assert (rej.get(39), rej.get(103)) == ("8", "3")
    assert "exceeds limit" in rej.get(58)


def test_unknown_symbol_is_rejected(client, clordid):
    client.send("D", order(clordid(), symbol="NOT-A-THING-X"))
    rej = er(client)
    assert (rej.get(39), rej.get(103)) == ("8", "1")


def test_cancel_of_unknown_order(client, clordid):
    cxl = clordid()
    client.send("F", [(41, "never-sent"), (11, cxl), (55, "BTC-PERP"), (54, "1"), (60, fix_time())])
    rej = client.expect("9")
    assert (rej.get(102), rej.get(11), rej.get(41), rej.get(434)) == ("1", cxl, "never-sent", "1")


def test_unsupported_message_type_gets_business_reject(client):
    client.send("AF", [(584, "m1"), (585, "7")])
    rej = client.expect("j")
    assert (rej.get(372), rej.get(380)) == ("AF", "3")


def test_garbled_field_gets_session_reject(client, clordid):
    fields = order(clordid())
    fields[4] = (38, "lots")
    client.send("D", fields)
    rej = client.expect("3")
    assert (rej.get(371), rej.get(373)) == ("38", "6")  # incorrect data format
    # the session is still usable
    client.send("D", order(clordid()))
    assert er(client).get(39) == "0"
    assert er(client).get(39) == "2"


def test_sequence_gap_triggers_resend_request(client):
    client.next_seq += 5
    client.send("1", [(112, "gap")])
    rr = client.expect("2")
    assert rr.get(7) == str(client.next_seq - 6)


def test_decimals_are_exact(client, clordid):
    client.send("D", order(clordid(), qty="0.00000001", px="65000.123456789", symbol="BTC-PERP"))
    new = er(client)
    assert (new.get(38), new.get(44)) == ("0.00000001", "65000.123456789")
    assert Decimal(er(client).get(14)) == Decimal("0.00000001")
