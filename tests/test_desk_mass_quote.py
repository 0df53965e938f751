"""Mass quotes end to end: a desk quotes many RFQs in one message on its WebSocket stream, or in
one ``POST /desk/quotes/batch``; a real FIX client receives each accepted quote as a Quote (S),
and the journal brings the quotes back after a restart."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from gateway.fix import rfq_client
from gateway.http.desk_messages import MAX_UNREADABLE_IN_A_ROW
from tests.harness import API_TOKEN, COMPLIANCE_TOKEN, VIEWER_TOKEN, GatewayProcess
from tests.otc_support import Desk, RfqClient

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw")).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture
def desk(gateway):
    d = Desk(gateway, VIEWER_TOKEN)
    yield d
    d.close()


@pytest.fixture
def client(gateway):
    c = RfqClient(gateway)
    yield c
    c.close()


def open_rfqs(client: RfqClient, desk: Desk, prefix: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        client.rfq(f"{prefix}-{i}")
        ids.append(desk.event("RfqToDesk")["rfq"]["rfq_id"])
    return ids


def send(desk: Desk, message: dict | str) -> dict:
    """Send one message on the desk's stream and return its answer (events in between skipped)."""
    desk.ws.send(message if isinstance(message, str) else json.dumps(message))
    deadline = time.monotonic() + 10
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no answer to the desk's message"
        answer = json.loads(desk.ws.recv(timeout=left))
        if "type" in answer:
            return answer


def three_quotes(rfqs: list[str]) -> list[dict]:
    good = {"bid_px": "4100", "offer_px": "4300", "valid_for_ms": 60_000}
    return [
        {"rfq_id": rfqs[0], **good},
        {"rfq_id": rfqs[1], "bid_px": "4400", "offer_px": "4300", "valid_for_ms": 60_000},
        {"rfq_id": rfqs[2], **good, "desk_quote_ref": "mine-3"},
    ]


def check_two_of_three(client: RfqClient, rfqs: list[str], results: list[dict]) -> None:
    """Quotes 1 and 3 accepted (signed, sent as S), quote 2 (crossed) refused with its reason."""
    assert [r["status"] for r in results] == ["accepted", "refused", "accepted"]
    assert [r["rfq_id"] for r in results] == rfqs
    assert results[1]["code"] == "crossed_quote" and results[1]["reason"]
    accepted = [results[0], results[2]]
    for r in accepted:
        assert len(r["signature"]) == 128 and len(r["quote_hash"]) == 64
    sent = [rfq_client.decode_quote(client.next("S")) for _ in accepted]
    assert sorted(q.quote_id for q in sent) == sorted(r["quote_id"] for r in accepted)
    assert {q.quote_hash for q in sent} == {r["quote_hash"] for r in accepted}


def test_a_mass_quote_on_the_stream_sends_each_good_quote_and_refuses_the_bad_one(
    gateway, desk, client
):
    rfqs = open_rfqs(client, desk, "mq-ws", 3)
    answer = send(desk, {"type": "mass_quote", "id": "b-1", "quotes": three_quotes(rfqs)})
    assert (answer["type"], answer["id"]) == ("mass_quote_ack", "b-1")
    check_two_of_three(client, rfqs, answer["results"])

    # each accepted quote's acceptance and the S sent for it are in the audit trail
    quote_id = answer["results"][0]["quote_id"]
    deadline = time.monotonic() + 10
    while True:
        found = httpx.get(
            f"{gateway.http}/compliance/search",
            params={"quote_id": quote_id},
            headers={"Authorization": f"Bearer {COMPLIANCE_TOKEN}"},
        ).json()
        kinds = {item["kind"] for item in found["items"]}
        if {"otc.QuoteAcknowledged", "fix.out"} <= kinds or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {"otc.QuoteAcknowledged", "otc.QuoteToClient", "fix.out"} <= kinds

    # the next burst replaces a live quote; the client sees the new one
    again = send(
        desk,
        {
            "type": "mass_quote",
            "id": "b-2",
            "quotes": [
                {
                    "rfq_id": rfqs[0],
                    "replaces_quote_id": quote_id,
                    "bid_px": "4150",
                    "offer_px": "4250",
                }
            ],
        },
    )
    (replaced,) = again["results"]
    assert replaced["status"] == "accepted" and replaced["quote_id"] != quote_id
    assert rfq_client.decode_quote(client.next("S", "AI")).quote_id in (replaced["quote_id"],)


def test_more_than_a_hundred_quotes_are_refused_naming_the_limit(gateway, desk):
    many = [{"rfq_id": f"R-{i}", "bid_px": "1", "offer_px": "2"} for i in range(101)]
    answer = send(desk, {"type": "mass_quote", "id": "big", "quotes": many})
    assert (answer["type"], answer["id"], answer["code"]) == ("error", "big", "too_many_quotes")
    assert "100" in answer["reason"]
    r = httpx.post(f"{gateway.http}/desk/quotes/batch", json={"quotes": many}, headers=desk.headers)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "100" in r.json()["detail"]


def test_malformed_messages_get_an_error_and_the_stream_stays_open(gateway, desk, client):
    assert send(desk, "not json")["code"] == "malformed"
    assert send(desk, "[1, 2]")["code"] == "malformed"
    assert send(desk, {"type": "dance", "id": "x"})["code"] == "unknown_type"
    bad = send(desk, {"type": "mass_quote", "id": "q", "quotes": [{"rfq_id": "R", "bid_px": "x"}]})
    assert (bad["type"], bad["id"], bad["code"]) == ("error", "q", "invalid")
    assert "bid_px" in bad["reason"]
    # the same connection still quotes
    (rfq,) = open_rfqs(client, desk, "mq-after-errors", 1)
    ok = send(desk, {"type": "mass_quote", "id": "ok", "quotes": [three_quotes([rfq] * 3)[0]]})
    assert ok["results"][0]["status"] == "accepted"
    assert rfq_client.decode_quote(client.next("S")).quote_id == ok["results"][0]["quote_id"]


def test_a_desk_sending_only_garbage_is_cut_off_and_one_good_message_resets_the_count(gateway):
    desk = Desk(gateway, VIEWER_TOKEN)
    try:
        for _ in range(MAX_UNREADABLE_IN_A_ROW - 1):
            assert send(desk, "not json")["code"] == "malformed"
        # a mass quote with a bad quote is a desk message: answered, and the count starts again
        bad = {"type": "mass_quote", "id": "q", "quotes": [{"rfq_id": "R", "bid_px": "x"}]}
        assert send(desk, bad)["code"] == "invalid"
        for _ in range(MAX_UNREADABLE_IN_A_ROW - 1):
            assert send(desk, {"type": "dance"})["code"] == "unknown_type"
        desk.ws.send("not json")  # the last straw
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                desk.ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason == "too many unreadable messages"
    finally:
        desk.close()
    # the gateway still serves desks
    fresh = Desk(gateway, VIEWER_TOKEN)
    try:
        assert send(fresh, {"type": "dance"})["code"] == "unknown_type"
    finally:
        fresh.close()


def test_only_a_desk_token_opens_the_stream_and_quotes_in_bulk(gateway):
    bearer = base64.urlsafe_b64encode(API_TOKEN.encode()).decode().rstrip("=")
    with pytest.raises(InvalidStatus):
        ws_connect(
            f"ws://127.0.0.1:{gateway.http_port}/desk/stream",
            subprotocols=["fixbridge.desk.v1", f"fixbridge.bearer.{bearer}"],
        )
    r = httpx.post(
        f"{gateway.http}/desk/quotes/batch",
        json={"quotes": [{"rfq_id": "R", "bid_px": "1", "offer_px": "2"}]},
        headers=ADMIN,
    )
    assert r.status_code == 403


def test_the_batch_route_has_the_same_semantics(gateway, desk, client):
    rfqs = open_rfqs(client, desk, "mq-rest", 3)
    r = httpx.post(
        f"{gateway.http}/desk/quotes/batch",
        json={"quotes": three_quotes(rfqs)},
        headers=desk.headers,
    )
    assert r.status_code == 200, r.text
    check_two_of_three(client, rfqs, r.json()["results"])


def test_a_mass_quote_comes_back_after_a_restart(tmp_path):
    g = GatewayProcess(tmp_path).start()
    client, desk = RfqClient(g), Desk(g, VIEWER_TOKEN)
    try:
        rfqs = open_rfqs(client, desk, "mq-restart", 3)
        answer = send(desk, {"type": "mass_quote", "id": "r", "quotes": three_quotes(rfqs)})
        accepted = {r["rfq_id"]: r for r in answer["results"] if r["status"] == "accepted"}
        assert len(accepted) == 2
    finally:
        desk.close()
        client.fix.close()
    g.kill()
    g.start()
    try:
        listed = httpx.get(f"{g.http}/desk/rfqs", headers=desk.headers).json()
        mine = {r["rfq"]["rfq_id"]: r["my_quotes"] for r in listed}
        for rfq_id, result in accepted.items():
            (q,) = mine[rfq_id]
            assert q["quote"]["quote_id"] == result["quote_id"]
            assert q["quote_hash"] == result["quote_hash"] and q["signature"] == result["signature"]
        assert mine[rfqs[1]] == []  # the refused one left nothing behind
    finally:
        assert g.stop() == 0, g.stderr()
