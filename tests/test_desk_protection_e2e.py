"""Desk protections and the client's choice of dealers against a running gateway: a FIX client,
desks over HTTP and their WebSocket streams.

Market maker protection trips on DESK_A's second fill, pulls its resting quote (the FIX client
gets the QuoteStatusReport), freezes it across a restart until it resets; a desk stream asking
for cancel-on-disconnect pulls the desk's quotes when its last connection closes; a client names
its dealers and stays anonymous; a desk over its request rate gets 429."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from fixspec.codec import RawMessage
from fixspec.messages import Side
from gateway.fix import rfq_client
from otc.negotiation.commands import LegRequest, SubmitRfq
from tests.harness import API_TOKEN, DESK_B_TOKEN, DESK_C_TOKEN, VIEWER_TOKEN, GatewayProcess
from tests.otc_support import D, Desk, RfqClient

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}
OPTION = "BTC-27DEC26-100000-C"
PROTECTION = """
[otc.protection.DESK_A]
window_ms = 600000
max_fills = 2
"""
RATE = 20  # desk API requests per second


@dataclass
class ProtectedGateway(GatewayProcess):
    """The harness gateway with desk request rates set in ``[api]`` and DESK_C configured for
    cancel-on-disconnect."""

    def write_config(self):
        path = super().write_config()
        text = (
            path.read_text()
            .replace("[api]\n", f"[api]\ndesk_requests_per_second = {RATE}\n", 1)
            .replace("[otc]\n", '[otc]\ncancel_on_disconnect = ["DESK_C"]\n', 1)
        )
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = ProtectedGateway(tmp_path_factory.mktemp("gw"), extra=PROTECTION).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture
def client(gateway):
    c = RfqClient(gateway)
    yield c
    c.close()


def until(client: RfqClient, msg_type: str, timeout: float = 10) -> RawMessage:
    """The client's next ``msg_type`` message, skipping any other."""
    deadline = time.monotonic() + timeout
    while True:
        msg = client.fix.recv(max(deadline - time.monotonic(), 0.01))
        if msg.msg_type == msg_type:
            return msg


def ask(client: RfqClient, req_id: str, **kw) -> None:
    client.send(
        rfq_client.encode_client_rfq(
            SubmitRfq(client.comp_id, req_id, (LegRequest(OPTION, Side.BUY),), D(10), **kw)
        )
    )


def rfq_id_at(desk: Desk) -> str:
    return desk.event("RfqToDesk")["rfq"]["rfq_id"]


def trade(client: RfqClient, desk: Desk, req_id: str) -> None:
    """An RFQ to every desk, quoted by ``desk`` and lifted by the client."""
    ask(client, req_id)
    rfq_id = rfq_id_at(desk)
    assert desk.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
    q = client.quote()
    client.hit(q, Side.BUY, f"hit-{req_id}")
    until(client, "AE")


def search(gw: GatewayProcess, kind: str, timeout: float = 10, **refs: str) -> list[dict]:
    """Audit entries of ``kind`` naming ``refs`` (the audit log is written off the caller's
    thread)."""
    deadline = time.monotonic() + timeout
    while True:
        items = httpx.get(
            f"{gw.http}/compliance/search", params={"kind": kind, **refs}, headers=ADMIN
        ).json()["items"]
        if items or time.monotonic() > deadline:
            return items
        time.sleep(0.1)


def test_protection_trips_pulls_freezes_survives_a_restart_and_resets(gateway, client):
    a = Desk(gateway, VIEWER_TOKEN)  # DESK_A
    try:
        trade(client, a, "mmp-1")
        ask(client, "mmp-rest")
        resting_rfq = rfq_id_at(a)
        resting = a.quote(resting_rfq, bid_px="4000", offer_px="4400").json()["quote"]
        client.quote()
        trade(client, a, "mmp-2")  # the second fill within the window trips DESK_A

        tripped = a.event("DeskProtectionTripped")
        assert tripped["desk_id"] == "DESK_A" and tripped["fills"] == 2
        pulled = until(client, "AI")  # the resting quote left the market, the client is told
        assert (pulled.get(117), pulled.get(297)) == (resting["quote_id"], "6")

        ask(client, "mmp-frozen")
        frozen_rfq = rfq_id_at(a)
        refused = a.quote(frozen_rfq, bid_px="4100", offer_px="4300")
        assert refused.status_code == 423
        assert refused.headers["content-type"] == "application/problem+json"
        assert "desk_frozen" in refused.json()["detail"]
        entries = search(gateway, "otc.DeskProtectionTripped", desk="DESK_A")
        assert [e["actor"] for e in entries] == ["desk:DESK_A"]
        assert search(gateway, "otc.QuoteStatusChanged", quote_id=resting["quote_id"])
    finally:
        a.close()

    client.close()
    assert gateway.stop() == 0, gateway.stderr()
    gateway.start()
    client.fix = RfqClient(gateway).fix  # the fixture closes the new session

    a = Desk(gateway, VIEWER_TOKEN)
    try:
        state = httpx.get(f"{gateway.http}/desk/protection", headers=a.headers).json()
        assert state["frozen"] is True and state["fills_in_window"] == 2
        assert a.quote(frozen_rfq, bid_px="4100", offer_px="4300").status_code == 423

        reset = a.post("/desk/protection/reset")
        assert reset.status_code == 200 and reset.json()["frozen"] is False
        assert a.event("DeskProtectionReset")["desk_id"] == "DESK_A"
        assert a.quote(frozen_rfq, bid_px="4100", offer_px="4300").status_code == 201
        again = a.post("/desk/protection/reset")
        assert again.status_code == 409 and "desk_not_frozen" in again.json()["detail"]
        assert search(gateway, "otc.DeskProtectionReset", desk="DESK_A")
    finally:
        a.close()


def stream(gateway, token: str, cancel_on_disconnect: bool):
    """An open desk stream (leave it with ``__exit__``)."""
    query = "?cancel_on_disconnect=true" if cancel_on_disconnect else ""
    return ws_connect(
        f"ws://127.0.0.1:{gateway.http_port}/desk/stream{query}",
        additional_headers={"Authorization": f"Bearer {token}"},
    ).__enter__()


def test_cancel_on_disconnect_pulls_quotes_when_the_last_stream_closes(gateway, client):
    desk = Desk(gateway, DESK_B_TOKEN)
    first = stream(gateway, DESK_B_TOKEN, cancel_on_disconnect=True)
    second = stream(gateway, DESK_B_TOKEN, cancel_on_disconnect=False)
    ask(client, "cod-1")
    rfq_id = rfq_id_at(desk)
    quoted = desk.quote(rfq_id, bid_px="4100", offer_px="4300").json()["quote"]
    client.quote()

    desk.close()
    first.__exit__(None, None, None)
    time.sleep(0.3)  # one stream is still open: the quote stays
    mine = httpx.get(f"{gateway.http}/desk/rfqs/{rfq_id}", headers=desk.headers).json()
    assert [q["quote"]["quote_id"] for q in mine["my_quotes"]] == [quoted["quote_id"]]

    second.__exit__(None, None, None)  # the desk's last stream
    pulled = until(client, "AI")
    assert (pulled.get(117), pulled.get(297)) == (quoted["quote_id"], "6")
    mine = httpx.get(f"{gateway.http}/desk/rfqs/{rfq_id}", headers=desk.headers).json()
    assert mine["my_quotes"] == []
    assert search(gateway, "otc.QuoteStatusChanged", quote_id=quoted["quote_id"])


def test_configured_cancel_on_disconnect_needs_no_flag(gateway, client):
    c = Desk(gateway, DESK_C_TOKEN)  # a plain stream: DESK_C is configured for it
    ask(client, "cod-config")
    rfq_id = rfq_id_at(c)
    quoted = c.quote(rfq_id, bid_px="4100", offer_px="4300").json()["quote"]
    client.quote()
    c.close()
    pulled = until(client, "AI")
    assert (pulled.get(117), pulled.get(297)) == (quoted["quote_id"], "6")


def test_client_names_its_dealers_and_stays_anonymous(gateway, client):
    b, c = Desk(gateway, DESK_B_TOKEN), Desk(gateway, DESK_C_TOKEN)
    seen: list[str] = []  # everything DESK_C receives about the RFQ, as text
    try:
        ask(client, "anon-1", desks=("DESK_C",), disclosed=False)
        to_c = c.event("RfqToDesk")
        seen.append(json.dumps(to_c))
        rfq_id = to_c["rfq"]["rfq_id"]
        alias = to_c["rfq"]["client_id"]
        assert alias.startswith("ANON-") and to_c["rfq"]["alias"] == alias

        ack = c.quote(rfq_id, bid_px="4100", offer_px="4300")
        assert ack.status_code == 201
        seen.append(ack.text)
        seen.append(json.dumps(c.event("QuoteAcknowledged")))
        seen.append(httpx.get(f"{gateway.http}/desk/rfqs/{rfq_id}", headers=c.headers).text)
        listed = httpx.get(f"{gateway.http}/desk/rfqs", headers=c.headers).json()
        seen += [json.dumps(r) for r in listed if r["rfq"]["rfq_id"] == rfq_id]
        assert len(seen) == 5
        q = client.quote()
        client.hit(q, Side.BUY, "hit-anon-1")
        until(client, "AE")
        traded = c.event("TradeCaptured")
        seen.append(json.dumps(traded))
        trade_id = traded["trade"]["trade_id"]
        seen.append(httpx.get(f"{gateway.http}/rfqs/{rfq_id}", headers=c.headers).text)
        seen.append(httpx.get(f"{gateway.http}/trades/{trade_id}", headers=c.headers).text)
        mine = httpx.get(f"{gateway.http}/trades", headers=c.headers).json()
        seen += [json.dumps(t) for t in mine if t["trade_id"] == trade_id]
        assert len(seen) == 9

        assert all(alias in text for text in seen[:2])
        assert not [text for text in seen if "CLIENT2" in text]
        # DESK_B was not chosen: it hears nothing of the RFQ
        with pytest.raises((AssertionError, TimeoutError)):
            b.event("RfqToDesk", timeout=0.5)
        # compliance and admin keep the real identity
        record = httpx.get(f"{gateway.http}/rfqs/{rfq_id}", headers=ADMIN).json()
        assert record["rfq"]["client_id"] == "CLIENT2" and record["rfq"]["alias"] == alias
        booked = httpx.get(f"{gateway.http}/trades/{trade_id}", headers=ADMIN).text
        assert "CLIENT2" in booked and alias not in booked

        ask(client, "anon-2", desks=("DESK_C",), disclosed=False)
        assert c.event("RfqToDesk")["rfq"]["client_id"] not in (alias, "CLIENT2")
    finally:
        b.close()
        c.close()


def test_a_desk_outside_the_routing_is_refused_by_name(gateway, client):
    ask(client, "bad-desk", desks=("DESK_Z",))
    rejected = until(client, "AG")
    assert rejected.get(658) == "6"  # NotAuthorized
    assert "DESK_Z" in (rejected.get(58) or "")

    body = {
        "client_id": "CLIENT2",
        "quote_req_id": "bad-desk-api",
        "legs": [{"symbol": OPTION, "side": "buy"}],
        "quantity": "10",
        "desks": ["DESK_A", "DESK_Z"],
    }
    refused = httpx.post(f"{gateway.http}/rfqs", json=body, headers=ADMIN)
    assert refused.status_code == 422
    assert "DESK_Z" in refused.json()["detail"]
    body.update(quote_req_id="good-desk-api", desks=["DESK_B"], disclosed=False)
    created = httpx.post(f"{gateway.http}/rfqs", json=body, headers=ADMIN).json()
    assert created["desk_ids"] == ["DESK_B"] and created["rfq"]["disclosed"] is False


def test_a_desk_over_its_request_rate_gets_429_with_retry_after(gateway):
    headers = {"Authorization": f"Bearer {DESK_C_TOKEN}"}
    with httpx.Client(base_url=gateway.http, headers=headers) as http:
        answers = [http.get("/desk/me") for _ in range(RATE * 3)]
        other = http.get("/desk/me", headers={"Authorization": f"Bearer {DESK_B_TOKEN}"})
    limited = [r for r in answers if r.status_code == 429]
    assert limited, "no request was limited"
    assert {r.status_code for r in answers} == {200, 429}
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].headers["content-type"] == "application/problem+json"
    assert "DESK_C" in limited[0].json()["detail"]
    assert other.status_code == 200  # each desk has a bucket of its own
