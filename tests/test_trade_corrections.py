"""Corrections and busts end to end: a trade made over a real FIX session with desks over HTTP,
then corrected or busted through the admin API of the running gateway, whose simulated
clearinghouse validates every message against the official FIXML schema."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from decimal import Decimal

import httpx
import pytest
from lxml import etree

from fixspec.messages import Side
from gateway.clearinghouse.schemas import SchemaRegistry
from gateway.clearinghouse.simulator import ClearinghouseSimulator, DropMode, SimulatorRules
from gateway.passwords import hash_token
from otc.clearing import fixml
from tests.harness import API_TOKEN, DESK_B_TOKEN, VIEWER_TOKEN, GatewayProcess, shared_dir
from tests.otc_support import Desk, RfqClient

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}
SECOND_ADMIN_TOKEN = "test-second-admin-token"
ADMIN2 = {"Authorization": f"Bearer {SECOND_ADMIN_TOKEN}"}
DESK = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
REQ_IDS = itertools.count(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _extra(second_approver: bool) -> str:
    schemas = shared_dir() / "schemas"
    return f"""
[clearing]
schema_dir = "{schemas}"
[trades]
second_approver = {"true" if second_approver else "false"}
[[api.tokens]]
name = "test-second-admin"
role = "admin"
hash = "{hash_token(SECOND_ADMIN_TOKEN)}"
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), extra=_extra(False)).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture
def client(gateway):
    c = RfqClient(gateway)
    yield c
    c.close()


def make_trade(gw, client: RfqClient, req_id: str, qty: str = "10") -> str:
    """An RFQ to desks A and B; A quotes, the client lifts it; returns the trade id."""
    desks = [Desk(gw, t) for t in (VIEWER_TOKEN, DESK_B_TOKEN)]
    try:
        client.rfq(req_id, qty=qty)
        rfq_id = {d.event("RfqToDesk")["rfq"]["rfq_id"] for d in desks}.pop()
        assert desks[0].quote(rfq_id, bid_px="4100", offer_px="4250").status_code == 201
        client.hit(client.quote(), Side.BUY, f"{req_id}-hit")
        assert client.next("8").get(150) == "F"
        ae = client.next("AE")
        assert ae.get(487) == "0"
        return desks[0].event("TradeCaptured")["trade"]["trade_id"]
    finally:
        for d in desks:
            d.close()


def wait_for(gw, trade_id: str, done, what: str) -> dict:
    deadline = time.monotonic() + 15
    body: dict = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{gw.http}/trades/{trade_id}", headers=ADMIN).json()
        if done(body):
            return body
        time.sleep(0.1)
    raise AssertionError(f"trade {trade_id}: {what}: {body}")


def all_acked(body: dict) -> bool:
    return bool(body["clearing"]) and all(m["state"] == "acked" for m in body["clearing"])


def test_correct_price_then_bust_over_fix_http_and_clearing(gateway, client):
    trade_id = make_trade(gateway, client, "corr-1")
    wait_for(gateway, trade_id, all_acked, "original not cleared")

    r = httpx.post(
        f"{gateway.http}/trades/{trade_id}/corrections",
        headers=ADMIN,
        json={"price": "4230", "reason": "agreed price was 4230"},
    )
    assert r.status_code == 201, r.text
    v2 = r.json()
    assert (v2["version"], v2["previous_report_id"], v2["price"]) == (2, trade_id, "4230")
    er = client.next("8")
    assert (er.get(150), er.get(19), er.get(31), er.get(32)) == ("G", trade_id, "4230", "10")
    ae = client.next("AE")
    assert (ae.get(487), ae.get(572), ae.get(571), ae.get(31)) == (
        "2",
        trade_id,
        v2["report_id"],
        "4230",
    )
    body = wait_for(gateway, trade_id, all_acked, "correction not cleared")
    assert (body["price"], body["version"], body["status"]) == ("4230", 2, "active")
    replace_msg = body["clearing"][1]
    assert replace_msg["clearing_trade_ids"] == body["clearing"][0]["clearing_trade_ids"]

    r = httpx.post(
        f"{gateway.http}/trades/{trade_id}/bust", headers=ADMIN, json={"reason": "wrong client"}
    )
    assert r.status_code == 201, r.text
    v3 = r.json()
    er = client.next("8")
    assert (er.get(150), er.get(19), er.get(39)) == ("H", trade_id, "4")
    ae = client.next("AE")
    assert (ae.get(487), ae.get(572)) == ("1", v2["report_id"])
    body = wait_for(gateway, trade_id, all_acked, "bust not cleared")
    assert (body["status"], body["version"]) == ("busted", 3)
    assert [m["state"] for m in body["clearing"]] == ["acked"] * 3

    chain = httpx.get(f"{gateway.http}/trades/{trade_id}/versions", headers=ADMIN).json()
    assert [(v["version"], v["kind"], v["previous_report_id"]) for v in chain] == [
        (1, "new", None),
        (2, "correction", trade_id),
        (3, "bust", v2["report_id"]),
    ]
    assert v3["report_id"] == chain[2]["report_id"]

    again = httpx.post(
        f"{gateway.http}/trades/{trade_id}/bust", headers=ADMIN, json={"reason": "twice"}
    )
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert "busted" in again.json()["detail"]


def test_the_audit_trail_links_each_version_to_its_predecessor(gateway, client):
    trade_id = make_trade(gateway, client, "corr-audit")
    r = httpx.post(
        f"{gateway.http}/trades/{trade_id}/corrections",
        headers=ADMIN,
        json={"quantity": "4", "account": "ACC-7", "reason": "partial allocation"},
    )
    assert r.status_code == 201, r.text
    er, ae = client.next("8"), client.next("AE")
    assert (er.get(150), er.get(32), er.get(1)) == ("G", "4", "ACC-7")
    assert ae.get(32) == "4"
    deadline = time.monotonic() + 10
    items: list[dict] = []
    while time.monotonic() < deadline and not items:
        page = httpx.get(
            f"{gateway.http}/compliance/search",
            headers=ADMIN,
            params={"kind": "trade.corrected", "trade_id": trade_id},
        )
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        time.sleep(0.2)
    assert len(items) == 1, "one trade.corrected audit entry"
    detail = httpx.get(f"{gateway.http}/compliance/entries/{items[0]['seq']}", headers=ADMIN)
    text = detail.text
    assert detail.status_code == 200 and '"previous_report_id":"' + trade_id + '"' in text.replace(
        " ", ""
    ).replace("\\", ""), text


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("/trades/NO-SUCH/corrections", {"price": "1", "reason": "x"}, ADMIN, 404),
        ("/trades/NO-SUCH/bust", {"reason": "x"}, ADMIN, 404),
        ("/trades/{id}/corrections", {"quantity": "0", "reason": "x"}, ADMIN, 422),
        ("/trades/{id}/corrections", {"quantity": "-5", "reason": "x"}, ADMIN, 422),
        ("/trades/{id}/corrections", {"reason": "nothing"}, ADMIN, 422),
        ("/trades/{id}/corrections", {"price": "1", "reason": "x"}, DESK, 403),
        ("/trades/{id}/bust", {"reason": "x"}, DESK, 403),
    ],
)
def test_bad_input_is_refused_with_a_problem(gateway, client, path, body, headers, status):
    trade_id = make_trade(gateway, client, f"corr-bad-{next(REQ_IDS)}")
    r = httpx.post(gateway.http + path.format(id=trade_id), headers=headers, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    after = httpx.get(f"{gateway.http}/trades/{trade_id}", headers=ADMIN).json()
    assert after["version"] == 1 and after["price"] == "4250"  # nothing changed


def test_cli_corrects_through_the_running_gateway(gateway, client):
    trade_id = make_trade(gateway, client, "corr-cli")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "trades",
            "correct",
            trade_id,
            "--price",
            "4240",
            "--reason",
            "cli correction",
            "--config",
            str(gateway.config_path),
        ],
        cwd=ROOT,
        env={**os.environ, "FIXBRIDGE_TOKEN": API_TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert client.next("8").get(150) == "G"
    assert httpx.get(f"{gateway.http}/trades/{trade_id}", headers=ADMIN).json()["price"] == "4240"
    refused = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "trades", "bust", "NO-SUCH", "--reason", "x"]
        + ["--config", str(gateway.config_path)],
        cwd=ROOT,
        env={**os.environ, "FIXBRIDGE_TOKEN": API_TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "404" in refused.stderr and "NO-SUCH" in refused.stderr


def test_second_approver_flow(tmp_path):
    gw = GatewayProcess(tmp_path / "gw", extra=_extra(True)).start()
    try:
        client = RfqClient(gw)
        trade_id = make_trade(gw, client, "corr-2nd")
        r = httpx.post(
            f"{gw.http}/trades/{trade_id}/corrections",
            headers=ADMIN,
            json={"price": "4200", "reason": "needs four eyes"},
        )
        assert r.status_code == 202, r.text
        proposal = r.json()
        assert proposal["state"] == "proposed" and proposal["version"] == 2
        # not in effect: the trade is unchanged
        assert httpx.get(f"{gw.http}/trades/{trade_id}", headers=ADMIN).json()["price"] == "4250"
        # a second proposal while one waits is refused
        busy = httpx.post(f"{gw.http}/trades/{trade_id}/bust", headers=ADMIN2, json={"reason": "x"})
        assert busy.status_code == 409
        same = httpx.post(f"{gw.http}/trades/{trade_id}/versions/2/approve", headers=ADMIN)
        assert same.status_code == 403
        assert same.headers["content-type"].startswith("application/problem+json")
        assert "different admin" in same.json()["detail"]
        ok = httpx.post(f"{gw.http}/trades/{trade_id}/versions/2/approve", headers=ADMIN2)
        assert ok.status_code == 201, ok.text
        assert (ok.json()["approved_by"], ok.json()["proposed_by"]) == (
            "test-second-admin",
            "test-admin",
        )
        assert client.next("8").get(150) == "G"
        assert client.next("AE").get(487) == "2"
        body = wait_for(gw, trade_id, all_acked, "approved correction not cleared")
        assert body["price"] == "4200"
        twice = httpx.post(f"{gw.http}/trades/{trade_id}/versions/2/approve", headers=ADMIN2)
        assert twice.status_code == 409
        # a proposal turned down never takes effect, and frees the trade for another one
        bust = httpx.post(f"{gw.http}/trades/{trade_id}/bust", headers=ADMIN, json={"reason": "?"})
        assert (bust.status_code, bust.json()["version"]) == (202, 3)
        declined = httpx.post(f"{gw.http}/trades/{trade_id}/versions/3/decline", headers=ADMIN2)
        assert (declined.status_code, declined.json()["state"]) == (200, "declined")
        chain = httpx.get(f"{gw.http}/trades/{trade_id}/versions", headers=ADMIN).json()
        assert [v["state"] for v in chain] == ["applied", "applied"]
        again = httpx.post(
            f"{gw.http}/trades/{trade_id}/corrections",
            headers=ADMIN2,
            json={"quantity": "8", "reason": "resize"},
        )
        assert (again.status_code, again.json()["version"]) == (202, 3)
        after = httpx.get(f"{gw.http}/trades/{trade_id}", headers=ADMIN).json()
        assert (after["status"], after["version"]) == ("active", 2)
        client.close()
    finally:
        assert gw.stop() == 0, gw.stderr()


def test_fixml_of_correction_and_bust_validates(gateway, client):
    """What the gateway sends is what the simulator validated; validate the stored bodies again
    here, independently, against the official schema set."""
    from gateway.store.clearing import SqlOutbox
    from gateway.store.connect import connect

    trade_id = make_trade(gateway, client, "corr-xsd")
    for path, body in (
        (f"/trades/{trade_id}/corrections", {"quantity": "6", "reason": "resize"}),
        (f"/trades/{trade_id}/bust", {"reason": "cancel"}),
    ):
        assert httpx.post(gateway.http + path, headers=ADMIN, json=body).status_code == 201
        client.next("8"), client.next("AE")
    wait_for(gateway, trade_id, all_acked, "not cleared")
    database = connect(f"sqlite:///{gateway.data_dir / 'fixbridge.db'}")
    try:
        messages = SqlOutbox(database).for_trade(trade_id)
    finally:
        database.dispose()
    schemas = SchemaRegistry(shared_dir() / "schemas")
    kinds = []
    for msg in messages:
        assert schemas.validate_bytes(msg.body) == []
        rpt = etree.fromstring(msg.body).find(f"{{{fixml.FIXML_NS}}}TrdCaptRpt")
        kinds.append((rpt.get("TransTyp"), rpt.get("RptRefID")))
    assert kinds == [
        ("0", None),
        ("2", messages[0].key),
        ("1", messages[1].key),
    ]
    assert Decimal(etree.fromstring(messages[1].body)[0].get("LastQty")) == Decimal("6")


def _gateway_clearing_to(sim: ClearinghouseSimulator, workdir) -> GatewayProcess:
    """A gateway delivering to ``sim``, run by this test, so the test controls its answers."""
    extra = f'[clearing]\nmode = "http"\nurl = "{sim.url}"\n'
    return GatewayProcess(workdir, extra=extra).start()


def test_a_correction_racing_the_originals_ack_waits_for_it(tmp_path):
    """The clearinghouse withholds its answer to the original (it holds the trade; the gateway
    must ask); the correction made meanwhile is held, and sent only once the original is acked,
    so the clearinghouse never sees a replace of a report it does not hold."""
    rules = SimulatorRules(drop_first=1, drop_mode=DropMode.HANG, hang_seconds=3)
    schemas = SchemaRegistry(shared_dir() / "schemas")
    with ClearinghouseSimulator(rules=rules, schemas=schemas) as sim:
        gw = _gateway_clearing_to(sim, tmp_path / "gw")
        try:
            client = RfqClient(gw)
            trade_id = make_trade(gw, client, "race-1")
            r = httpx.post(
                f"{gw.http}/trades/{trade_id}/corrections",
                headers=ADMIN,
                json={"price": "4245", "reason": "race"},
            )
            assert r.status_code == 201, r.text
            body = httpx.get(f"{gw.http}/trades/{trade_id}", headers=ADMIN).json()
            original, correction = body["clearing"]
            assert original["state"] != "acked", "the answer was to be withheld"
            assert (correction["state"], correction["attempts"]) == ("pending", 0)
            body = wait_for(gw, trade_id, all_acked, "correction not cleared after the original")
            assert sim.stats.posts_by_key[body["clearing"][1]["key"]] == 1
            [row] = sim.register_rows()
            assert row.economics.price == Decimal("4245")
            client.close()
        finally:
            assert gw.stop() == 0, gw.stderr()


def test_a_correction_behind_a_rejected_original_fails_with_the_reason(tmp_path):
    rules = SimulatorRules(max_quantity=Decimal("50"))
    with ClearinghouseSimulator(rules=rules) as sim:
        gw = _gateway_clearing_to(sim, tmp_path / "gw")
        try:
            client = RfqClient(gw)
            trade_id = make_trade(gw, client, "race-rej", qty="100")
            r = httpx.post(
                f"{gw.http}/trades/{trade_id}/corrections",
                headers=ADMIN,
                json={"quantity": "40", "reason": "resize below the limit"},
            )
            assert r.status_code == 201, r.text
            body = wait_for(
                gw,
                trade_id,
                lambda b: [m["state"] for m in b["clearing"]] == ["rejected", "rejected"],
                "correction not failed",
            )
            why = body["clearing"][1]["reject_reason"]
            assert body["clearing"][0]["key"] in why and "was rejected" in why
            assert body["clearing_status"] == "rejected" and body["quantity"] == "40"
            assert sim.stats.posts_by_key[body["clearing"][1]["key"]] == 0  # never sent
            client.close()
        finally:
            assert gw.stop() == 0, gw.stderr()


def test_a_held_correction_survives_a_restart_and_goes_after_the_original(tmp_path):
    """Stop the gateway while the correction waits behind the unanswered original: both are in
    the database, and after the restart the original is resolved first, then the correction."""
    rules = SimulatorRules(drop_first=1, drop_mode=DropMode.HANG, hang_seconds=3)
    with ClearinghouseSimulator(rules=rules) as sim:
        gw = _gateway_clearing_to(sim, tmp_path / "gw")
        try:
            client = RfqClient(gw)
            trade_id = make_trade(gw, client, "restart-1")
            r = httpx.post(
                f"{gw.http}/trades/{trade_id}/corrections",
                headers=ADMIN,
                json={"price": "4244", "reason": "before the restart"},
            )
            assert r.status_code == 201, r.text
            held = httpx.get(f"{gw.http}/trades/{trade_id}", headers=ADMIN).json()["clearing"][1]
            assert (held["state"], held["attempts"]) == ("pending", 0)
            client.close()
        finally:
            assert gw.stop() == 0, gw.stderr()
        gw.start()
        try:
            body = wait_for(gw, trade_id, all_acked, "not cleared after the restart")
            assert (body["price"], body["version"]) == ("4244", 2)
            assert sim.stats.posts_by_key[body["clearing"][1]["key"]] == 1
            [row] = sim.register_rows()
            assert row.economics.price == Decimal("4244")
        finally:
            assert gw.stop() == 0, gw.stderr()
