"""Open business survives a restart: RFQs, live quotes, counters and last-look holds come back
after a clean stop and after kill -9, from the negotiation journal; what expired while the gateway
was down is told to the client (FIX) and to the desks (stream, API) at start-up.

Real processes: ``fixbridge run`` on one data directory, a FIX client, desks over HTTP and
WebSocket. Each test has its own gateway."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fixspec.messages import Side
from gateway.fix import rfq_client
from gateway.journal import read_rows
from load.fixclient import FixClient
from tests.harness import API_TOKEN, VIEWER_TOKEN, GatewayProcess, shared_dir
from tests.otc_support import Desk, RfqClient

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}
DESK_A = {"Authorization": f"Bearer {VIEWER_TOKEN}"}


def gateway(tmp_path, **kw) -> GatewayProcess:
    """A gateway whose simulated clearinghouse validates every message against the official
    schemas (a trade that clears carries a valid message)."""
    schemas = shared_dir() / "schemas"
    assert (schemas / "fixml-5-0-sp2").is_dir(), f"set FIXBRIDGE_SHARED (no {schemas})"
    return GatewayProcess(tmp_path, extra=f'[clearing]\nschema_dir = "{schemas}"\n', **kw).start()


@pytest.fixture
def gw(tmp_path):
    procs: list[GatewayProcess] = []

    def start(**kw) -> GatewayProcess:
        procs.append(gateway(tmp_path, **kw))
        return procs[-1]

    yield start
    for p in procs:
        if p.proc is not None:
            assert p.stop() == 0, p.stderr()


def go_down(g: GatewayProcess, how: str) -> None:
    if how == "kill":
        g.kill()
    else:
        assert g.stop() == 0, g.stderr()


def quietly_close(*parts) -> None:
    for part in parts:
        with contextlib.suppress(Exception):
            part.fix.close() if isinstance(part, RfqClient) else part.close()


def open_and_quote(client: RfqClient, desk: Desk, req_id: str, **quote) -> tuple[str, object]:
    client.rfq(req_id, **({"expire_at": quote.pop("expire_at")} if "expire_at" in quote else {}))
    rfq_id = desk.event("RfqToDesk")["rfq"]["rfq_id"]
    quote.setdefault("bid_px", "4100")
    quote.setdefault("offer_px", "4300")
    r = desk.quote(rfq_id, **quote)
    assert r.status_code == 201, r.text
    return rfq_id, client.next("S")


def rfq_record(g: GatewayProcess, rfq_id: str) -> dict:
    r = httpx.get(f"{g.http}/rfqs/{rfq_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def wait_cleared(g: GatewayProcess, trade_id: str) -> dict:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = httpx.get(f"{g.http}/trades/{trade_id}", headers=ADMIN).json()
        if body.get("clearing_status") == "cleared":
            return body
        time.sleep(0.1)
    raise AssertionError(f"trade {trade_id} not cleared: {body}")


def journal_kinds(g: GatewayProcess) -> list[str]:
    return [row.kind for row in read_rows(g.data_dir / "journal")]


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_a_live_quote_can_be_lifted_after_a_restart_and_the_trade_clears(gw, how):
    g = gw()
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    rfq_id, sent = open_and_quote(client, a, f"rs-{how}", valid_for_ms=120_000)
    q = rfq_client.decode_quote(sent)
    go_down(g, how)
    quietly_close(client, a)

    g.start()
    record = rfq_record(g, rfq_id)
    assert record["state"] == "Quoted"
    names = [h["event"] for h in record["history"]]
    assert names.index("RfqToDesk") < names.index("QuoteToClient")  # the history came back too
    listed = httpx.get(f"{g.http}/desk/rfqs", headers=DESK_A).json()
    mine = [r for r in listed if r["rfq"]["rfq_id"] == rfq_id]
    assert mine and [m["quote"]["quote_id"] for m in mine[0]["my_quotes"]] == [q.quote_id]
    assert mine[0]["my_quotes"][0]["quote_hash"] == q.quote_hash  # the same signed quote
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    try:
        client.hit(q, Side.BUY, f"rs-{how}-hit")  # the QuoteID and hash it was sent
        er = client.next("8")
        assert (er.get(150), er.get(39), er.get(31), er.get(32)) == ("F", "2", "4300", "10")
        ae = client.next("AE")
        traded = a.event("TradeCaptured")
        assert traded["trade"]["trade_id"] == ae.get(571)
        trade = wait_cleared(g, ae.get(571))
        assert trade["rfq_id"] == rfq_id and trade["quote_id"] == q.quote_id
        assert rfq_record(g, rfq_id)["state"] == "Confirmed"
        # new business after the restart gets ids of its own
        client.rfq(f"rs-{how}-after")
        after = a.event("RfqToDesk")["rfq"]["rfq_id"]
        assert after != rfq_id and after > rfq_id
    finally:
        quietly_close(client, a)


def test_what_expired_while_down_is_told_to_the_client_and_the_desks(gw):
    """A session that resets sequence numbers on logon (CLIENT2): what the start-up sent while
    it was away is sent again after its logon."""
    g = gw()
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    expire = datetime.now(UTC) + timedelta(seconds=4)
    rfq_id, sent = open_and_quote(client, a, "rs-exp", valid_for_ms=2000, expire_at=expire)
    q = rfq_client.decode_quote(sent)
    g.kill()
    quietly_close(client, a)
    time.sleep(max(0.0, (expire - datetime.now(UTC)).total_seconds()) + 0.5)

    g.start()
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    try:
        quote_expired = client.next("AI")
        assert (quote_expired.get(117), quote_expired.get(297)) == (q.quote_id, "7")
        rfq_expired = client.next("AI")
        assert (rfq_expired.get(131), rfq_expired.get(297)) == ("rs-exp", "7")
        assert rfq_expired.get(58) == "ExpireTime reached"
        # desk A's first stream after the restart starts with what happened while it was down
        status = a.event("QuoteStatusChanged")
        assert (status["quote_id"], status["status"]) == (q.quote_id, "7")
        withdrawn = a.event("RfqWithdrawn")
        assert (withdrawn["rfq_id"], withdrawn["state"]) == (rfq_id, "Expired")
        # and the API shows it: gone from the desk's list, Expired in the archive
        listed = httpx.get(f"{g.http}/desk/rfqs", headers=DESK_A).json()
        assert rfq_id not in [r["rfq"]["rfq_id"] for r in listed]
        record = rfq_record(g, rfq_id)
        assert record["state"] == "Expired"
        expiries = [
            h
            for h in record["history"]
            if h["event"] == "QuoteStateChanged" and h["to_state"] == "Expired"
        ]
        assert [h["quote_id"] for h in expiries] == [q.quote_id]
    finally:
        quietly_close(client, a)
    # told once: the expiry was journalled, so another restart has nothing more to tell
    assert g.stop() == 0
    g.start()
    client = RfqClient(g)
    try:
        with pytest.raises(TimeoutError):
            client.next("AI", "AG", "S", timeout=2)
    finally:
        quietly_close(client)


def test_a_session_that_keeps_sequence_numbers_gets_them_by_resend(gw):
    """KEEPSEQ does not reset on logon: the start-up's messages are in its QuickFIX store and
    come back on the client's ResendRequest (PossDupFlag), once."""
    g = gw()
    fix = FixClient("127.0.0.1", g.fix_port, "KEEPSEQ", "FIXBRIDGE")
    assert fix.logon(reset=False).msg_type == "A"
    client = RfqClient.__new__(RfqClient)
    client.comp_id, client.fix = "KEEPSEQ", fix
    a = Desk(g, VIEWER_TOKEN)
    rfq_id, sent = open_and_quote(client, a, "rs-keep", valid_for_ms=1000)
    q = rfq_client.decode_quote(sent)
    expected = int(sent.get(34)) + 1
    g.kill()
    quietly_close(a)
    fix.close()
    time.sleep(1.2)

    g.start()
    fix = FixClient("127.0.0.1", g.fix_port, "KEEPSEQ", "FIXBRIDGE")
    fix.next_seq = client.fix.next_seq
    logon = fix.logon(reset=False)
    assert logon.msg_type == "A" and int(logon.get(34)) > expected  # a gap: ask for it
    fix.send("2", [(7, expected), (16, 0)])
    resent = []
    deadline = time.monotonic() + 10
    while len(resent) < 1 and time.monotonic() < deadline:
        msg = fix.recv(5)
        if msg.msg_type == "AI":
            resent.append(msg)
    assert (resent[0].get(117), resent[0].get(297), resent[0].get(43)) == (q.quote_id, "7", "Y")
    with pytest.raises(TimeoutError):  # not sent a second time beside the resend
        while True:
            msg = fix.recv(1.5)
            assert msg.msg_type in ("0", "4"), msg.fields
    fix.logout()
    assert rfq_record(g, rfq_id)["state"] == "Open"  # its only quote expired; the RFQ lives on


def test_a_last_look_hold_that_ran_out_while_down_is_rejected_and_the_client_told(gw):
    g = gw()  # holds last 1.5 s
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    rfq_id, sent = open_and_quote(client, a, "rs-ll-out", firmness="last_look")
    q = rfq_client.decode_quote(sent)
    client.order_on(q, Side.SELL, "rs-ll-out-ord")
    assert client.next("8").get(39) == "A"  # pending new while the desk looks
    a.event("LastLookRequested")
    g.kill()
    quietly_close(client, a)
    time.sleep(1.6)  # the hold runs out while the gateway is down, however fast it restarts

    g.start()
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    try:
        pulled = client.next("AI")  # the quote leaves the market ...
        assert (pulled.get(117), pulled.get(297)) == (q.quote_id, "6")
        er = client.next("8")  # ... and the order is rejected, as an ExecutionReport
        assert (er.get(39), er.get(11), er.get(54)) == ("8", "rs-ll-out-ord", "2")
        assert "did not answer" in er.get(58)
        assert a.event("QuoteStatusChanged")["quote_id"] == q.quote_id
        late = a.post(f"/desk/quotes/{q.quote_id}/last-look/confirm")
        assert late.status_code == 409 and "window" in late.text
        record = rfq_record(g, rfq_id)
        assert record["state"] == "Open"
        resolved = [h for h in record["history"] if h["event"] == "LastLookResolved"]
        assert [h["outcome"] for h in resolved] == ["timed_out"]
    finally:
        quietly_close(client, a)


def test_a_last_look_hold_still_open_after_the_restart_can_be_confirmed(gw):
    g = gw(last_look_max_hold_ms=60_000)
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    rfq_id, sent = open_and_quote(client, a, "rs-ll-on", firmness="last_look")
    q = rfq_client.decode_quote(sent)
    client.hit(q, Side.BUY, "rs-ll-on-hit")
    assert client.next("AI").get(297) == "10"  # pending: the desk is looking
    held = a.event("LastLookRequested")
    g.kill()
    quietly_close(client, a)

    g.start()
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    try:
        listed = httpx.get(f"{g.http}/desk/rfqs/{rfq_id}", headers=DESK_A).json()
        assert listed["state"] == "PendingExecution"
        r = a.post(f"/desk/quotes/{q.quote_id}/last-look/confirm")
        assert r.status_code == 200, r.text
        er = client.next("8")
        assert (er.get(39), er.get(31), er.get(693)) == ("2", held["price"], "rs-ll-on-hit")
        ae = client.next("AE")
        wait_cleared(g, ae.get(571))
        assert rfq_record(g, rfq_id)["state"] == "Confirmed"
    finally:
        quietly_close(client, a)


def test_a_counter_pending_at_the_restart_can_still_be_answered(gw):
    g = gw()
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    rfq_id, sent = open_and_quote(client, a, "rs-ctr")
    q = rfq_client.decode_quote(sent)
    client.counter(q, Side.BUY, "4200", "rs-ctr-1")
    counter = a.event("CounterToDesk")["counter"]
    g.kill()
    quietly_close(client, a)

    g.start()
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    try:
        assert rfq_record(g, rfq_id)["state"] == "Negotiating"
        answer = a.post(
            f"/desk/counters/{counter['counter_id']}/answer",
            {"quote": {"bid_px": "4100", "offer_px": "4220", "valid_for_ms": 60000}},
        )
        assert answer.status_code == 200, answer.text
        q2 = client.quote()
        assert q2.offer_px == 4220 and q2.quote_id != q.quote_id
        client.hit(q2, Side.BUY, "rs-ctr-hit")
        assert client.next("8").get(31) == "4220"
        client.next("AE")
    finally:
        quietly_close(client, a)


def test_finished_rfqs_leave_the_journal_and_only_open_business_is_replayed(gw):
    g = gw()
    client, a = RfqClient(g), Desk(g, VIEWER_TOKEN)
    for n in range(5):  # five RFQs traded, confirmed and archived
        _, sent = open_and_quote(client, a, f"rs-done-{n}")
        client.hit(rfq_client.decode_quote(sent), Side.BUY, f"rs-done-{n}-hit")
        client.next("8")
        client.next("AE")
        a.event("TradeCaptured")
    for n in range(3):  # three cancelled by the client (FIX QuoteCancel)
        client.rfq(f"rs-cxl-{n}")
        a.event("RfqToDesk")
        client.send(rfq_client.encode_quote_cancel(f"rs-cxl-{n}"))
        a.event("RfqWithdrawn")
    client.rfq("rs-open")  # and one left open
    open_id = a.event("RfqToDesk")["rfq"]["rfq_id"]
    assert g.stop() == 0
    quietly_close(client, a)
    written = journal_kinds(g)  # everything, each finished RFQ followed by its "archived" row
    assert written.count("archived") == 8 and written.count("handle") > 8 * 2

    g.start()  # replayed: the boot row and the open RFQ's submission, nothing else
    assert "negotiation journal: 2 rows replayed, 1 RFQs open" in g.stderr()
    assert journal_kinds(g) == ["boot", "handle", "boot"]  # and that is all it keeps
    assert rfq_record(g, open_id)["state"] == "Open"
