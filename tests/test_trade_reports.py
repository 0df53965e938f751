"""TradeCaptureReportRequest (AD) and strategies named by the client, over real FIX sessions.

CLIENT2 trades twice through RFQs: a single option, then a call spread it names itself
(Symbol ``BTC-27DEC26-100000-120000-CS`` with SecurityType MLEG). Then clients and a drop copy
ask for trades with AD; the answers come from the database.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from fixspec.codec import RawMessage
from fixspec.messages import Side
from load.fixclient import FixClient
from tests.conftest import connect
from tests.harness import API_TOKEN, VIEWER_TOKEN, GatewayProcess
from tests.otc_support import Desk, RfqClient

EXTRA = """
[[sessions]]
comp_id = "DROPCOPY"
reset_on_logon = false

[[sessions]]
comp_id = "CLIENT3"

[fix.drop_copy.DROPCOPY]
clients = ["CLIENT2", "CLIENT3"]
"""
ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}
LABEL = "BTC-27DEC26-100000-120000-CS"
SPREAD = [("BTC-27DEC26-100000-C", Side.BUY), ("BTC-27DEC26-120000-C", Side.SELL)]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), extra=EXTRA).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


def business(fix: FixClient, timeout: float = 10) -> RawMessage:
    """The next message that is not a heartbeat."""
    while True:
        msg = fix.recv(timeout)
        if msg.msg_type != "0":
            return msg


def nothing_more(fix: FixClient) -> None:
    """Nothing but heartbeats is pending: a TestRequest's Heartbeat is the next message."""
    fix.send("1", [(112, "anything-more?")])
    msg = fix.expect("0", skip=())
    while msg.get(112) != "anything-more?":  # a scheduled heartbeat came first
        msg = fix.expect("0", skip=())


@dataclass
class Traded:
    single: RawMessage  # the AE CLIENT2 received for each trade
    spread: RawMessage


@pytest.fixture(scope="module")
def traded(gateway) -> Traded:
    desk = Desk(gateway, VIEWER_TOKEN)
    client = RfqClient(gateway, "CLIENT2")
    try:
        client.rfq("tr-single")
        rfq_id = desk.event("RfqToDesk")["rfq"]["rfq_id"]
        assert desk.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
        client.hit(client.quote(), Side.BUY, "tr-single-hit")
        assert client.next("8").get(39) == "2"
        single = client.next("AE")

        client.rfq("tr-spread", legs=SPREAD, label=LABEL)
        shown = desk.event("RfqToDesk")["rfq"]
        assert shown["label"] == LABEL
        listed = httpx.get(f"{gateway.http}/desk/rfqs/{shown['rfq_id']}", headers=desk.headers)
        assert listed.json()["rfq"]["label"] == LABEL
        legs = [
            {"leg_no": 1, "bid_px": "4100", "offer_px": "4200"},
            {"leg_no": 2, "bid_px": "1000", "offer_px": "1000"},
        ]
        r = desk.quote(shown["rfq_id"], bid_px="3100", offer_px="3200", legs=legs)
        assert r.status_code == 201, r.text
        quote = client.quote()
        assert quote.symbol == LABEL and len(quote.legs) == 2
        client.hit(quote, Side.BUY, "tr-spread-hit")
        reports = [client.next("8") for _ in range(3)]  # the package, then each leg
        assert [(m.get(442), m.get(55)) for m in reports] == [
            ("3", LABEL),
            ("2", SPREAD[0][0]),
            ("2", SPREAD[1][0]),
        ]
        spread = client.next("AE")
        assert (spread.get(55), spread.get(167), spread.get(31)) == (LABEL, "MLEG", "3200")
        stored = httpx.get(f"{gateway.http}/trades/{spread.get(571)}", headers=ADMIN).json()
        assert stored["label"] == LABEL
        return Traded(single, spread)
    finally:
        desk.close()
        client.close()


def ask(fix: FixClient, req_id: str, kind: str = "0", criteria=()) -> tuple[RawMessage, list]:
    """Send an AD; its AQ and the AEs it announces."""
    fix.send("AD", [(568, req_id), (569, kind), *criteria])
    ack = business(fix)
    assert ack.msg_type == "AQ", ack.fields
    assert ack.get(568) == req_id
    reports = [business(fix) for _ in range(int(ack.get(748)))]
    assert all(r.msg_type == "AE" and r.get(568) == req_id for r in reports)
    return ack, reports


@pytest.fixture
def client2(gateway, traded):
    c = connect(gateway, "CLIENT2")
    yield c
    c.logout()


def test_a_trade_by_its_report_id(traded, client2):
    trade_id = traded.single.get(571)
    ack, (report,) = ask(client2, "by-id", "1", [(571, trade_id)])
    assert [ack.get(t) for t in (748, 749, 750)] == ["1", "0", "0"]
    assert (report.get(571), report.get(570), report.get(912), report.get(748)) == (
        trade_id,
        "Y",
        "Y",
        "1",
    )
    assert (report.get(31), report.get(32), report.get(55)) == ("4300", "10", traded.single.get(55))
    nothing_more(client2)


def test_all_trades_oldest_first_the_last_marked_and_the_label_kept(traded, client2):
    ack, reports = ask(client2, "all")
    assert (ack.get(748), ack.get(750)) == ("2", "0")
    assert [r.get(571) for r in reports] == [traded.single.get(571), traded.spread.get(571)]
    assert [r.get(912) for r in reports] == [None, "Y"]
    assert (reports[1].get(55), reports[1].get(167)) == (LABEL, "MLEG")  # read from the database
    assert all(r.get(797) is None for r in reports)  # answers, not copies


def test_a_time_range_and_a_trade_date(traded, client2):
    day, at = traded.single.get(75), traded.single.get(60)
    one_instant = [(580, 2), (75, day), (60, at), (75, day), (60, at)]
    _, reports = ask(client2, "range", "1", one_instant)
    assert [r.get(571) for r in reports] == [traded.single.get(571)]
    _, reports = ask(client2, "day", "1", [(580, 1), (75, day)])
    assert len(reports) == 2


def test_no_match_is_an_ack_with_zero_reports(traded, client2):
    past = [(580, 2), (75, "20200101"), (75, "20200102")]
    ack, reports = ask(client2, "past", "0", past)
    assert (ack.get(748), ack.get(749), ack.get(750), reports) == ("0", "0", "0", [])
    nothing_more(client2)


def test_someone_elses_trade_is_not_returned(gateway, traded):
    other = connect(gateway, "CLIENT3")
    try:
        ack, reports = ask(other, "theirs", "1", [(571, traded.single.get(571))])
        assert (ack.get(748), reports) == ("0", [])
        ack, reports = ask(other, "mine", "0")
        assert (ack.get(748), reports) == ("0", [])
        nothing_more(other)
    finally:
        other.logout()


def test_a_drop_copy_gets_its_clients_trades(gateway, traded):
    dc = connect(gateway, "DROPCOPY")
    try:
        ack, reports = ask(dc, "dc-all", "0")
        assert ack.get(748) == "2"
        assert {r.get(571) for r in reports} == {traded.single.get(571), traded.spread.get(571)}
    finally:
        dc.logout()


@pytest.mark.parametrize(
    ("kind", "criteria", "result", "words"),
    [
        ("2", [], "8", "TradeRequestType(569) '2' not supported"),
        ("0", [(580, 1), (75, "20261345")], "99", "TradeDate(75) is not a date"),
        ("0", [(580, 2), (75, "20260302"), (75, "20260301")], "99", "start TradeDate is after"),
        ("0", [(263, "1")], "99", "only snapshots"),
        ("0", [(55, "BTC-PERP")], "99", "criteria not supported: Symbol(55)"),
    ],
)
def test_bad_requests_are_rejected_with_a_reason(client2, kind, criteria, result, words):
    ack, reports = ask(client2, "bad", kind, criteria)
    assert (ack.get(750), ack.get(749), ack.get(748), reports) == ("2", result, "0", [])
    assert words in ack.get(58)
    nothing_more(client2)


def test_a_type_fix_does_not_define_is_refused_by_the_session_layer(client2):
    client2.send("AD", [(568, "type-7"), (569, "7")])
    reject = business(client2)
    assert (reject.msg_type, reject.get(371), reject.get(373)) == ("3", "569", "5")
    nothing_more(client2)
