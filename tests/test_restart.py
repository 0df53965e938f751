"""Restart: orders survive, and a session without ResetOnLogon resumes its sequence numbers."""

from __future__ import annotations

import httpx

from load.fixclient import FixClient, fix_time
from tests.harness import API_TOKEN, GatewayProcess


def test_restart_keeps_orders_and_sequence_numbers(tmp_path):
    gw = GatewayProcess(tmp_path).start()
    c = FixClient("127.0.0.1", gw.fix_port, "KEEPSEQ", "FIXBRIDGE")
    assert c.logon(reset=False).msg_type == "A"
    c.send(
        "D",
        [
            (11, "rest-1"),
            (55, "BTC-PERP"),
            (54, "2"),
            (60, fix_time()),
            (38, "2"),
            (40, "2"),
            (44, "90000"),
        ],
    )
    new = c.expect("8")
    assert new.get(39) == "0"
    order_id = new.get(37)
    c.logout()
    client_next = c.next_seq
    gateway_next = int(new.get(34)) + 2  # after the ER came our Logout reply
    assert gw.stop() == 0

    gw.start()
    try:
        c = FixClient("127.0.0.1", gw.fix_port, "KEEPSEQ", "FIXBRIDGE")
        c.next_seq = client_next
        reply = c.logon(reset=False)
        assert reply.msg_type == "A" and reply.get(141) is None
        assert int(reply.get(34)) == gateway_next
        # the resting order came back: it can be cancelled, with its cumulative state intact
        c.send(
            "F", [(41, "rest-1"), (11, "rest-1-cxl"), (55, "BTC-PERP"), (54, "2"), (60, fix_time())]
        )
        done = c.expect("8")
        assert (done.get(37), done.get(39), done.get(41)) == (order_id, "4", "rest-1")
        # ids keep increasing after the restart
        c.send(
            "D",
            [
                (11, "after-1"),
                (55, "BTC-PERP"),
                (54, "1"),
                (60, fix_time()),
                (38, "1"),
                (40, "2"),
                (44, "1"),
            ],
        )
        after = c.expect("8")
        assert int(after.get(37)[1:]) > int(order_id[1:])
        # a ClOrdID used before the restart is still a duplicate
        c.send(
            "D",
            [
                (11, "rest-1"),
                (55, "BTC-PERP"),
                (54, "1"),
                (60, fix_time()),
                (38, "1"),
                (40, "2"),
                (44, "1"),
            ],
        )
        assert c.expect("8").get(103) == "6"
        c.logout()
        r = httpx.get(
            f"{gw.http}/orders/{order_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert r.status_code == 200 and r.json()["status"] == "4"
    finally:
        assert gw.stop() == 0
