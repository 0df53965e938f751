"""The compliance console at /compliance in a real headless Chromium, against a real gateway:
after an RFQ trade (a FIX client lifts a desk's quote given over the API), compliance finds the
trade by its ClOrdID, opens its timeline and an entry with its FIX fields named, checks its
receipt, and downloads the search as CSV and the signed bundle."""

from __future__ import annotations

import csv
import io
import os
import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from fixspec.messages import Side
from gateway.audit.verify import verify_bundle
from tests import browser
from tests.harness import COMPLIANCE_TOKEN, ROOT, VIEWER_TOKEN, GatewayProcess
from tests.otc_support import Desk, RfqClient

SCREENSHOTS = ROOT / "tests" / "screenshots"
CL_ORD_ID = "page-clord-1"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw")).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(downloads):
    d = browser.chrome(downloads=downloads)
    yield d
    browser.quit(d)


@pytest.fixture(scope="module")
def trade_id(gateway) -> str:
    """Desk A quotes over the API; CLIENT2 lifts the offer over FIX with ClOrdID CL_ORD_ID."""
    desk = Desk(gateway, VIEWER_TOKEN)
    client = RfqClient(gateway)
    try:
        client.rfq("page-rfq-1")
        rfq_id = desk.event("RfqToDesk")["rfq"]["rfq_id"]
        assert desk.quote(rfq_id, bid_px="4150", offer_px="4250").status_code == 201
        quote = client.quote()
        client.hit(quote, Side.BUY, "page-hit-1", cl_ord_id=CL_ORD_ID)
        client.next("8")
        client.next("AE")
        return desk.event("TradeCaptured")["trade"]["trade_id"]
    finally:
        client.close()
        desk.close()


def sign_in(d, gw, token: str) -> None:
    d.get(gw.http + "/health")  # same origin, no script that could still store a token
    d.execute_script("sessionStorage.clear()")
    d.get(gw.http + "/compliance")
    field = browser.wait_for(d, lambda d: d.find_element(By.ID, "token"))
    field.send_keys(token, Keys.ENTER)


def press(d, *keys: str) -> None:
    ActionChains(d).send_keys(*keys).perform()


def rows(d) -> list[dict]:
    return d.execute_script("""
        return Array.from(document.querySelectorAll('#rows tr'), (tr) => ({
          seq: tr.dataset.seq, kind: tr.dataset.kind, what: tr.cells[4].innerText,
          selected: tr.classList.contains('selected')}));""")


def screenshot(d, name: str) -> None:
    """Saved to tests/screenshots/ for the README when FIXBRIDGE_SCREENSHOTS=1."""
    if os.environ.get("FIXBRIDGE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        d.save_screenshot(str(SCREENSHOTS / name))


def test_a_desk_token_is_refused(driver, gateway):
    sign_in(driver, gateway, VIEWER_TOKEN)
    browser.wait_for(
        driver,
        lambda d: "no compliance role" in browser.text_of(d, "#sign-in-error"),
        message="a desk token was let in",
    )
    assert not driver.find_element(By.ID, "console").is_displayed()
    assert driver.execute_script("return sessionStorage.length") == 0


def test_find_the_trade_by_clordid_timeline_receipt_and_csv(driver, gateway, trade_id, downloads):
    d = driver
    sign_in(d, gateway, COMPLIANCE_TOKEN)
    browser.wait_for(
        d, lambda d: browser.text_of(d, "#status") == "signed in", message="sign-in failed"
    )
    assert "test-compliance" in browser.text_of(d, "#who")
    form = d.find_element(By.ID, "search-form")
    form.find_element(By.NAME, "cl_ord_id").send_keys(CL_ORD_ID, Keys.ENTER)
    found = browser.wait_for(
        d,
        lambda d: len(r := rows(d)) == 3 and r,
        message="the ClOrdID search did not find the 3 FIX messages",
    )
    whats = [r["what"] for r in found]
    assert whats[0].startswith("QuoteResponse") and whats[1].startswith("ExecutionReport")
    assert whats[2].startswith("TradeCaptureReport") and trade_id in whats[2]
    assert found[0]["selected"]

    # j to the trade report, t for the trade's timeline: RFQ to clearing
    press(d, "j", "j")
    assert rows(d)[2]["selected"]
    press(d, "t")
    browser.wait_for(
        d, lambda d: trade_id in browser.text_of(d, "#timeline-title"), message="no timeline"
    )
    timeline = browser.text_of(d, "#timeline-items")
    for what in (
        "QuoteRequest",
        "Quote ",
        "QuoteResponse",
        "ExecutionReport",
        "TradeCaptureReport",
        "TradeCaptured",
        "clearing.out",
        "clearing.in",
    ):
        assert what in timeline, (what, timeline)
    screenshot(d, "compliance.png")

    # an entry: the trade report with the dictionary's field and enum names
    press(d, "o")
    browser.wait_for(d, lambda d: browser.css(d, "#fix-fields tbody tr"), message="no FIX table")
    fields = browser.text_of(d, "#fix-fields")
    assert "TradeCaptureReport" in browser.text_of(d, "#detail-body")
    assert (
        "TradeReportID" in fields
        and trade_id in fields
        and "exact wire bytes" in browser.text_of(d, "#detail-body")
    )
    screenshot(d, "compliance-entry.png")

    # the receipt: the gateway's verifier and this browser's own check of every proof
    press(d, "r")
    browser.wait_for(
        d,
        lambda d: "inclusion proofs lead" in browser.text_of(d, "#receipt-browser"),
        message="the browser never checked the proofs",
    )
    assert browser.text_of(d, "#receipt-status").startswith("Verified")
    checked = browser.text_of(d, "#receipt-browser")
    ok, _, rest = checked.partition(" of ")
    assert ok == rest.split()[0], checked

    # CSV of the search, with a progress bar, downloaded by the browser
    press(d, Keys.ESCAPE, "e")
    path = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = [p for p in downloads.glob("audit-csv-*.csv")]
        if done:
            path = done[0]
            break
        time.sleep(0.1)
    assert path is not None, "no CSV downloaded"
    assert "downloaded" in browser.text_of(d, "#export-label")
    assert d.execute_script(
        "return document.getElementById('export-progress').value"
    ) == d.execute_script("return document.getElementById('export-progress').max")
    table = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [r["cl_ord_id"] for r in table] == [CL_ORD_ID] * 3
    assert trade_id in table[2]["trade_id"]

    # the signed bundle beside it, which verifies offline
    press(d, "b")
    bundle = downloads / "audit-bundle.tar"
    browser.wait_for(
        d,
        lambda d: bundle.exists() and "downloaded" in browser.text_of(d, "#export-label"),
        timeout=30,
        message="no bundle downloaded",
    )
    report = verify_bundle(bundle)
    assert report.ok, report
    assert browser.console_errors(d) == []


def test_sign_out_forgets_everything(driver, gateway, trade_id):
    d = driver
    sign_in(d, gateway, COMPLIANCE_TOKEN)
    browser.wait_for(d, lambda d: browser.text_of(d, "#status") == "signed in")
    d.find_element(By.ID, "sign-out").click()
    assert d.execute_script("return sessionStorage.length") == 0
    assert rows(d) == [] and d.find_element(By.ID, "token").is_displayed()
