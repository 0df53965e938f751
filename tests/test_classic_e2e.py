"""Swaps and FX options end to end: asked for over FIX or the API, quoted by a desk over HTTP,
accepted over FIX, captured, and cleared as FpML by the simulated clearinghouse, which validates
every message against the official FpML 5.10 schema (so "cleared" means schema-valid)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import httpx
import pytest
from lxml import etree

from fixspec.codec import RawMessage, groups
from fixspec.messages import Side
from gateway.clearinghouse.schemas import FPML_MAIN, compile_schema
from gateway.fix.rfq_fields import RELATED_SYM_MEMBERS
from gateway.store.trades import trade_from_record
from otc.clearing.codec import render
from tests.harness import API_TOKEN, DESK_B_TOKEN, VIEWER_TOKEN, GatewayProcess, shared_dir
from tests.otc_support import Desk, RfqClient

ADMIN = {"Authorization": f"Bearer {API_TOKEN}"}
MATURITY = (datetime.now(UTC) + timedelta(days=5 * 365)).date()
EXPIRY = (datetime.now(UTC) + timedelta(days=90)).date()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    schemas = shared_dir() / "schemas"
    assert (schemas / "fpml-5-10").is_dir(), f"official schemas not found at {schemas}"
    extra = f'[clearing]\nschema_dir = "{schemas}"\n'
    # [risk] max_order_qty = 1000 counts contracts; a notional in millions is not held to it
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), extra=extra).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture
def desks(gateway):
    ds = [Desk(gateway, t) for t in (VIEWER_TOKEN, DESK_B_TOKEN)]
    yield ds
    for d in ds:
        d.close()


@pytest.fixture
def client(gateway):
    c = RfqClient(gateway)
    yield c
    c.close()


@pytest.fixture(scope="module")
def fpml_schema():
    return compile_schema(shared_dir() / "schemas" / "fpml-5-10" / "confirmation" / FPML_MAIN)


def cleared(gw: GatewayProcess, trade_id: str) -> dict:
    import time

    deadline = time.monotonic() + 15
    body: dict = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{gw.http}/trades/{trade_id}", headers=ADMIN).json()
        if body["clearing_status"] not in ("pending", "not_cleared"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"trade {trade_id} never answered by the clearinghouse: {body}")


def fill_and_report(client: RfqClient) -> tuple[RawMessage, RawMessage]:
    er = client.next("8")
    assert (er.get(150), er.get(39)) == ("F", "2"), er.fields
    return er, client.next("AE")


def test_irs_rfq_over_fix_quoted_by_desk_accepted_and_cleared_as_fpml(
    gateway, client, desks, fpml_schema
):
    a, b = desks
    client.rfq("irs-1", legs=[(f"IRS-USD-SOFR-{MATURITY:%Y%m%d}", Side.BUY)], qty="25000000")
    rfq = a.event("RfqToDesk")["rfq"]
    (leg,) = rfq["legs"]
    assert (leg["instrument"]["kind"], leg["instrument"]["quote_currency"]) == ("irs", "USD")
    assert leg["instrument"]["terms"]["convention"]["floating_index"] == "USD-SOFR-OIS Compound"
    assert b.event("RfqToDesk")["rfq"]["rfq_id"] == rfq["rfq_id"]
    assert b.post(f"/desk/rfqs/{rfq['rfq_id']}/pass").status_code == 200
    assert a.quote(rfq["rfq_id"], bid_px="0.0371", offer_px="0.0375").status_code == 201
    passed = client.next("AI")
    assert passed.get(297) == "11"
    q = client.quote()
    assert (q.symbol, q.bid_px, q.offer_px) == ("USD-SOFR", D("0.0371"), D("0.0375"))

    client.hit(q, Side.BUY, "irs-1-hit")  # pay fixed at the offer
    er, ae = fill_and_report(client)
    for msg in (er, ae):
        assert [msg.get(t) for t in (55, 167, 541)] == ["USD-SOFR", "IRS", f"{MATURITY:%Y%m%d}"]
    assert (er.get(31), er.get(32), er.get(15)) == ("0.0375", "25000000", "USD")

    trade = cleared(gateway, er.get(17))
    assert trade["clearing_status"] == "cleared", trade
    assert [m["format"] for m in trade["clearing"]] == ["fpml-5.10/requestClearing"]
    swap = trade["legs"][0]["product"]
    assert (swap["fixed_rate"], swap["notional"], swap["payer_of_fixed"]) == (
        "0.0375",
        "25000000",
        "CLIENT2",
    )
    assert swap["termination_date"] == MATURITY.isoformat()
    # the stored record renders the very message that was cleared, and it is schema-valid
    assert fpml_schema.errors(etree.fromstring(render(trade_from_record(trade)).body)) == []


def test_fx_option_rfq_over_the_api_quoted_accepted_over_fix_and_cleared(
    gateway, client, desks, fpml_schema
):
    a, b = desks
    r = a.post(
        "/rfqs",
        {
            "client_id": client.comp_id,
            "quote_req_id": "fxo-1",
            "legs": [
                {
                    "fx_option": {
                        "pair": "EUR/USD",
                        "expiry": EXPIRY.isoformat(),
                        "strike": "1.1",
                        "put_call": "call",
                    },
                    "side": "buy",
                }
            ],
            "quantity": "10000000",
            "side": "buy",
        },
    )
    assert r.status_code == 201, r.text
    rfq = r.json()["rfq"]
    instrument = rfq["legs"][0]["instrument"]
    assert instrument["symbol"] == f"EUR/USD-{EXPIRY.day}{EXPIRY:%b%y}-1.1-C".upper()
    assert (instrument["kind"], instrument["strike"]) == ("fx_option", "1.1")
    assert b.event("RfqToDesk")["rfq"]["rfq_id"] == rfq["rfq_id"]
    assert b.quote(rfq["rfq_id"], offer_px="0.0145").status_code == 201
    q = client.quote()
    assert (q.symbol, q.offer_px) == ("EUR/USD", D("0.0145"))

    client.hit(q, Side.BUY, "fxo-1-hit")
    er, ae = fill_and_report(client)
    assert [er.get(t) for t in (55, 167, 460, 201, 202, 15)] == [
        "EUR/USD", "OPT", "4", "1", "1.1", "USD"
    ]  # fmt: skip
    trade = cleared(gateway, er.get(17))
    assert trade["clearing_status"] == "cleared", trade
    option = trade["legs"][0]["product"]
    assert (option["call_currency"], option["call_amount"]) == ("EUR", "10000000")
    assert (option["put_currency"], D(option["put_amount"])) == ("USD", D("11000000"))
    assert (D(option["premium_amount"]), option["buyer"], option["seller"]) == (
        D("145000"),
        "CLIENT2",
        "DESK_B",
    )
    assert fpml_schema.errors(etree.fromstring(render(trade_from_record(trade)).body)) == []


def test_swap_without_maturity_is_refused_over_fix_and_over_the_api(gateway, client, desks):
    a = desks[0]
    client.send(
        RawMessage(
            "R",
            (
                (35, "R"),
                (131, "irs-bad"),
                (146, "1"),
                (55, "USD-SOFR"),
                (167, "IRS"),
                (54, "1"),
                (38, "1000000"),
            ),
        )  # fmt: skip
    )
    ag = client.next("AG")
    assert (ag.get(131), ag.get(658)) == ("irs-bad", "99")
    assert "MaturityDate(541) is required" in ag.get(58)
    assert groups(ag, 146, RELATED_SYM_MEMBERS)[0].get(55) == "USD-SOFR"

    r = a.post(
        "/rfqs",
        {
            "client_id": client.comp_id,
            "quote_req_id": "irs-bad-api",
            "legs": [{"irs": {"currency": "USD", "index": "SOFR"}, "side": "buy"}],
            "quantity": "1000000",
        },
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "needs its maturity" in r.json()["detail"]
    r = a.post(
        "/rfqs",
        {
            "client_id": client.comp_id,
            "quote_req_id": "irs-bad-api-2",
            "legs": [{"symbol": "IRS-USD-LIBOR-5Y", "side": "buy"}],
            "quantity": "1000000",
        },
    )
    assert r.status_code == 422
    assert "no swap convention for USD LIBOR" in r.json()["detail"]


def test_swap_by_terms_over_the_api_keeps_an_off_standard_leg(gateway, client, desks):
    a = desks[0]
    r = a.post(
        "/rfqs",
        {
            "client_id": client.comp_id,
            "quote_req_id": "irs-api-3m",
            "legs": [
                {
                    "irs": {
                        "currency": "EUR",
                        "index": "EURIBOR",
                        "tenor": "10Y",
                        "floating_frequency": "3M",
                    },
                    "side": "buy",
                }
            ],
            "quantity": "50000000",
        },
    )
    assert r.status_code == 201, r.text
    instrument = r.json()["rfq"]["legs"][0]["instrument"]
    assert instrument["symbol"] == "IRS-EUR-EURIBOR-10Y-FLT:3M:ACT/360"
    assert instrument["terms"]["convention"]["fixed_day_count"] == "30/360"
    bad = a.post(
        "/rfqs",
        {
            "client_id": client.comp_id,
            "quote_req_id": "irs-api-2m",
            "legs": [{"irs": {"currency": "EUR", "index": "ESTR", "tenor": "2Y",
                              "fixed_frequency": "2M"}, "side": "buy"}],
            "quantity": "1000000",
        },
    )  # fmt: skip
    assert bad.status_code == 422
    assert "fixed_frequency" in bad.text
