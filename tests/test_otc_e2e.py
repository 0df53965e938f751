"""OTC negotiation end to end: a FIX client, the gateway, and desks over HTTP and WebSocket."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fixspec.messages import Side
from tests.harness import (
    API_TOKEN,
    DESK_B_TOKEN,
    DESK_C_TOKEN,
    VIEWER_TOKEN,
    GatewayProcess,
    shared_dir,
)
from tests.otc_support import Desk, RfqClient

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A gateway whose simulated clearinghouse validates every message against the official
    FIXML and FpML schemas, so a trade that clears is proof its message is valid."""
    schemas = shared_dir() / "schemas"
    assert (schemas / "fixml-5-0-sp2").is_dir(), (
        f"official schemas not found at {schemas}; set FIXBRIDGE_SHARED to the shared/ folder"
    )
    extra = f'[clearing]\nschema_dir = "{schemas}"\n'
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), extra=extra).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture
def desks(gateway):
    ds = [Desk(gateway, t) for t in (VIEWER_TOKEN, DESK_B_TOKEN, DESK_C_TOKEN)]
    yield ds
    for d in ds:
        d.close()


@pytest.fixture
def client(gateway):
    c = RfqClient(gateway)
    yield c
    c.close()


def open_rfq(client, desks, req_id, **kw) -> str:
    client.rfq(req_id, **kw)
    ids = {d.event("RfqToDesk")["rfq"]["rfq_id"] for d in desks}
    assert len(ids) == 1
    return ids.pop()


def wait_cleared(gw, trade_id: str) -> dict:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = httpx.get(f"{gw.http}/trades/{trade_id}", headers=ADMIN).json()
        if body["clearing_status"] == "cleared":
            return body
        time.sleep(0.1)
    raise AssertionError(f"trade {trade_id} not cleared: {body}")


def test_three_desks_one_pass_replace_best_hit_losers_told(gateway, client, desks):
    a, b, c = desks
    rfq_id = open_rfq(client, desks, "e2e-1")
    assert c.post(f"/desk/rfqs/{rfq_id}/pass").status_code == 200
    passed = client.next("AI")
    assert (passed.get(297), passed.get(131)) == ("11", "e2e-1")
    assert a.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
    assert b.quote(rfq_id, bid_px="4150", offer_px="4260").status_code == 201
    qa, qb = client.quote(), client.quote()
    assert (qa.offer_px, qb.offer_px) == (4300, 4260)
    assert qa.signature and qa.quote_hash and qa.signer_key_id == "DESK_A"
    # desk A improves by replacing its quote; the client sees the new one
    replaced = httpx.put(
        f"{gateway.http}/desk/quotes/{qa.quote_id}",
        headers=a.headers,
        json={"bid_px": "4160", "offer_px": "4240", "valid_for_ms": 60000},
    )
    assert replaced.status_code == 200
    qa2 = client.quote()
    assert qa2.offer_px == 4240 and qa2.quote_id != qa.quote_id
    # blind quoting: desk B's view of the RFQ shows only its own quote
    mine = httpx.get(f"{gateway.http}/desk/rfqs/{rfq_id}", headers=b.headers).json()
    assert [q["quote"]["desk_id"] for q in mine["my_quotes"]] == ["DESK_B"]
    # the client lifts the best offer
    client.hit(qa2, Side.BUY, "e2e-1-hit")
    loser = client.next("AI")  # desk B's quote leaves the market
    assert (loser.get(117), loser.get(297)) == (qb.quote_id, "6")
    er = client.next("8")
    assert (er.get(150), er.get(39), er.get(31), er.get(32)) == ("F", "2", "4240", "10")
    ae = client.next("AE")
    # block (828=1), new submission (856=0) of a matched (573=0) trade; FIX 4.4's 856=7 would
    # be "(Locked-In) Trade Break", i.e. a cancellation
    assert (ae.get(828), ae.get(856), ae.get(573), ae.get(31)) == ("1", "0", "0", "4240")
    traded = a.event("TradeCaptured")
    assert b.event("Cover")["rfq_id"] == rfq_id  # runner-up on the lifted side
    assert c.event("DoneAway")["rfq_id"] == rfq_id
    trade_id = traded["trade"]["trade_id"]
    body = wait_cleared(gateway, trade_id)
    assert body["price"] == "4240" and body["desk"]["party_id"] == "DESK_A"
    history = httpx.get(f"{gateway.http}/rfqs/{rfq_id}", headers=ADMIN).json()
    # stored with its clearing message, the trade confirms the RFQ, which is then archived
    # (out of the engine's memory) and served from the database
    assert history["state"] == "Confirmed" and history["trade_id"] == trade_id
    names = [h["event"] for h in history["history"]]
    assert names.index("RfqToDesk") < names.index("QuoteToClient") < names.index("TradeCaptured")
    receipt = httpx.get(f"{gateway.http}/rfqs/{rfq_id}/receipt", headers=ADMIN)
    assert receipt.status_code == 200 and len(receipt.json()["entries"]) >= 5


def test_counter_round_trip(client, desks):
    a = desks[0]
    rfq_id = open_rfq(client, desks, "e2e-ctr")
    assert a.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
    q = client.quote()
    client.counter(q, Side.BUY, "4200", "e2e-ctr-1")
    counter = a.event("CounterToDesk")["counter"]
    assert counter["price"] == "4200"
    answer = a.post(
        f"/desk/counters/{counter['counter_id']}/answer",
        {"quote": {"bid_px": "4100", "offer_px": "4220", "valid_for_ms": 60000}},
    )
    assert answer.status_code == 200
    q2 = client.quote()
    assert q2.offer_px == 4220
    client.hit(q2, Side.BUY, "e2e-ctr-hit")
    assert client.next("8").get(31) == "4220"
    client.next("AE")


@pytest.mark.parametrize("decision", ["confirm", "reject"])
def test_last_look(client, desks, decision):
    a = desks[0]
    rfq_id = open_rfq(client, desks, f"e2e-ll-{decision}")
    assert a.quote(rfq_id, bid_px="4100", offer_px="4300", firmness="last_look").status_code == 201
    q = client.quote()
    client.order_on(q, Side.SELL, f"e2e-ll-{decision}-ord")
    pending = client.next("8")
    assert pending.get(39) == "A"  # pending new while the desk looks
    held = a.event("LastLookRequested")
    assert held["price"] == "4100"
    r = a.post(f"/desk/quotes/{q.quote_id}/last-look/{decision}")
    assert r.status_code == 200
    if decision == "confirm":
        er = client.next("8")
        assert (er.get(39), er.get(31), er.get(54)) == ("2", "4100", "2")
        client.next("AE")
    else:
        withdrawn = client.next("AI")  # the rejected quote leaves the market ...
        assert (withdrawn.get(117), withdrawn.get(297)) == (q.quote_id, "6")
        er = client.next("8")  # ... and the order is rejected
        assert (er.get(39), er.get(11)) == ("8", "e2e-ll-reject-ord")
        stats = httpx.get(f"{a.gw.http}/desk/stats/last-look", headers=a.headers).json()
        assert stats["DESK_A"]["rejected"] >= 1


def test_desk_text_with_an_soh_is_refused_before_it_can_reach_fix(gateway, client, desks):
    """A desk's free text ends up in the client's FIX messages (Text 58): an SOH in it would
    smuggle fields into them. The API refuses it; the held acceptance is still there to answer."""
    a = desks[0]
    rfq_id = open_rfq(client, desks, "e2e-soh")
    assert a.quote(rfq_id, bid_px="4100", offer_px="4300", firmness="last_look").status_code == 201
    q = client.quote()
    client.order_on(q, Side.SELL, "e2e-soh-ord")
    assert client.next("8").get(39) == "A"
    a.event("LastLookRequested")
    smuggled = a.post(f"/desk/quotes/{q.quote_id}/last-look/reject", {"text": "late\x0144=1"})
    assert smuggled.status_code == 422
    assert smuggled.headers["content-type"].startswith("application/problem+json")
    on_behalf = a.post(
        "/rfqs",
        {
            "client_id": client.comp_id,
            "quote_req_id": "x\x0155=Y",
            "legs": [{"symbol": "BTC-PERP", "side": "buy"}],
            "quantity": "1",
        },
    )
    assert on_behalf.status_code == 422
    kill = httpx.post(
        f"{gateway.http}/risk/kill",
        headers=ADMIN,
        json={"client": client.comp_id, "reason": "stop\x0159=1"},
    )
    assert kill.status_code == 422
    r = a.post(f"/desk/quotes/{q.quote_id}/last-look/reject", {"text": "price moved"})
    assert r.status_code == 200
    assert client.next("AI").get(117) == q.quote_id
    er = client.next("8")
    assert (er.get(39), er.get(11), er.get(44)) == ("8", "e2e-soh-ord", None)
    assert "price moved" in (er.get(58) or "")


def test_quote_and_rfq_expiry(client, desks):
    a = desks[0]
    expire = datetime.now(UTC) + timedelta(seconds=2)
    rfq_id = open_rfq(client, desks, "e2e-exp", expire_at=expire)
    assert a.quote(rfq_id, bid_px="4100", offer_px="4300", valid_for_ms=300).status_code == 201
    q = client.quote()
    expired = client.next("AI")  # the quote's ValidUntil passes
    assert (expired.get(117), expired.get(297)) == (q.quote_id, "7")
    client.hit(q, Side.BUY, "e2e-exp-late")  # acceptance after ValidUntil
    late = client.next("AI", "8")
    assert late.get(297) in ("7", "9") or late.get(39) == "8"
    ended = client.next("AI", "AG", timeout=10)  # then the RFQ itself expires
    assert ended.get(131) == "e2e-exp"
    assert a.event("RfqWithdrawn")["rfq_id"] == rfq_id


def test_desk_cancel_and_acceptance_racing_it(gateway, client, desks):
    a = desks[0]
    rfq_id = open_rfq(client, desks, "e2e-cxl")
    assert a.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
    q = client.quote()
    assert (
        httpx.delete(f"{gateway.http}/desk/quotes/{q.quote_id}", headers=a.headers).status_code
        == 200
    )
    gone = client.next("AI")
    assert (gone.get(117), gone.get(297)) == (q.quote_id, "6")
    client.order_on(q, Side.BUY, "e2e-cxl-late")  # the cancel won the race
    assert client.next("8").get(39) == "8"
    assert httpx.get(f"{gateway.http}/trades", headers=a.headers).json() == [] or all(
        t["rfq_id"] != rfq_id for t in httpx.get(f"{gateway.http}/trades", headers=ADMIN).json()
    )


def test_multileg_with_hedge_gives_leg_reports_and_one_trade_capture(client, desks):
    a = desks[0]
    legs = [
        ("BTC-27DEC26-100000-C", Side.BUY),
        ("BTC-27DEC26-60000-P", Side.SELL),
        ("BTC-27DEC26", Side.SELL),
    ]
    rfq_id = open_rfq(client, desks, "e2e-ml", legs=legs, ratios=["1", "1", "0.5"])
    r = a.quote(
        rfq_id,
        bid_px="1000",
        offer_px="1100",
        legs=[
            {"leg_no": 1, "bid_px": "4100", "offer_px": "4200"},
            {"leg_no": 2, "bid_px": "3100", "offer_px": "3100"},
            {"leg_no": 3, "bid_px": "66500", "offer_px": "66500"},
        ],
    )
    assert r.status_code == 201, r.text
    q = client.quote()
    assert len(q.legs) == 3
    client.hit(q, Side.BUY, "e2e-ml-hit")
    reports = [client.next("8") for _ in range(4)]
    assert [m.get(442) for m in reports].count("3") == 1
    assert [m.get(442) for m in reports].count("2") == 3
    ae = client.next("AE")
    assert ae.get(555) == "3" and ae.get(637) is not None


def test_bad_input_and_duplicates(gateway, client, desks):
    a, b, c = desks
    client.fix.send(
        "R", [(131, "e2e-bad-1"), (146, 1), (55, "NOT-AN-INSTRUMENT-X"), (537, "1"), (38, "10")]
    )
    rej = client.next("AG")
    assert (rej.get(131), rej.get(658)) == ("e2e-bad-1", "1")
    rfq_id = open_rfq(client, desks, "e2e-dup")
    client.rfq("e2e-dup")  # duplicate QuoteReqID
    assert client.next("AG").get(131) == "e2e-dup"
    crossed = a.quote(rfq_id, bid_px="4300", offer_px="4100")
    assert crossed.status_code == 422
    assert crossed.headers["content-type"].startswith("application/problem+json")
    assert a.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
    q = client.quote()
    client.hit(q, Side.BUY, "e2e-dup-hit", cl_ord_id="e2e-dup-cl")
    first = client.next("8")
    client.next("AE")
    client.hit(q, Side.BUY, "e2e-dup-hit", cl_ord_id="e2e-dup-cl")  # a retried acceptance
    again = client.next("8", "AI", "j")
    assert again.get(17) in (None, first.get(17))  # never a second trade
    trades = [
        t
        for t in httpx.get(f"{gateway.http}/trades", headers=ADMIN).json()
        if t["rfq_id"] == rfq_id
    ]
    assert len(trades) == 1


def test_desk_quoting_an_rfq_not_routed_to_it_is_forbidden(gateway):
    keep = RfqClient(gateway, "KEEPSEQ")  # routed to DESK_A and DESK_B only
    a = Desk(gateway, VIEWER_TOKEN)
    c = Desk(gateway, DESK_C_TOKEN)
    try:
        keep.fix.next_seq = keep.fix.next_seq  # session without reset: seq continues
        keep.rfq("e2e-route")
        rfq_id = a.event("RfqToDesk")["rfq"]["rfq_id"]
        r = c.quote(rfq_id, bid_px="1", offer_px="2")
        assert r.status_code == 403
        assert httpx.get(f"{gateway.http}/rfqs/{rfq_id}", headers=c.headers).status_code == 403
    finally:
        a.close()
        c.close()
        keep.close()


def test_rfq_pre_trade_risk_kill_switch_rate_and_credit(gateway, client, desks):
    a = desks[0]
    rfq_id = open_rfq(client, desks, "e2e-risk-open")
    # kill switch: the open RFQ is withdrawn from every desk, new RFQs are refused (658=6)
    r = httpx.post(
        f"{gateway.http}/risk/kill",
        headers=ADMIN,
        json={"client": "CLIENT2", "reason": "credit review"},
    )
    assert r.status_code == 200
    withdrawn = set()
    while rfq_id not in withdrawn:  # every open RFQ of the client goes, ours among them
        withdrawn.add(a.event("RfqWithdrawn")["rfq_id"])
    client.rfq("e2e-risk-killed")
    refused = client.next("AI", "AG")
    while refused.msg_type != "AG":
        refused = client.next("AI", "AG")
    assert (refused.get(131), refused.get(658)) == ("e2e-risk-killed", "6")
    assert "kill switch engaged: credit review" in refused.get(58)
    assert httpx.post(
        f"{gateway.http}/risk/resume", headers=ADMIN, json={"client": "CLIENT2", "reason": "ok"}
    ).json()["resumed"]
    # credit: an acceptance that would exceed the client's credit limit is refused (103=3)
    assert (
        httpx.put(
            f"{gateway.http}/risk/CLIENT2/limits",
            headers=ADMIN,
            json={"max_order_qty": "1000", "credit_limit": "1000"},
        ).status_code
        == 200
    )
    try:
        rfq_id = open_rfq(client, desks, "e2e-risk-credit")
        assert a.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
        q = client.quote()
        client.order_on(q, Side.BUY, "e2e-risk-credit-ord")
        rej = client.next("8")
        assert (rej.get(39), rej.get(103)) == ("8", "3") and "credit limit" in rej.get(58)
    finally:
        httpx.put(
            f"{gateway.http}/risk/CLIENT2/limits", headers=ADMIN, json={"max_order_qty": "1000"}
        )
