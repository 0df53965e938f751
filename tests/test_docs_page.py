"""The API docs render in a real browser from the gateway's own assets, and the setting that
puts them behind a token."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import httpx
import pytest

from tests import browser
from tests.harness import API_TOKEN, DESK_B_TOKEN, GatewayProcess


@pytest.fixture(scope="module")
def driver():
    d = browser.chrome()
    yield d
    browser.quit(d)


def _outside(gw: GatewayProcess, urls: list[str]) -> list[str]:
    return [u for u in urls if urlparse(u).netloc not in ("", f"127.0.0.1:{gw.http_port}")]


def test_docs_render_the_operations_list_from_the_gateways_own_assets(gateway, driver):
    driver.get(f"{gateway.http}/docs")
    ops = browser.wait_for(
        driver,
        lambda d: browser.css(d, ".opblock-summary-path"),
        message="Swagger UI rendered no operations",
    )
    paths = {op.get_attribute("data-path") for op in ops}
    assert {"/orders", "/desk/rfqs", "/rfqs", "/trades", "/audit/export"} <= paths, paths
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded and _outside(gateway, loaded) == [], loaded
    assert browser.console_errors(driver) == []


def test_redoc_renders_without_fonts_or_scripts_from_elsewhere(gateway, driver):
    page = httpx.get(f"{gateway.http}/redoc")
    assert page.status_code == 200
    assert _outside(gateway, re.findall(r'(?:src|href)="([^"]+)"', page.text)) == []
    driver.get(f"{gateway.http}/redoc")
    browser.wait_for(
        driver, lambda d: "/desk/rfqs" in d.page_source, message="ReDoc rendered no operations"
    )


def test_docs_behind_a_token_when_configured(tmp_path):
    gw = GatewayProcess(tmp_path, extra="").start()
    try:
        assert httpx.get(f"{gw.http}/openapi.json").status_code == 200  # public by default
    finally:
        assert gw.stop() == 0
    private = GatewayProcess(tmp_path / "private")
    text = private.write_config().read_text().replace("[api]\n", "[api]\ndocs_public = false\n")
    private.config_path.write_text(text)
    private.write_config = lambda: private.config_path  # keep the edited file
    private.start()
    try:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs-static/swagger-ui.css"):
            refused = httpx.get(f"{private.http}{path}")
            assert refused.status_code == 401, path
            assert refused.headers["content-type"] == "application/problem+json"
        for token in (API_TOKEN, DESK_B_TOKEN):  # any valid token, whatever its role
            ok = httpx.get(
                f"{private.http}/openapi.json", headers={"Authorization": f"Bearer {token}"}
            )
            assert ok.status_code == 200 and "/desk/rfqs" in ok.json()["paths"]
        assert httpx.get(f"{private.http}/health").status_code == 200
    finally:
        assert private.stop() == 0
