"""The desk blotter at /desk in a real headless Chromium, against a real gateway process and a
FIX client: a desk quotes, replaces, cancels, passes and confirms last looks through the page,
and the FIX client sees each of them."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from fixspec.messages import Side
from gateway.web import pages
from tests import browser
from tests.harness import (
    API_TOKEN,
    DESK_B_TOKEN,
    DESK_C_TOKEN,
    ROOT,
    VIEWER_TOKEN,
    GatewayProcess,
)
from tests.otc_support import Desk, RfqClient

DESK_A_TOKEN = VIEWER_TOKEN
SCREENSHOTS = ROOT / "tests" / "screenshots"
# CLIENT3's RFQs go to DESK_A alone: the other desks must never see them
EXTRA = """
[[sessions]]
comp_id = "CLIENT3"

[otc.routing.CLIENT3]
"*" = ["DESK_A"]

# DESK_C (quoting nowhere else in these tests) trips on its first fill
[otc.protection.DESK_C]
window_ms = 600000
max_fills = 1
"""


class DeskGateway(GatewayProcess):
    """The harness gateway with last-look holds long enough for a person, or a browser driven
    by a test on a busy machine, to answer them (the harness's 1.5 s is for API tests)."""

    def write_config(self) -> Path:
        path = super().write_config()
        text = path.read_text()
        assert "last_look_max_hold_ms = 1500" in text
        path.write_text(
            text.replace("last_look_max_hold_ms = 1500", "last_look_max_hold_ms = 8000")
        )
        return path


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = DeskGateway(tmp_path_factory.mktemp("gw"), extra=EXTRA).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture(scope="module")
def driver():
    d = browser.chrome()
    yield d
    browser.quit(d)


@pytest.fixture
def client(gateway):
    c = RfqClient(gateway)
    yield c
    c.close()


@pytest.fixture
def desk_a(gateway):
    """DESK_A's own stream, read by the test to learn the ids of the RFQs it sends."""
    d = Desk(gateway, DESK_A_TOKEN)
    yield d
    d.close()


# --- driving the page -----------------------------------------------------------------------


def sign_in(d, gw, token: str) -> None:
    """A fresh blotter (nothing kept from an earlier test) signed in with ``token``."""
    d.get(gw.http + "/health")  # same origin, no script that could still store a token
    d.execute_script("sessionStorage.clear()")
    d.get(gw.http + "/desk")
    field = browser.wait_for(d, lambda d: d.find_element(By.ID, "token"))
    field.send_keys(token, Keys.ENTER)
    browser.wait_for(
        d, lambda d: browser.text_of(d, "#conn") == "live", message="the desk stream never came up"
    )


def send_rfq(client: RfqClient, desk: Desk, req_id: str, **kw) -> str:
    client.rfq(req_id, **kw)
    while True:
        event = desk.event("RfqToDesk")
        if event["rfq"]["quote_req_id"] == req_id:
            return event["rfq"]["rfq_id"]


# The page redraws a table whenever an event comes, so a row found one moment may be gone the
# next: rows are read in one script call each, which the page cannot interleave with a redraw.
ROW = """
const tr = document.querySelector(`#rfq-rows tr[data-rfq="${arguments[0]}"]`);
if (!tr) return null;
const names = %s;
const row = Object.fromEntries(Array.from(tr.cells, (td, i) => [names[i], td.innerText.trim()]));
row.marked = tr.querySelector("input").checked;
row.selected = tr.getAttribute("aria-selected") === "true";
return row;
"""
COLUMNS = [
    "mark",
    "rfq",
    "client",
    "package",
    "side",
    "qty",
    "state",
    "alerts",
    "expires",
    "bid",
    "offer",
    "firmness",
    "valid",
]
ROW = ROW % json.dumps(COLUMNS)


def row(d, rfq_id: str) -> dict | None:
    """The RFQ's row as {column: text, marked, selected}, or None when it is not shown."""
    return d.execute_script(ROW, rfq_id)


def wait_row(d, rfq_id: str, check=lambda r: True, message: str = "") -> dict:
    return browser.wait_for(
        d,
        lambda d: (r := row(d, rfq_id)) is not None and check(r) and r,
        message=message or f"no such row for {rfq_id}",
    )


def select(d, rfq_id: str) -> None:
    def click(d) -> bool:
        d.find_element(
            By.CSS_SELECTOR, f'#rfq-rows tr[data-rfq="{rfq_id}"] td:nth-child(2)'
        ).click()
        return row(d, rfq_id)["selected"]

    browser.wait_for(d, click, message=f"could not select {rfq_id}")


def press(d, *keys: str) -> None:
    ActionChains(d).send_keys(*keys).perform()


def fill_quote(
    d,
    bid: str | None = None,
    offer: str | None = None,
    firmness: str | None = None,
    legs: dict[int, tuple[str, str]] | None = None,
) -> None:
    """Type terms into the open quote form and send it with Enter."""
    dialog = browser.wait_for(
        d,
        lambda d: (
            (e := d.find_element(By.ID, "quote-dialog")).get_attribute("open") is not None and e
        ),
    )
    for field, value in (("q-bid", bid), ("q-offer", offer)):
        if value is not None:
            box = d.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
    if firmness:
        Select(d.find_element(By.ID, "q-firmness")).select_by_value(firmness)
    for leg_no, (leg_bid, leg_offer) in (legs or {}).items():
        tr = dialog.find_element(By.CSS_SELECTOR, f'#q-leg-rows tr[data-leg="{leg_no}"]')
        tr.find_element(By.CLASS_NAME, "leg-bid").send_keys(leg_bid)
        tr.find_element(By.CLASS_NAME, "leg-offer").send_keys(leg_offer)
    d.find_element(By.ID, "q-valid").send_keys(Keys.ENTER)


def dialog_closed(d, dialog_id: str = "quote-dialog") -> bool:
    return d.find_element(By.ID, dialog_id).get_attribute("open") is None


def trade_row(d, rfq_id: str) -> dict | None:
    """This RFQ's row in the trades table as {text, clearing}, or None."""
    return d.execute_script(
        """
        const td = document.querySelector(`#trade-rows td[title="${arguments[0]}"]`);
        if (!td) return null;
        const tr = td.parentElement;
        return {text: tr.innerText, clearing: tr.querySelector(".clearing").dataset.status};
    """,
        rfq_id,
    )


def hold(d, quote_id: str) -> dict | None:
    """The last-look hold shown for the quote as {text, timer, bar}, or None."""
    return d.execute_script(
        """
        const el = document.querySelector(`#hold-list .hold[data-quote="${arguments[0]}"]`);
        if (!el) return null;
        return {text: el.innerText, timer: el.querySelector(".timer").innerText,
                bar: el.querySelector(".bar .fill").style.width};
    """,
        quote_id,
    )


def screenshot(d, name: str) -> None:
    """Saved to tests/screenshots/ for the README when FIXBRIDGE_SCREENSHOTS=1."""
    if os.environ.get("FIXBRIDGE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        d.save_screenshot(str(SCREENSHOTS / name))


# --- the flows ------------------------------------------------------------------------------


def test_a_desk_quotes_through_the_page_and_the_fix_client_lifts_it(
    gateway, driver, client, desk_a
):
    sign_in(driver, gateway, DESK_A_TOKEN)
    assert browser.text_of(driver, "#desk-id") == "DESK_A"
    rfq_id = send_rfq(client, desk_a, "page-lift")
    r = wait_row(driver, rfq_id)
    assert r["client"] == "CLIENT2" and r["qty"] == "10"
    assert r["side"] == "Two-way" and r["state"] == "Open"
    # the expiry counts down in the browser from the gateway's timestamp
    first = r["expires"]
    assert re.fullmatch(r"\d:\d\d", first), first
    wait_row(driver, rfq_id, lambda r: r["expires"] != first, "the countdown never ticked")

    select(driver, rfq_id)
    press(driver, Keys.ENTER)
    fill_quote(driver, bid="4100", offer="4300")
    q = client.quote()
    assert (q.bid_px, q.offer_px, q.signer_key_id) == (4100, 4300, "DESK_A")
    r = wait_row(driver, rfq_id, lambda r: r["offer"] == "4300")
    assert r["bid"] == "4100" and r["firmness"] == "firm"
    assert re.fullmatch(r"\d+\.\ds", r["valid"]), r["valid"]  # 30 s by default
    assert dialog_closed(driver)

    client.hit(q, Side.BUY, "page-lift-hit")
    er = client.next("8")
    assert (er.get(150), er.get(39), er.get(31)) == ("F", "2", "4300")
    client.next("AE")
    # the page shows the trade, and its clearing status until it is cleared
    traded = browser.wait_for(driver, lambda d: trade_row(d, rfq_id), message="no trade row")
    assert "4300" in traded["text"] and "CLIENT2" in traded["text"] and "Buy" in traded["text"]
    browser.wait_for(
        driver,
        lambda d: trade_row(d, rfq_id)["clearing"] == "cleared",
        timeout=20,
        message="clearing status never reached cleared",
    )
    # the traded RFQ is finished: it leaves the live list
    browser.wait_for(driver, lambda d: row(d, rfq_id) is None, message="traded RFQ still live")
    assert "TRADE" in browser.text_of(driver, "#log")
    # a desk reads only its own trades
    b_trades = httpx.get(
        f"{gateway.http}/trades", headers={"Authorization": f"Bearer {DESK_B_TOKEN}"}
    ).json()
    assert all(t["rfq_id"] != rfq_id for t in b_trades)
    assert browser.console_errors(driver) == []


def test_last_look_is_held_with_a_visible_timer_and_confirmed_through_the_page(
    gateway, driver, client, desk_a
):
    sign_in(driver, gateway, DESK_A_TOKEN)
    rfq_id = send_rfq(client, desk_a, "page-ll")
    select(driver, rfq_id)
    press(driver, "q")
    fill_quote(driver, bid="4100", offer="4300", firmness="last_look")
    q = client.quote()
    wait_row(driver, rfq_id, lambda r: r["firmness"] == "last look")
    client.order_on(q, Side.SELL, "page-ll-ord")
    assert client.next("8").get(39) == "A"  # pending while the desk looks

    held = browser.wait_for(
        driver, lambda d: hold(d, q.quote_id), message="no last-look hold shown"
    )
    assert re.fullmatch(r"\d\.\ds", held["timer"]), held  # seconds and tenths left
    assert re.fullmatch(r"\d+(\.\d)?%", held["bar"]), held  # and a bar that shrinks
    assert "4100" in held["text"] and "CLIENT2 sells 10" in held["text"]
    assert "LAST LOOK" in row(driver, rfq_id)["alerts"]
    assert row(driver, rfq_id)["state"] == "PendingExecution"
    press(driver, "y")  # confirm the first hold
    er = client.next("8")
    assert (er.get(39), er.get(31), er.get(54)) == ("2", "4100", "2")
    client.next("AE")
    browser.wait_for(
        driver,
        lambda d: not browser.css(d, "#hold-list .hold"),
        message="hold still shown after confirming",
    )
    assert not driver.find_element(By.ID, "holds").is_displayed()
    browser.wait_for(driver, lambda d: trade_row(d, rfq_id), message="no trade row")
    assert f"confirmed last look on {rfq_id.split('-', 1)[1]}" in browser.text_of(driver, "#log")


def test_replace_cancel_mass_quote_cancel_all_and_pass_through_the_page(
    gateway, driver, client, desk_a
):
    sign_in(driver, gateway, DESK_A_TOKEN)
    r1, r2, r3 = (send_rfq(client, desk_a, f"page-acts-{n}") for n in (1, 2, 3))

    # replace: r opens the form on the live quote, prefilled
    select(driver, r1)
    press(driver, Keys.ENTER)
    fill_quote(driver, bid="4100", offer="4300")
    q1 = client.quote()
    wait_row(driver, r1, lambda r: r["offer"] == "4300")
    press(driver, "r")
    browser.wait_for(
        driver, lambda d: d.find_element(By.ID, "q-offer").get_attribute("value") == "4300"
    )
    fill_quote(driver, offer="4280")
    q1b = client.quote()
    assert q1b.offer_px == 4280 and q1b.bid_px == 4100 and q1b.quote_id != q1.quote_id
    wait_row(driver, r1, lambda r: r["offer"] == "4280")

    # cancel: c withdraws the desk's quote on the selected RFQ
    press(driver, "c")
    gone = client.next("AI")
    assert (gone.get(117), gone.get(297)) == (q1b.quote_id, "6")
    wait_row(driver, r1, lambda r: r["offer"] == "—")

    # mass quote: mark two RFQs with x, quote both with m; each outcome is shown
    for rfq_id in (r2, r3):
        select(driver, rfq_id)
        press(driver, "x")
    assert all(row(driver, i)["marked"] for i in (r2, r3))
    press(driver, "m")
    fill_quote(driver, bid="4000", offer="4400")
    outcomes = browser.wait_for(
        driver,
        lambda d: (
            len(browser.css(d, "#quote-results li")) == 2 and browser.css(d, "#quote-results li")
        ),
    )
    assert [o.get_attribute("class") for o in outcomes] == ["ok", "ok"]
    mass = {client.quote().quote_id, client.quote().quote_id}
    press(driver, Keys.ESCAPE)
    browser.wait_for(driver, lambda d: dialog_closed(d))
    for rfq_id in (r2, r3):
        wait_row(driver, rfq_id, lambda r: r["offer"] == "4400")

    # cancel all: Shift+C withdraws every live quote of the desk
    press(driver, "C")
    cancelled = [client.next("AI") for _ in range(2)]
    assert {m.get(117) for m in cancelled} == mass and {m.get(297) for m in cancelled} == {"4"}
    for rfq_id in (r2, r3):
        wait_row(driver, rfq_id, lambda r: r["offer"] == "—")
    assert "cancel all: 2 withdrawn" in browser.text_of(driver, "#log")

    # pass: p asks first; Enter confirms
    select(driver, r1)
    press(driver, "p")
    browser.wait_for(driver, lambda d: not dialog_closed(d, "confirm-dialog"))
    press(driver, Keys.ENTER)
    passed = client.next("AI")
    assert (passed.get(297), passed.get(131)) == ("11", "page-acts-1")
    wait_row(driver, r1, lambda r: "passed" in r["alerts"])
    headers = {"Authorization": f"Bearer {DESK_A_TOKEN}"}
    for rfq_id in (r1, r2, r3):  # the API agrees: no live quote of the desk is left
        mine = httpx.get(f"{gateway.http}/desk/rfqs/{rfq_id}", headers=headers).json()
        assert mine["my_quotes"] == []


def test_per_leg_and_one_way_quotes_and_a_counter_answered_through_the_page(
    gateway, driver, client, desk_a
):
    sign_in(driver, gateway, DESK_A_TOKEN)
    legs = [("BTC-27DEC26-100000-C", Side.BUY), ("BTC-27DEC26-60000-P", Side.SELL)]
    multi = send_rfq(client, desk_a, "page-legs", legs=legs)
    select(driver, multi)
    press(driver, Keys.ENTER)
    fill_quote(driver, bid="1000", offer="1100", legs={1: ("4100", "4200"), 2: ("3100", "3100")})
    q = client.quote()
    assert len(q.legs) == 2 and q.offer_px == 1100

    one_way = send_rfq(client, desk_a, "page-one-way")
    select(driver, one_way)
    press(driver, Keys.ENTER)
    fill_quote(driver, offer="4250")
    q1 = client.quote()
    assert (q1.bid_px, q1.offer_px) == (None, 4250)
    wait_row(driver, one_way, lambda r: r["bid"] == "—" and r["offer"] == "4250")

    # the client counters; the page shows it, and a answers it with the counter's price
    client.counter(q1, Side.BUY, "4200", "page-ctr-1")
    wait_row(driver, one_way, lambda r: "COUNTER" in r["alerts"])
    select(driver, one_way)
    assert "Client buys 10 at 4200" in browser.text_of(driver, "#detail-body")
    press(driver, "a")
    browser.wait_for(
        driver, lambda d: d.find_element(By.ID, "q-offer").get_attribute("value") == "4200"
    )
    fill_quote(driver)
    answered = client.quote()
    assert answered.offer_px == 4200 and answered.quote_id != q1.quote_id
    wait_row(driver, one_way, lambda r: "COUNTER" not in r["alerts"] and r["offer"] == "4200")


def test_another_desk_never_sees_an_rfq_routed_only_to_desk_a_and_sign_out_forgets(
    gateway, driver, desk_a
):
    only_a = RfqClient(gateway, "CLIENT3")
    everyone = RfqClient(gateway)
    try:
        sign_in(driver, gateway, DESK_B_TOKEN)
        assert browser.text_of(driver, "#desk-id") == "DESK_B"
        private = send_rfq(only_a, desk_a, "page-only-a")
        public = send_rfq(everyone, desk_a, "page-for-all")
        # the engine handled the private RFQ first: once the later one is on DESK_B's page,
        # the private one would be there too if it were ever sent to DESK_B
        wait_row(driver, public)
        assert row(driver, private) is None
        driver.refresh()  # signed in again from this tab's storage, read whole from the API
        browser.wait_for(driver, lambda d: browser.text_of(d, "#conn") == "live")
        wait_row(driver, public)
        assert row(driver, private) is None and private not in driver.page_source

        # signing out forgets the token and everything shown
        driver.find_element(By.ID, "sign-out").click()
        browser.wait_for(driver, lambda d: d.find_element(By.ID, "sign-in").is_displayed())
        assert browser.css(driver, "#rfq-rows tr") == []
        assert browser.css(driver, "#trade-rows tr") == []
        assert browser.css(driver, "#log li") == []
        assert not driver.find_element(By.ID, "blotter").is_displayed()
        assert driver.execute_script("return sessionStorage.length") == 0
        assert public not in driver.page_source

        # DESK_A, signed in on the same page, sees it
        field = driver.find_element(By.ID, "token")
        field.send_keys(DESK_A_TOKEN, Keys.ENTER)
        wait_row(driver, private)
        assert browser.text_of(driver, "#desk-id") == "DESK_A"
        driver.find_element(By.ID, "sign-out").click()
        browser.wait_for(driver, lambda d: not browser.css(d, "#rfq-rows tr"))

        # a token the gateway does not know is refused at sign-in
        driver.find_element(By.ID, "token").send_keys("not-a-token", Keys.ENTER)
        browser.wait_for(driver, lambda d: "refused" in browser.text_of(d, "#sign-in-error"))
        assert not driver.find_element(By.ID, "blotter").is_displayed()
        driver.find_element(By.ID, "token").send_keys(API_TOKEN, Keys.ENTER)  # not a desk's
        browser.wait_for(driver, lambda d: "not a desk" in browser.text_of(d, "#sign-in-error"))
    finally:
        only_a.close()
        everyone.close()


def test_the_page_shows_reconnecting_while_the_stream_is_down_then_resyncs(tmp_path, driver):
    gw = DeskGateway(tmp_path / "gw", extra=EXTRA).start()
    try:
        sign_in(driver, gw, DESK_A_TOKEN)
        assert not driver.find_element(By.ID, "banner").is_displayed()
        assert gw.stop() == 0, gw.stderr()
        banner = browser.wait_for(
            driver,
            lambda d: (b := d.find_element(By.ID, "banner")).is_displayed() and b,
            message="no reconnecting banner",
        )
        assert banner.text.startswith("Reconnecting…"), banner.text
        assert browser.text_of(driver, "#conn") == "reconnecting…"
        screenshot(driver, "desk-reconnecting.png")
        gw.start()  # same ports, same data: the page reconnects by itself
        browser.wait_for(
            driver,
            lambda d: browser.text_of(d, "#conn") == "live",
            timeout=30,
            message="the page never reconnected",
        )
        assert not driver.find_element(By.ID, "banner").is_displayed()
        client, desk = RfqClient(gw), Desk(gw, DESK_A_TOKEN)
        try:
            wait_row(driver, send_rfq(client, desk, "page-after-restart"))
        finally:
            desk.close()
            client.close()
    finally:
        gw.stop()


def test_blotter_with_quotes_a_counter_a_hold_and_trades(gateway, driver, client, desk_a):
    """The state a desk works in, all at once (and the README's screenshot of it)."""
    sign_in(driver, gateway, DESK_A_TOKEN)
    traded = send_rfq(client, desk_a, "page-shot-traded")
    assert desk_a.quote(traded, bid_px="4120", offer_px="4280").status_code == 201
    client.hit(client.quote(), Side.BUY, "page-shot-hit")
    client.next("8")
    client.next("AE")
    quoted = send_rfq(client, desk_a, "page-shot-quoted", qty="25")
    assert desk_a.quote(quoted, bid_px="4150", offer_px="4250").status_code == 201
    client.quote()
    countered = send_rfq(client, desk_a, "page-shot-counter", side=Side.BUY)
    assert desk_a.quote(countered, offer_px="4310").status_code == 201
    client.counter(client.quote(), Side.BUY, "4260", "page-shot-ctr")
    legs = [
        ("BTC-27DEC26-100000-C", Side.BUY),
        ("BTC-27DEC26-60000-P", Side.SELL),
        ("BTC-27DEC26", Side.SELL),
    ]
    send_rfq(client, desk_a, "page-shot-legs", legs=legs, ratios=["1", "1", "0.5"])
    held = send_rfq(client, desk_a, "page-shot-held", qty="5")
    assert (
        desk_a.quote(held, bid_px="4090", offer_px="4330", firmness="last_look").status_code == 201
    )
    q = client.quote()
    client.order_on(q, Side.SELL, "page-shot-ord")
    assert client.next("8").get(39) == "A"

    browser.wait_for(driver, lambda d: hold(d, q.quote_id))
    wait_row(driver, countered, lambda r: "COUNTER" in r["alerts"])
    wait_row(driver, quoted, lambda r: r["offer"] == "4250")
    browser.wait_for(
        driver,
        lambda d: (t := trade_row(d, traded)) is not None and t["clearing"] == "cleared",
        timeout=20,
    )
    select(driver, countered)
    screenshot(driver, "desk.png")
    press(driver, "n")  # reject the hold: the client's order is refused
    assert client.next("AI").get(117) == q.quote_id
    assert client.next("8").get(39) == "8"
    browser.wait_for(driver, lambda d: not browser.css(d, "#hold-list .hold"))


# --- what the page is made of, and how it talks to the gateway ---------------------------------

URL = re.compile(r"\b(?:https?|wss?)://[^\s\"'<>)`]*")
XML_NAMESPACES = {"http://www.w3.org/2000/svg"}  # names, never fetched


def test_the_page_loads_nothing_from_outside_the_gateway(gateway, driver):
    for path in pages.STATIC.iterdir():
        found = set(URL.findall(path.read_text())) - XML_NAMESPACES
        assert not found, f"{path.name} names {found}"
    html = httpx.get(f"{gateway.http}/desk")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    policy = html.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "*" not in policy
    assert "form-action 'none'" in policy  # a sign-in form can never post the token anywhere
    assert html.headers["x-content-type-options"] == "nosniff"
    assets = re.findall(r'(?:src|href)="(/ui/[^"]+)"', html.text)
    assert "/ui/desk.js" in assets and "/ui/desk.css" in assets and "/ui/common.css" in assets
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for asset in assets:
        r = httpx.get(f"{gateway.http}{asset}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(
            types[Path(asset).suffix]
        ), asset
        assert r.headers["content-security-policy"] == policy
    for missing in ("/ui/nope.js", "/ui/..%2Fpages.py", "/ui/.hidden.js"):
        assert httpx.get(f"{gateway.http}{missing}").status_code == 404, missing
    # the page is open; the API behind it is not
    assert httpx.get(f"{gateway.http}/desk/rfqs").status_code == 401
    assert "/desk" not in httpx.get(f"{gateway.http}/openapi.json").json()["paths"]

    sign_in(driver, gateway, DESK_A_TOKEN)
    origin = gateway.http
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded and all(u.startswith(origin + "/") for u in loaded), loaded
    assert driver.current_url.startswith(origin)
    assert browser.console_errors(driver) == []  # no CSP violation, no failed load


def test_every_static_file_is_in_the_package_data():
    text = (ROOT / "pyproject.toml").read_text()
    globs = json.loads(re.search(r'^"gateway\.web" = (\[.*\])$', text, re.M).group(1))
    for path in pages.STATIC.iterdir():
        assert any(path.match(g.removeprefix("static/")) for g in globs), path.name


def bearer_protocol(token: str) -> str:
    return "fixbridge.bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def test_a_browser_authenticates_the_desk_stream_with_a_subprotocol(gateway, client):
    url = f"ws://127.0.0.1:{gateway.http_port}/desk/stream"
    with ws_connect(
        url, subprotocols=["fixbridge.desk.v1", bearer_protocol(DESK_A_TOKEN)], open_timeout=10
    ) as ws:
        assert ws.subprotocol == "fixbridge.desk.v1"  # never the token back
        client.rfq("page-ws-auth")
        while (event := json.loads(ws.recv(timeout=10)))["event"] != "RfqToDesk":
            pass
        assert event["desk_id"] == "DESK_A" and event["rfq"]["quote_req_id"] == "page-ws-auth"
    for offered in (
        bearer_protocol("not-a-token"),
        bearer_protocol(API_TOKEN),
        "fixbridge.bearer.!!!",
        "fixbridge.bearer.",
    ):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url, subprotocols=["fixbridge.desk.v1", offered], open_timeout=10)
        assert refused.value.response.status_code == 403, offered


def test_desk_me_names_the_callers_desk(gateway):
    me = httpx.get(f"{gateway.http}/desk/me", headers={"Authorization": f"Bearer {DESK_B_TOKEN}"})
    assert me.json() == {"desk_id": "DESK_B", "token_name": "test-desk-b"}
    assert httpx.get(f"{gateway.http}/desk/me").status_code == 401
    admin = httpx.get(f"{gateway.http}/desk/me", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert admin.status_code == 403


def test_the_page_shows_a_tripped_desk_frozen_and_resets_it(gateway, driver, client):
    desk_c = Desk(gateway, DESK_C_TOKEN)
    try:
        sign_in(driver, gateway, DESK_C_TOKEN)
        assert not driver.find_element(By.ID, "mmp").is_displayed()
        client.rfq("page-mmp")
        rfq_id = desk_c.event("RfqToDesk")["rfq"]["rfq_id"]
        assert desk_c.quote(rfq_id, bid_px="4100", offer_px="4300").status_code == 201
        client.hit(client.quote(), Side.BUY, "hit-page-mmp")
        browser.wait_for(
            driver,
            lambda d: d.find_element(By.ID, "mmp").is_displayed(),
            message="the page does not show the desk frozen",
        )
        assert "1 fills" in driver.find_element(By.ID, "mmp").get_attribute("title")
        assert "PROTECTION TRIPPED" in browser.text_of(driver, "#log")

        driver.find_element(By.ID, "mmp-reset").click()
        browser.wait_for(
            driver,
            lambda d: not d.find_element(By.ID, "mmp").is_displayed(),
            message="the page still shows the desk frozen after the reset",
        )
        guard = httpx.get(
            f"{gateway.http}/desk/protection", headers={"Authorization": f"Bearer {DESK_C_TOKEN}"}
        ).json()
        assert guard["frozen"] is False
    finally:
        desk_c.close()
