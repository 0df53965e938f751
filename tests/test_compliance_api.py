"""The compliance routes against a real gateway: roles, every query audited, search by each
filter, timelines, receipts the core's verifier accepts, CSV exports, and records that rebuild
FIX messages, clearing messages and the clearinghouse's answers byte for byte."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fixspec.messages import Side
from gateway.clearing import AuditedSender
from gateway.clearinghouse.simulator import ClearinghouseSimulator, SimulatorRules
from gateway.clearinghouse.transport import HttpSender
from otc.audit import verify_receipt
from otc.audit.wire import body_bytes, fix_record, fix_text, fix_wire
from otc.clearing.codec import parse_ack, read_submission
from otc.clearing.dispatcher import ClearingDispatcher, enqueue
from otc.clearing.outbox import ClearingState, InMemoryOutbox, RetryPolicy
from otc.clearing.samples import option_trade
from tests.harness import (
    API_TOKEN,
    CLIENT_VIEWER_TOKEN,
    COMPLIANCE_TOKEN,
    VIEWER_TOKEN,
    GatewayProcess,
    order_fields,
)
from tests.otc_support import Desk, RfqClient

COMPLIANCE = {"Authorization": f"Bearer {COMPLIANCE_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}
SOH = "\x01"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw")).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture(scope="module")
def story(gateway):
    """An RFQ traded (desk A quotes over the API, CLIENT2 lifts it with ClOrdID cmp-clord) and
    cleared, and an order whose Text (58) holds a '|', sent as known bytes."""
    desk = Desk(gateway, VIEWER_TOKEN)
    client = RfqClient(gateway)
    try:
        started = datetime.now(UTC)
        client.rfq("cmp-rfq-1")
        rfq_id = desk.event("RfqToDesk")["rfq"]["rfq_id"]
        assert desk.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
        quote = client.quote()
        client.hit(quote, Side.BUY, "cmp-hit-1", cl_ord_id="cmp-clord")
        client.next("8")
        client.next("AE")
        trade_id = desk.event("TradeCaptured")["trade"]["trade_id"]
        order_bytes = client.fix.build("D", order_fields("cmp-pipe") + [(58, "a|b=c")])
        client.fix.send_raw(order_bytes)
        new = client.next("8")
        client.next("8")  # the fill
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            trade = httpx.get(f"{gateway.http}/trades/{trade_id}", headers=ADMIN).json()
            if trade["clearing_status"] == "cleared":
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"trade {trade_id} not cleared")
    finally:
        client.close()
        desk.close()
    return {
        "rfq_id": rfq_id,
        "quote_id": quote.quote_id,
        "trade_id": trade_id,
        "order_id": new.get(37),
        "order_bytes": order_bytes,
        "started": started,
    }


def search(gw, **params) -> dict:
    r = httpx.get(f"{gw.http}/compliance/search", params=params, headers=COMPLIANCE)
    assert r.status_code == 200, r.text
    return r.json()


def every(gw, **params) -> list[dict]:
    items, after = [], None
    while True:
        page = search(gw, **params, **({"after": after} if after is not None else {}))
        items += page["items"]
        if page["next"] is None:
            return items
        after = page["next"]


def entry(gw, seq: int) -> dict:
    r = httpx.get(f"{gw.http}/compliance/entries/{seq}", headers=COMPLIANCE)
    assert r.status_code == 200, r.text
    return r.json()


ROUTES = [
    ("get", "/compliance/me"),
    ("get", "/compliance/search?client=CLIENT2"),
    ("get", "/compliance/entries/0"),
    ("get", "/compliance/timeline/rfq/{rfq_id}"),
    ("get", "/compliance/receipts/trade/{trade_id}"),
    ("post", "/compliance/exports"),
]


def test_compliance_and_admin_only(gateway, story):
    for method, path in ROUTES:
        url = gateway.http + path.format(**story)
        assert httpx.request(method, url, json={}).status_code == 401, path
        for token in (VIEWER_TOKEN, CLIENT_VIEWER_TOKEN):
            r = httpx.request(method, url, json={}, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 403, (path, r.status_code)
        for headers in (COMPLIANCE, ADMIN):
            r = httpx.request(method, url, json={}, headers=headers)
            assert r.status_code in (200, 202), (path, r.status_code, r.text)


def test_every_query_is_audited_with_who_and_what(gateway, story):
    search(gateway, trade_id=story["trade_id"], kind="fix.out")
    entry(gateway, 3)
    httpx.get(f"{gateway.http}/compliance/timeline/trade/{story['trade_id']}", headers=COMPLIANCE)
    httpx.get(f"{gateway.http}/compliance/receipts/order/{story['order_id']}", headers=COMPLIANCE)
    queries = every(gateway, kind="compliance.query")
    seen = [(q["actor"], entry(gateway, q["seq"])["payload"]) for q in queries[-4:]]
    assert [who for who, _ in seen] == ["api:test-compliance"] * 4
    assert seen[0][1]["query"] == "search"
    assert seen[0][1]["filters"] == {"trade_id": story["trade_id"], "kind": "fix.out"}
    assert seen[1][1]["query"] == "entry" and seen[1][1]["filters"] == {"seq": 3}
    assert seen[2][1]["filters"] == {"trade_id": story["trade_id"]}
    assert seen[3][1]["query"] == "receipt"
    assert seen[3][1]["filters"] == {"order_id": story["order_id"]}
    # besides the api.action entry every route leaves
    actions = every(gateway, kind="api.action")
    assert any("/compliance/receipts/order/" in a["summary"] for a in actions)
    # a refused caller is audited too (as an auth failure and an action)
    httpx.get(f"{gateway.http}/compliance/search", headers={"Authorization": "Bearer nope"})
    assert every(gateway, kind="api.auth_failure")


def test_search_by_each_filter(gateway, story):
    by_clordid = every(gateway, cl_ord_id="cmp-clord")
    assert [(i["kind"], i["msg_type"]) for i in by_clordid] == [
        ("fix.in", "AJ"),
        ("fix.out", "8"),
        ("fix.out", "AE"),
    ]
    assert all(story["trade_id"] in i["refs"].get("trade_id", []) for i in by_clordid[1:])

    by_rfq = every(gateway, rfq_id=story["rfq_id"])
    kinds = {i["kind"] for i in by_rfq}
    assert {"otc.RfqStateChanged", "otc.QuoteToClient", "otc.TradeCaptured"} <= kinds

    by_quote = every(gateway, quote_id=story["quote_id"])
    assert {"fix.out"} <= {i["kind"] for i in by_quote}
    assert any(i["msg_type"] == "S" for i in by_quote)

    by_trade = every(gateway, trade_id=story["trade_id"])
    assert {"otc.TradeCaptured", "clearing.out", "clearing.in", "clearing.state"} <= {
        i["kind"] for i in by_trade
    }

    by_order = every(gateway, order_id=story["order_id"])
    assert {"fix.command"} == {i["kind"] for i in by_order}  # the order and all it caused

    by_desk = every(gateway, desk="DESK_A")
    assert by_desk and all("DESK_A" in i["refs"]["desk"] for i in by_desk)
    by_client = every(gateway, client="CLIENT2", kind="fix.in")
    assert {i["msg_type"] for i in by_client} >= {"A", "R", "AJ", "D"}
    assert all(i["actor"] == "session:CLIENT2" for i in by_client)
    # filters combine (AND)
    assert every(gateway, client="CLIENT1", cl_ord_id="cmp-clord") == []
    assert every(gateway, desk="DESK_B", trade_id=story["trade_id"]) == []

    # time range: from is inclusive, to exclusive; a range before the story has none of it
    first = by_clordid[0]
    at = first["ts"]
    assert every(gateway, cl_ord_id="cmp-clord", **{"from": at})[0]["seq"] == first["seq"]
    assert every(gateway, cl_ord_id="cmp-clord", to=at) == []
    before = (story["started"] - timedelta(hours=1)).isoformat()
    assert every(gateway, to=before) == []
    r = httpx.get(
        f"{gateway.http}/compliance/search",
        params={"from": "2026-01-01T00:00:00"},
        headers=COMPLIANCE,
    )
    assert r.status_code == 422  # no offset: refused, never guessed


def test_pages_follow_the_cursor(gateway, story):
    whole = every(gateway, client="CLIENT2")
    page = search(gateway, client="CLIENT2", limit=3)
    assert [i["seq"] for i in page["items"]] == [i["seq"] for i in whole[:3]]
    second = search(gateway, client="CLIENT2", limit=3, after=page["next"])
    assert [i["seq"] for i in second["items"]] == [i["seq"] for i in whole[3:6]]
    assert (
        httpx.get(
            f"{gateway.http}/compliance/search", params={"limit": 5000}, headers=COMPLIANCE
        ).status_code
        == 422
    )


def test_fix_message_with_a_pipe_in_a_value_comes_back_byte_for_byte(gateway, story):
    found = every(gateway, cl_ord_id="cmp-pipe", kind="fix.in")
    assert len(found) == 1
    detail = entry(gateway, found[0]["seq"])
    # the order is one command: the message in, the order's changes and the ERs it caused
    assert detail["kind"] == "fix.command"
    parts = detail["payload"]["parts"]
    assert [p["kind"] for p in parts] == [
        "fix.in",
        "order.state",
        "order.state",
        "fix.out",
        "fix.out",
    ]
    assert [p["kind"] for p in detail["parts"]] == [p["kind"] for p in parts]
    assert [p["fix"]["msg_type"] for p in detail["parts"] if p["fix"]] == ["D", "8", "8"]
    # the record rebuilds the exact bytes the client sent, '|' in Text and all
    assert fix_wire(parts[0]["payload"]) == story["order_bytes"]
    assert base64.b64decode(detail["fix"]["wire_b64"]) == story["order_bytes"]
    assert detail["fix"]["exact"] is True
    # and in the canonical line SOH is written \u0001 (one line, one hash)
    assert "\\u0001" in detail["line"] and SOH not in detail["line"]
    fields = {f["tag"]: f for f in detail["fix"]["fields"]}
    assert fields["58"] == {"tag": "58", "name": "Text", "value": "a|b=c", "enum_name": None}
    assert fields["35"]["enum_name"] == "NewOrderSingle"
    assert fields["54"] == {"tag": "54", "name": "Side", "value": "1", "enum_name": "BUY"}
    assert fields["40"]["name"] == "OrdType" and fields["40"]["enum_name"] == "LIMIT"
    # outgoing too: the ER the gateway sent, with our own custom dictionary fields named
    quote = [i for i in every(gateway, quote_id=story["quote_id"]) if i["msg_type"] == "S"][0]
    names = {f["tag"]: f["name"] for f in entry(gateway, quote["seq"])["fix"]["fields"]}
    assert names["5001"] == "QuoteSignature" and names["117"] == "QuoteID"


def test_clearing_message_and_ack_are_recorded_as_sent_and_received(gateway, story):
    trail = every(gateway, trade_id=story["trade_id"], kind="clearing.")
    out = [entry(gateway, i["seq"]) for i in trail if i["kind"] == "clearing.out"]
    answer = [entry(gateway, i["seq"]) for i in trail if i["kind"] == "clearing.in"]
    assert len(out) == 1 and len(answer) == 1
    sent = body_bytes(out[0]["payload"])
    assert sent is not None and out[0]["payload"]["idempotency_key"].startswith("cb-")
    submission = read_submission(sent)  # the FIXML trade report, parsed from the record
    assert story["trade_id"] in sent.decode()
    assert submission is not None
    ack = parse_ack(body_bytes(answer[0]["payload"]))
    cleared = httpx.get(
        f"{gateway.http}/clearing/messages",
        params={"trade_id": story["trade_id"]},
        headers=COMPLIANCE,
    ).json()
    assert [c.clearing_trade_id for c in ack.cleared] == cleared[0]["clearing_trade_ids"]
    assert answer[0]["payload"]["status"] == 200 and answer[0]["body"]["text"]


def test_audited_sender_keeps_exact_bytes_both_ways_and_status_answers(tmp_path):
    """In process, against the simulated clearinghouse: what the trail holds is exactly what
    went over the wire, both ways, including the answer to a status query after a reply was
    lost."""
    records: list[tuple[str, dict]] = []
    sim = ClearinghouseSimulator(rules=SimulatorRules(drop_first=1)).start()
    try:
        repo = InMemoryOutbox()
        now = datetime.now(UTC)
        policy = RetryPolicy(status_query_delay=timedelta(0))
        sender = AuditedSender(
            HttpSender(sim.url, verify=False, timeout=2),
            lambda kind, actor, payload: records.append((kind, payload)),
            "http",
        )
        msg = enqueue(repo, option_trade(), now)
        dispatcher = ClearingDispatcher(repo, sender, policy=policy)
        first = dispatcher.step(msg)  # the reply is dropped: unknown
        assert first.state is ClearingState.UNKNOWN
        final = dispatcher.step(repo.get(msg.key))  # status query, then the ack
        assert final.state is ClearingState.ACKED, final
        kinds = [k for k, _ in records]
        assert kinds == ["clearing.out", "clearing.query", "clearing.in"]
        sent = body_bytes(records[0][1])
        assert sent == msg.body
        assert hashlib.sha256(sent).hexdigest() == sim._answers[msg.key].digest
        assert records[2][1]["exchange"] == "status"
        assert body_bytes(records[2][1]) == sim.lookup(msg.key)
        json.dumps(records)  # plain JSON: goes into the trail as it is
    finally:
        sim.stop()


def test_body_and_fix_records_fall_back_to_base64():
    data = b"8=FIX.4.4\x0135=D\x0158=caf\xe9\x0110=000\x01"  # Latin-1, not UTF-8
    text = data.decode("utf-8", "surrogateescape")  # what QuickFIX hands Python
    record = fix_record(text)
    assert record["msg_type"] == "D" and "wire" not in record
    assert fix_wire(record) == data
    assert fix_text(record)[1] is False  # shown with U+FFFD: not the exact text
    assert body_bytes({"body_b64": base64.b64encode(b"\xff").decode()}) == b"\xff"
    # an old record ('|' for SOH) is shown, never passed off as the wire bytes
    old = {"msg_type": "D", "raw": "8=FIX.4.4|35=D|58=a|b|"}
    assert fix_wire(old) is None and fix_text(old) == ("8=FIX.4.4\x0135=D\x0158=a\x01b\x01", False)


def test_timelines(gateway, story):
    r = httpx.get(
        f"{gateway.http}/compliance/timeline/trade/{story['trade_id']}", headers=COMPLIANCE
    )
    assert r.status_code == 200
    items = r.json()["items"]
    seqs = [i["seq"] for i in items]
    assert seqs == sorted(seqs)
    msg_types = [i["msg_type"] for i in items if i["kind"].startswith("fix.")]
    # the whole life: QuoteRequest, Quote, QuoteResponse, the fill and the trade report
    assert msg_types == ["R", "S", "AJ", "8", "AE"]
    kinds = [i["kind"] for i in items]
    assert (
        kinds.index("otc.TradeCaptured") < kinds.index("clearing.out") < kinds.index("clearing.in")
    )
    assert "otc.RfqToDesk" in kinds and "api.action" not in kinds

    order = httpx.get(
        f"{gateway.http}/compliance/timeline/order/{story['order_id']}", headers=COMPLIANCE
    ).json()["items"]
    # the order's NewOrderSingle, its changes and both ERs: one command entry
    assert [(i["kind"], i["msg_type"]) for i in order] == [("fix.command", "D")]
    assert "ExecutionReport" in order[0]["summary"] and "order.state" in order[0]["summary"]
    missing = httpx.get(f"{gateway.http}/compliance/timeline/trade/nope", headers=COMPLIANCE)
    assert missing.status_code == 404


@pytest.mark.parametrize("subject", ["trade", "order", "rfq"])
def test_receipts_verify_with_the_core_verifier(gateway, story, subject):
    value = story[f"{subject}_id"]
    r = httpx.get(f"{gateway.http}/compliance/receipts/{subject}/{value}", headers=COMPLIANCE)
    assert r.status_code == 200, r.text
    body = r.json()
    key_id = body["receipt"]["checkpoint"]["key_id"]
    report = verify_receipt(body["receipt"], expected_key_id=key_id)
    assert report.ok, report
    least = 1 if subject == "order" else 5  # an order's life is one command entry here
    assert body["report"]["ok"] and report.entries == len(body["receipt"]["entries"]) >= least
    timeline = httpx.get(
        f"{gateway.http}/compliance/timeline/{subject}/{value}", headers=COMPLIANCE
    ).json()["items"]
    assert [e["seq"] for e in body["receipt"]["entries"]] == [i["seq"] for i in timeline]
    # tampering with one entry breaks it
    doc = body["receipt"]
    doc["entries"][0]["entry"] = doc["entries"][0]["entry"].replace('"seq"', '"seq" ', 1)
    assert not verify_receipt(doc).ok


def test_csv_export_with_progress(gateway, story):
    r = httpx.post(
        f"{gateway.http}/compliance/exports",
        headers=COMPLIANCE,
        json={"client": "CLIENT2", "kind": "fix."},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["total"] > 5 and job["filters"] == {"client": "CLIENT2", "kind": "fix."}
    deadline = time.monotonic() + 10
    while job["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
        job = httpx.get(
            f"{gateway.http}/compliance/exports/{job['job_id']}", headers=COMPLIANCE
        ).json()
    assert job["state"] == "done" and job["done"] == job["total"]
    download = httpx.get(gateway.http + job["download"], headers=COMPLIANCE)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert len(rows) == job["total"]
    assert {r["kind"] for r in rows} == {"fix.in", "fix.out", "fix.event", "fix.command"}
    pipe = [r for r in rows if r["cl_ord_id"] == "cmp-pipe" and r["kind"] == "fix.command"][0]
    # the payload column is the canonical payload: the exact wire bytes come back from it
    inbound = json.loads(pipe["payload"])["parts"][0]["payload"]
    assert fix_wire(inbound) == story["order_bytes"]
    assert pipe["entry_hash"] == entry(gateway, int(pipe["seq"]))["entry_hash"]
    assert httpx.get(gateway.http + job["download"]).status_code == 401
    assert (
        httpx.get(f"{gateway.http}/compliance/exports/nope", headers=COMPLIANCE).status_code == 404
    )


def test_csv_cells_never_start_a_formula(gateway, story):
    client = RfqClient(gateway)
    try:
        client.fix.send("D", order_fields("=HYPERLINK(1)"))
        client.next("8")
    finally:
        client.close()
    job = httpx.post(
        f"{gateway.http}/compliance/exports",
        headers=COMPLIANCE,
        json={"cl_ord_id": "=HYPERLINK(1)"},
    ).json()
    while job["state"] == "running":
        time.sleep(0.05)
        job = httpx.get(
            f"{gateway.http}/compliance/exports/{job['job_id']}", headers=COMPLIANCE
        ).json()
    text = httpx.get(gateway.http + job["download"], headers=COMPLIANCE).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(r["cl_ord_id"] == "'=HYPERLINK(1)" for r in rows)


def test_old_pipe_records_still_verify_beside_exact_ones(tmp_path):
    """A trail written before exact records ('raw' with '|' for SOH) is never rewritten: a log
    holding both forms exports and verifies, and the console shows the old one as inexact."""
    from gateway.audit.compliance import ComplianceTrail
    from gateway.audit.export import export_bundle
    from gateway.audit.keys import generate_signing_key
    from gateway.audit.log import AuditLog
    from gateway.audit.verify import verify_bundle
    from gateway.fix.dictionary import assemble

    directory = tmp_path / "audit"
    generate_signing_key(directory)
    wire = "8=FIX.4.4\x019=20\x0135=D\x0111=old-1\x0158=a|b\x0110=000\x01"
    with AuditLog.open(directory) as log:
        log.append(
            "fix.in", "session:CLIENT1", {"msg_type": "D", "raw": wire.replace(SOH, "|")}
        )  # as written before
        log.append("fix.in", "session:CLIENT1", fix_record(wire))
        trail = ComplianceTrail(log, assemble(), tmp_path / "exports")
        trail.refresh()
        old, new = (trail.detail(e) for e in trail.index.read_many([0, 1]))
        receipt = trail.receipt([0, 1])
    assert verify_bundle(export_bundle(directory, tmp_path / "b.tar").path).ok
    assert receipt["report"]["ok"]
    assert old["fix"]["exact"] is False and old["fix"]["wire_b64"] is None
    assert new["fix"]["exact"] is True
    assert base64.b64decode(new["fix"]["wire_b64"]) == wire.encode()
    # both are found by their ClOrdID; only the new one keeps Text whole
    assert old["refs"]["cl_ord_id"] == new["refs"]["cl_ord_id"] == ["old-1"]
    texts = [{f["tag"]: f["value"] for f in d["fix"]["fields"]}["58"] for d in (old, new)]
    assert texts == ["a", "a|b"]


def test_entry_refs_read_actors_payloads_and_fix_ids():
    from otc.audit.refs import entry_refs

    er = fix_record("8=FIX.4.4\x0135=9\x0137=NONE\x0111=c-2\x0141=c-1\x0110=000\x01")
    assert entry_refs("fix.out", "session:C1", er) == {
        ("client", "C1"),
        ("cl_ord_id", "c-2"),
        ("cl_ord_id", "c-1"),
    }  # 37=NONE links nothing
    captured = {"rfq_id": "R1", "desk_id": "D1", "trade": {"trade_id": "T1", "quote_id": "Q1"}}
    assert entry_refs("otc.TradeCaptured", "desk:D1", captured) == {
        ("desk", "D1"),
        ("rfq_id", "R1"),
        ("trade_id", "T1"),
        ("quote_id", "Q1"),
    }
    assert ("clearing_key", "cb-1") in entry_refs("clearing.in", "clearing", {"key": "cb-1"})
    # a compliance query names ids only as its filters
    assert entry_refs("compliance.query", "api:c", {"filters": {"rfq_id": "R1"}}) == set()
