"""GET /metrics and GET /ready on real gateways over real sockets.

Orders and RFQs go in over FIX, desks quote over HTTP, and the counters scraped from /metrics
(parsed with prometheus_client's own parser) must move by exactly what was sent. /ready turns
503 naming the check when a gateway's clearinghouse is unreachable past its backlog limit, and
when its PostgreSQL (a throwaway cluster of its own, never the shared one) stops; green again
when it comes back. No wall-clock assertions: waits poll with deadlines.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fixspec.messages import Side
from gateway.fix import rfq_client
from gateway.passwords import hash_token
from load.fixclient import fix_time
from tests.conftest import connect
from tests.harness import (
    API_TOKEN,
    CLIENT_VIEWER_TOKEN,
    COMPLIANCE_TOKEN,
    DESK_B_TOKEN,
    DESK_C_TOKEN,
    VIEWER_TOKEN,
    GatewayProcess,
    free_port,
    order_fields,
)
from tests.otc_support import Desk, RfqClient

METRICS_TOKEN = "test-metrics-token"
METRICS_ROLE = f"""
[[api.tokens]]
name = "prometheus"
role = "metrics"
hash = "{hash_token(METRICS_TOKEN)}"
"""
ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}
CHECKS = {"database", "db_writer", "audit", "clearing"}


class Scrape:
    """One scrape of /metrics: every sample by name and labels."""

    def __init__(self, gw: GatewayProcess, token: str = METRICS_TOKEN) -> None:
        r = httpx.get(f"{gw.http}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text)
            for s in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.samples)


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after(name, **labels) - before(name, **labels)


def eventually(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met before the deadline")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(tmp_path_factory.mktemp("metrics"), extra=METRICS_ROLE).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


# --- FIX orders -------------------------------------------------------------------------------


def test_fix_counters_and_order_latency_move_by_exactly_what_was_sent(gateway):
    before = Scrape(gateway)
    client = connect(gateway)  # CLIENT2
    for i in range(3):  # each: ExecutionReport New, then the fill
        client.send("D", order_fields(f"m-ord-{i}"))
        assert client.expect("8").get(39) == "0"
        assert client.expect("8").get(39) == "2"
    client.send("D", order_fields("m-ord-bad", symbol="NOT-A-THING-X"))
    assert client.expect("8").get(103) == "1"  # rejected: unknown symbol
    client.send(
        "F", [(41, "never-sent"), (11, "m-cxl"), (55, "BTC-PERP"), (54, "1"), (60, fix_time())]
    )
    assert client.expect("9").get(102) == "1"
    client.send("AF", [(584, "m1"), (585, "7")])  # QuickFIX answers 380=3 by itself
    assert client.expect("j").get(380) == "3"
    garbled = order_fields("m-ord-garbled")
    garbled[4] = (38, "lots")  # refused by the session layer: never reaches the application
    client.send("D", garbled)
    assert client.expect("3").get(373) == "6"
    during = Scrape(gateway)
    client.logout()

    def d(name: str, **labels: str) -> float:
        return delta(before, during, name, **labels)

    msgs = "fixbridge_fix_messages_total"
    assert d(msgs, direction="in", msg_type="A") == 1
    assert d(msgs, direction="out", msg_type="A") == 1
    assert d(msgs, direction="in", msg_type="D") == 4  # the garbled one never got in
    assert d(msgs, direction="in", msg_type="F") == 1
    assert d(msgs, direction="in", msg_type="AF") == 1
    assert d(msgs, direction="out", msg_type="8") == 7
    assert d(msgs, direction="out", msg_type="9") == 1
    assert d(msgs, direction="out", msg_type="j") == 1
    assert d(msgs, direction="out", msg_type="3") == 1
    rejects = "fixbridge_fix_rejects_total"
    assert d(rejects, msg_type="8", reason="1") == 1
    assert d(rejects, msg_type="9", reason="1") == 1
    assert d(rejects, msg_type="j", reason="3") == 1
    assert d(rejects, msg_type="3", reason="6") == 1
    total = sum(v for (n, _), v in during.samples.items() if n == rejects)
    assert total - sum(v for (n, _), v in before.samples.items() if n == rejects) == 4
    # order -> first ER: one observation per NewOrderSingle the application handled
    assert d("fixbridge_order_first_er_seconds_count") == 4
    assert d("fixbridge_order_first_er_seconds_sum") > 0
    assert d("fixbridge_order_first_er_seconds_bucket", le="+Inf") == 4
    assert during("fixbridge_fix_session_logged_on", comp_id="CLIENT2") == 1
    assert during("fixbridge_fix_session_logged_on", comp_id="CLIENT1") == 0
    assert during("fixbridge_fix_sessions_logged_on") >= 1
    # logged out: the gauge follows, and the Logout went both ways
    after = eventually(
        lambda: (
            (s := Scrape(gateway))("fixbridge_fix_session_logged_on", comp_id="CLIENT2") == 0 and s
        ),
        what="CLIENT2 logged off",
    )
    assert delta(during, after, msgs, direction="in", msg_type="5") == 1
    assert delta(during, after, msgs, direction="out", msg_type="5") == 1
    # the database writer and the audit trail caught up
    assert after.has("fixbridge_db_writer_queue_depth")
    assert after("fixbridge_audit_entries") > before("fixbridge_audit_entries")
    assert eventually(lambda: Scrape(gateway).has("fixbridge_audit_checkpoint_age_seconds"))


# --- the RFQ funnel, RFQ -> first quote, clearing ----------------------------------------------


def open_rfq(client: RfqClient, desks: list[Desk], req_id: str, **kw) -> str:
    client.rfq(req_id, **kw)
    ids = {desk.event("RfqToDesk")["rfq"]["rfq_id"] for desk in desks}
    assert len(ids) == 1
    return ids.pop()


def test_rfq_funnel_first_quote_latency_and_clearing_acks(gateway):
    desks = [Desk(gateway, t) for t in (VIEWER_TOKEN, DESK_B_TOKEN, DESK_C_TOKEN)]
    client = RfqClient(gateway)
    before = Scrape(gateway)
    try:
        a = desks[0]
        # traded: quoted by desk A, lifted by the client
        rfq_id = open_rfq(client, desks, "m-traded")
        assert a.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
        q = client.quote()
        client.hit(q, Side.BUY, "m-traded-hit")
        assert client.next("8").get(39) == "2"
        trade_id = client.next("AE").get(571)
        # not an RFQ at all: the FIX edge cannot decode it (QuoteRequestReject 658=1)
        client.fix.send(
            "R", [(131, "m-bad"), (146, 1), (55, "NOT-AN-INSTRUMENT-X"), (537, "1"), (38, "10")]
        )
        assert client.next("AG").get(658) == "1"
        # rejected: every desk passes (658=10)
        rfq_id = open_rfq(client, desks, "m-passed")
        for desk in desks:
            assert desk.post(f"/desk/rfqs/{rfq_id}/pass").status_code == 200
        while (msg := client.next("AG", "AI")).msg_type != "AG":
            continue
        assert msg.get(658) == "10"
        # cancelled by the client (QuoteCancel), after a request reusing its QuoteReqID was
        # refused by the negotiation (658=99)
        open_rfq(client, desks, "m-cancelled")
        client.rfq("m-cancelled")
        assert client.next("AG").get(658) == "99"
        client.send(rfq_client.encode_quote_cancel("m-cancelled"))
        eventually(
            lambda: (
                Scrape(gateway)("fixbridge_rfqs_total", stage="cancelled")
                > before("fixbridge_rfqs_total", stage="cancelled")
            ),
            what="cancelled",
        )
        # expired: nobody quotes before it ends
        open_rfq(client, desks, "m-expired", expire_at=datetime.now(UTC) + timedelta(seconds=1))
        after = eventually(
            lambda: (
                (s := Scrape(gateway))("fixbridge_rfqs_total", stage="expired")
                > before("fixbridge_rfqs_total", stage="expired")
                and s
            ),
            what="expired",
        )
        # the trade clears (the simulated clearinghouse acks it)
        after = eventually(
            lambda: (
                (s := Scrape(gateway))("fixbridge_clearing_acks_total")
                > before("fixbridge_clearing_acks_total")
                and s
            ),
            what="clearing ack",
        )
    finally:
        client.close()
        for desk in desks:
            desk.close()

    def d(name: str, **labels: str) -> float:
        return delta(before, after, name, **labels)

    funnel = "fixbridge_rfqs_total"
    assert {
        stage: d(funnel, stage=stage)
        for stage in (
            "received",
            "quoted",
            "traded",
            "expired",
            "cancelled",
            "rejected",
            "refused",
        )
    } == {
        "received": 4,
        "quoted": 1,
        "traded": 1,
        "expired": 1,
        "cancelled": 1,
        "rejected": 1,
        "refused": 1,
    }
    assert d("fixbridge_rfq_first_quote_seconds_count") == 1  # only one RFQ got a quote
    assert d("fixbridge_rfq_first_quote_seconds_sum") > 0
    assert d("fixbridge_fix_messages_total", direction="in", msg_type="R") == 6
    assert d("fixbridge_fix_messages_total", direction="in", msg_type="Z") == 1
    assert d("fixbridge_fix_messages_total", direction="out", msg_type="S") == 1
    assert d("fixbridge_fix_messages_total", direction="out", msg_type="AE") == 1
    for reason in ("1", "10", "99"):
        assert d("fixbridge_fix_rejects_total", msg_type="AG", reason=reason) == 1
    assert d("fixbridge_clearing_acks_total") == 1
    assert d("fixbridge_clearing_rejects_total") == 0
    assert d("fixbridge_clearing_messages", state="acked") == 1
    assert after("fixbridge_clearing_backlog") == 0
    trade = httpx.get(f"{gateway.http}/trades/{trade_id}", headers=ADMIN).json()
    assert trade["clearing_status"] == "cleared"


# --- who may scrape ---------------------------------------------------------------------------


def test_metrics_need_a_metrics_or_admin_token_and_that_token_opens_nothing_else(gateway):
    url = f"{gateway.http}/metrics"
    anon = httpx.get(url)
    assert anon.status_code == 401
    assert anon.headers["content-type"].startswith("application/problem+json")
    for token in (VIEWER_TOKEN, COMPLIANCE_TOKEN, CLIENT_VIEWER_TOKEN):
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 403
    Scrape(gateway, METRICS_TOKEN)
    Scrape(gateway, API_TOKEN)
    openmetrics = httpx.get(
        url,
        headers={
            "Authorization": f"Bearer {METRICS_TOKEN}",
            "Accept": "application/openmetrics-text",
        },
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    # the scraper's token reads the metrics and nothing else
    spec = httpx.get(f"{gateway.http}/openapi.json").json()
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    checked = 0
    for path, item in spec["paths"].items():
        for method in item:
            if path in ("/health", "/ready", "/metrics"):
                continue
            r = httpx.request(
                method,
                gateway.http + path.replace("{", "").replace("}", ""),
                headers=scraper,
                json={},
            )
            assert r.status_code == 403, (method, path, r.status_code)
            checked += 1
    assert checked >= 20


# --- readiness --------------------------------------------------------------------------------


def test_ready_needs_no_token_and_names_every_check(gateway):
    r = httpx.get(f"{gateway.http}/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready" and set(body["checks"]) == CHECKS
    assert all(c["ok"] for c in body["checks"].values())
    scrape = Scrape(gateway)
    assert scrape("fixbridge_ready") == 1
    assert {scrape("fixbridge_ready_check", check=c) for c in CHECKS} == {1}


def test_ready_fails_naming_clearing_when_the_backlog_is_over_its_limit(tmp_path):
    closed = free_port()  # nothing listens there: every delivery attempt is refused
    extra = (
        METRICS_ROLE
        + f'[clearing]\nmode = "http"\nurl = "http://127.0.0.1:{closed}"\nmax_backlog = 0\n'
    )
    gw = GatewayProcess(tmp_path, extra=extra).start()
    try:
        assert httpx.get(f"{gw.http}/ready").status_code == 200  # nothing waiting yet
        desk = Desk(gw, VIEWER_TOKEN)
        client = RfqClient(gw, "KEEPSEQ")  # routed to DESK_A and DESK_B
        try:
            client.rfq("m-backlog")
            rfq_id = desk.event("RfqToDesk")["rfq"]["rfq_id"]
            assert desk.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
            client.hit(client.quote(), Side.BUY, "m-backlog-hit")
            client.next("8")
            client.next("AE")
        finally:
            client.close()
            desk.close()

        def not_ready():
            r = httpx.get(f"{gw.http}/ready")
            return r if r.status_code == 503 else None

        r = eventually(not_ready, what="/ready 503")
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["status"] == 503 and body["title"] == "Service Unavailable"
        assert body["detail"].startswith(
            "not ready: clearing (1 clearing messages unanswered, over the limit of 0"
        )
        assert not body["checks"]["clearing"]["ok"]
        assert all(body["checks"][c]["ok"] for c in CHECKS - {"clearing"})
        scrape = eventually(
            lambda: (s := Scrape(gw))("fixbridge_clearing_delivery_errors_total") >= 1 and s,
            what="a failed delivery counted",
        )
        assert scrape("fixbridge_clearing_backlog") == 1
        assert (
            scrape("fixbridge_clearing_messages", state="pending")
            + scrape("fixbridge_clearing_messages", state="sent")
            == 1
        )
        assert scrape("fixbridge_clearing_acks_total") == 0
        eventually(
            lambda: Scrape(gw)("fixbridge_ready_check", check="clearing") == 0,
            what="the readiness gauge",
        )
        log = eventually(
            lambda: "not ready: clearing" in (t := gw.stderr()) and t,
            what="the readiness warning in the log",
        )
        assert log.count("not ready: clearing") == 1  # once, however often it is probed
        assert "delivery attempt 1 failed" in log
    finally:
        assert gw.stop() == 0, gw.stderr()


# --- readiness with the database gone ---------------------------------------------------------


def test_ready_fails_naming_the_database_while_it_is_down(tmp_path, throwaway_postgres):
    pg = throwaway_postgres
    gw = GatewayProcess(tmp_path, database_url=pg.url, extra=METRICS_ROLE).start()
    try:
        assert httpx.get(f"{gw.http}/ready").status_code == 200
        pg.stop()

        def not_ready():
            r = httpx.get(f"{gw.http}/ready")
            return r if r.status_code == 503 else None

        body = eventually(not_ready, what="/ready 503").json()
        assert body["detail"].startswith("not ready: database (database unreachable: ")
        assert not body["checks"]["database"]["ok"]
        assert body["checks"]["audit"]["ok"]  # the rest of the process is fine
        assert httpx.get(f"{gw.http}/health").status_code == 200  # alive, just not ready
        eventually(lambda: "not ready: database" in gw.stderr(), what="the warning logged")
        pg.start()
        eventually(lambda: httpx.get(f"{gw.http}/ready").status_code == 200, what="ready again")
        eventually(lambda: "ready again: database" in gw.stderr(), what="the recovery logged")
        assert gw.stderr().count("not ready: database") == 1
    finally:
        assert gw.stop() == 0, gw.stderr()
