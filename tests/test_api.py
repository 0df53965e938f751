"""The HTTP API over real HTTP against a running gateway."""

from __future__ import annotations

import httpx
import pytest

from load.fixclient import fix_time
from tests.conftest import connect
from tests.harness import API_TOKEN, VIEWER_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def test_health_is_open(gateway):
    r = httpx.get(f"{gateway.http}/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/sessions", "/orders", "/orders/O1"])
def test_every_other_route_needs_a_token(gateway, path):
    anon = httpx.get(f"{gateway.http}{path}")
    assert anon.status_code == 401
    assert anon.headers["content-type"].startswith("application/problem+json")
    assert anon.json()["status"] == 401
    bad = httpx.get(f"{gateway.http}{path}", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    wrong_role = httpx.get(
        f"{gateway.http}{path}", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}
    )
    assert wrong_role.status_code == 403
    assert "API auth failure" in gateway.stderr()


def test_sessions_show_state_sequence_numbers_and_peer(gateway):
    c = connect(gateway, "CLIENT2")
    try:
        c.send("1", [(112, "x")])
        c.expect("0")
        rows = {s["comp_id"]: s for s in httpx.get(f"{gateway.http}/sessions", headers=AUTH).json()}
        live = rows["CLIENT2"]
        assert live["logged_on"] is True
        assert live["peer"].startswith("127.0.0.1:")
        assert live["next_target_seq_num"] == c.next_seq
        assert rows["KEEPSEQ"]["logged_on"] is False
    finally:
        c.logout()


def test_orders_listing_and_lookup(gateway, clordid):
    c = connect(gateway, "CLIENT2")
    cl = clordid()
    try:
        c.send(
            "D",
            [
                (11, cl),
                (55, "BTC-27DEC26-100000-C"),
                (54, "1"),
                (60, fix_time()),
                (38, "1.5"),
                (40, "2"),
                (44, "4300.25"),
            ],
        )
        order_id = c.expect("8").get(37)
        c.expect("8")
    finally:
        c.logout()
    one = httpx.get(f"{gateway.http}/orders/{order_id}", headers=AUTH)
    assert one.status_code == 200
    body = one.json()
    assert body["cl_ord_id"] == cl and body["symbol"] == "BTC-27DEC26-100000-C"
    assert body["quantity"] == "1.5" and body["price"] == "4300.25"
    assert body["status"] == "2" and body["avg_px"] == "4200"
    listed = httpx.get(f"{gateway.http}/orders", params={"owner": "CLIENT2"}, headers=AUTH).json()
    assert order_id in {o["order_id"] for o in listed}
    assert all(o["owner"] == "CLIENT2" for o in listed)


def test_unknown_order_is_a_problem_404(gateway):
    r = httpx.get(f"{gateway.http}/orders/NOPE", headers=AUTH)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "NOPE" in r.json()["detail"]


def test_bad_query_is_a_problem_422(gateway):
    r = httpx.get(f"{gateway.http}/orders", params={"limit": "0"}, headers=AUTH)
    assert r.status_code == 422 and "limit" in r.json()["detail"]


def test_openapi_documents_every_route(gateway):
    spec = httpx.get(f"{gateway.http}/openapi.json").json()
    assert {"/health", "/sessions", "/orders", "/orders/{order_id}"} <= set(spec["paths"])
    assert httpx.get(f"{gateway.http}/docs").status_code == 200
