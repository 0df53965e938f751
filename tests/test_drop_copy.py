"""Drop copy sessions over real FIX sessions against a running gateway.

DROPCOPY copies CLIENT2; CLIENT3 is not copied. The drop copy logs on only after CLIENT2 has
traded (an order filled on the venue, an RFQ lifted), so its copies wait in QuickFIX's store
and come with its ResendRequest; later copies arrive live.
"""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from fixspec.codec import RawMessage, groups
from fixspec.messages import Side
from gateway.config import ConfigError, load_config
from gateway.recovery import recover
from gateway.store.connect import connect as connect_database
from load.fixclient import FixClient
from tests.conftest import connect
from tests.harness import COMPLIANCE_TOKEN, VIEWER_TOKEN, GatewayProcess
from tests.harness import order_fields as order
from tests.otc_support import Desk, RfqClient
from tests.test_crash import SessionStore, exec_ids_in, persist, play, reports

DROP_COPY = """
[[sessions]]
comp_id = "DROPCOPY"
reset_on_logon = false

[[sessions]]
comp_id = "CLIENT3"

[fix.drop_copy.DROPCOPY]
clients = ["CLIENT2"]
"""
PARTY_TAGS = frozenset({448, 447, 452})
SIDE_TAGS = frozenset({54, 37, 11, 453, 448, 447, 452, 15})


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), extra=DROP_COPY).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


def client_party(msg: RawMessage) -> list[tuple[str | None, str | None]]:
    """(PartyID, PartyRole) of every ClientID party (role 3) on ``msg``: in its Parties, or in
    its NoSides entries' Parties for a TradeCaptureReport."""
    holders = groups(msg, 552, SIDE_TAGS) if msg.msg_type == "AE" else [msg]
    found = [(p.get(448), p.get(452)) for h in holders for p in groups(h, 453, PARTY_TAGS)]
    return [p for p in found if p[1] == "3"]


def business(fix: FixClient, timeout: float = 10) -> RawMessage:
    """The next message that is not a heartbeat."""
    while True:
        msg = fix.recv(timeout)
        if msg.msg_type != "0":
            return msg


def filled_order(fix: FixClient, cl: str) -> list[RawMessage]:
    """Send a marketable limit buy; its New and Fill ExecutionReports."""
    fix.send("D", order(cl, qty="2", px="66000"))
    reports = [business(fix), business(fix)]
    assert [(r.msg_type, r.get(39)) for r in reports] == [("8", "0"), ("8", "2")]
    return reports


def test_drop_copy_gets_the_copies_sent_while_it_was_away_then_live_ones(gateway):
    desk = Desk(gateway, VIEWER_TOKEN)
    client = RfqClient(gateway, "CLIENT2")
    other = connect(gateway, "CLIENT3")
    try:
        originals = filled_order(client.fix, "dc-ord-1")
        client.rfq("dc-rfq-1")
        rfq_id = desk.event("RfqToDesk")["rfq"]["rfq_id"]
        assert desk.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
        client.hit(client.quote(), Side.BUY, "dc-rfq-1-hit")
        originals += [client.next("8"), client.next("AE")]
        filled_order(other, "dc-other-1")  # CLIENT3 is not copied

        dc = FixClient("127.0.0.1", gateway.fix_port, "DROPCOPY", "FIXBRIDGE")
        logon = dc.logon(reset=False)
        assert logon.msg_type == "A" and int(logon.get(34)) == len(originals) + 1
        dc.send("2", [(7, 1), (16, 0)])  # ResendRequest for everything
        resent = []
        while (msg := business(dc)).msg_type != "4":
            resent.append(msg)
        assert [m.msg_type for m in resent] == ["8", "8", "8", "AE"]
        for copy, original in zip(resent, originals, strict=True):
            assert (copy.get(797), copy.get(43)) == ("Y", "Y")
            assert copy.get(17) == original.get(17)  # the original ExecID / TradeReportID
            assert copy.get(571) == original.get(571)
            assert client_party(copy) == [("CLIENT2", "3")]
            assert client_party(original) == []
        assert resent[3].get(31) == "4300"

        # live: CLIENT3 trades (no copy), then CLIENT2: the next copy is CLIENT2's
        filled_order(other, "dc-other-2")
        filled_order(client.fix, "dc-ord-2")
        live = [business(dc), business(dc)]
        assert [(m.get(11), m.get(39), m.get(797)) for m in live] == [
            ("dc-ord-2", "0", "Y"),
            ("dc-ord-2", "2", "Y"),
        ]
        assert live[0].get(43) is None
        dc.logout()
    finally:
        desk.close()
        client.close()
        other.logout()


@pytest.mark.parametrize(
    ("msg_type", "fields"),
    [
        ("D", order("dc-refused-1")),
        ("R", [(131, "dc-refused-r"), (146, 1), (55, "BTC-27DEC26-100000-C"), (38, "1")]),
    ],
)
def test_drop_copy_session_is_refused_business(gateway, msg_type, fields):
    dc = FixClient("127.0.0.1", gateway.fix_port, "DROPCOPY", "FIXBRIDGE")
    assert dc.logon(reset=True).msg_type == "A"
    try:
        dc.send(msg_type, fields)
        reject = business(dc)
        assert reject.msg_type == "j", reject.fields
        assert (reject.get(372), reject.get(380), reject.get(45)) == (msg_type, "6", "2")
        assert "DROPCOPY is a drop copy session" in reject.get(58)
        assert f"MsgType {msg_type} refused" in reject.get(58)
    finally:
        dc.logout()
    # audited like every session's messages: what it sent and the reject are in the trail
    trail = {
        kind: httpx.get(
            f"{gateway.http}/compliance/search",
            params={"client": "DROPCOPY", "kind": kind},
            headers={"Authorization": f"Bearer {COMPLIANCE_TOKEN}"},
        ).json()["items"]
        for kind in ("fix.in", "fix.out")
    }
    assert any(e["msg_type"] == msg_type for e in trail["fix.in"])
    # the reject: an entry of its own, or a part of the order message's command entry
    assert any(
        (e["msg_type"] == "j" or (e["kind"] == "fix.command" and e["msg_type"] == msg_type))
        and "BusinessMessageReject" in e["summary"]
        and f"MsgType {msg_type} refused" in e["summary"]
        for e in trail["fix.out"]
    )


def test_drop_copy_configuration_errors_name_file_and_key(tmp_path):
    base = "[[sessions]]\ncomp_id = 'A'\n[[sessions]]\ncomp_id = 'DC'\nreset_on_logon = false\n"
    cases = [
        (base + "[fix.drop_copy.NOPE]\nclients = ['A']\n", "fix.drop_copy.NOPE: NOPE is not a"),
        (base + "[fix.drop_copy.DC]\nclients = ['X']\n", "fix.drop_copy.DC.clients: not"),
        (base + "[fix.drop_copy.DC]\nclients = []\n", "fix.drop_copy.DC.clients"),
        (
            base.replace("reset_on_logon = false", "") + "[fix.drop_copy.DC]\nclients = ['A']\n",
            "fix.drop_copy.DC: session DC needs reset_on_logon = false",
        ),
    ]
    for n, (text, expected) in enumerate(cases):
        path = tmp_path / f"bad{n}.toml"
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert str(path) in str(err.value) and expected in str(err.value), err.value
    good = tmp_path / "good.toml"
    good.write_text(base + "[fix.drop_copy.DC]\nclients = ['A']\n")
    assert load_config(good).fix.drop_copy["DC"].clients == ["A"]


def test_copies_wait_across_a_reconnect_and_a_gateway_restart(tmp_path):
    gw = GatewayProcess(tmp_path, extra=DROP_COPY).start()
    try:
        dc = FixClient("127.0.0.1", gw.fix_port, "DROPCOPY", "FIXBRIDGE")
        assert dc.logon(reset=True).msg_type == "A"
        client = connect(gw, "CLIENT2")
        first = filled_order(client, "dc-rc-1")
        assert [business(dc).get(17) for _ in first] == [r.get(17) for r in first]
        dc.logout()
        next_seq = dc.next_seq
        second = filled_order(client, "dc-rc-2")  # the drop copy is away
        client.logout()
        assert gw.stop() == 0
        gw.start()
        client = connect(gw, "CLIENT2")
        third = filled_order(client, "dc-rc-3")  # away, and the gateway restarted
        client.logout()

        dc = FixClient("127.0.0.1", gw.fix_port, "DROPCOPY", "FIXBRIDGE")
        dc.next_seq = next_seq  # the same session, carrying on
        assert dc.logon(reset=False).msg_type == "A"
        dc.send("2", [(7, 1), (16, 0)])
        reports = []
        while len(reports) < len(first) + len(second) + len(third):
            if (msg := business(dc)).msg_type == "8":
                reports.append(msg)
        assert [r.get(17) for r in reports] == [r.get(17) for r in first + second + third]
        assert all((r.get(797), r.get(43)) == ("Y", "Y") for r in reports)
        dc.logout()
    finally:
        assert gw.stop() in (0, None), gw.stderr()


def test_recovery_at_start_skips_copies(tmp_path):
    """A copy in a drop copy's store is not an execution of the drop copy's: recovery, which
    completes the database from what clients were sent, leaves it out (its original is in the
    client's store). The same report without the marker would be taken."""
    store_dir = tmp_path / "store"
    run = play(store_dir)
    database = connect_database(f"sqlite:///{tmp_path / 'fixbridge.db'}")
    persist(database, run.batches)
    unknown = dataclasses.replace(reports(run)[-1], exec_id="OE990001")
    SessionStore(store_dir, "DROPCOPY").send(unknown, extra=((797, "Y"),))
    assert recover(database, store_dir).executions == 0
    assert "OE990001" not in exec_ids_in(database)
    SessionStore(store_dir, "OTHER").send(unknown)
    assert recover(database, store_dir).executions == 1
