"""Headless Chromium for browser tests: Debian's chromium driven through its chromedriver.

Nothing is downloaded: a machine without /usr/bin/chromium or /usr/bin/chromedriver fails the
test at once with the command that installs them (``make test`` runs it).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        raise RuntimeError(
            f"browser tests need {' and '.join(missing)}: "
            "apt-get install chromium chromium-driver (make test does)"
        )


def chrome(width: int = 1440, height: int = 1000) -> WebDriver:
    """A fresh headless Chromium with its own profile directory (removed by :func:`quit`)."""
    require_browser()
    profile = tempfile.mkdtemp(prefix="fixbridge-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.profile_dir = profile  # type: ignore[attr-defined]
    return driver


def quit(driver: WebDriver) -> None:
    import shutil

    profile = getattr(driver, "profile_dir", None)
    driver.quit()
    if profile:
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(
    driver: WebDriver, what: Callable[[WebDriver], object], timeout: float = 15, message: str = ""
) -> object:
    """What ``what`` returns once truthy (retried on stale elements); fails after ``timeout``."""

    def attempt(d: WebDriver) -> object:
        try:
            return what(d)
        except StaleElementReferenceException:
            return False

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(attempt, message)


def css(driver: WebDriver, selector: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, selector)


def text_of(driver: WebDriver, selector: str) -> str:
    """The visible text of the first element matching ``selector`` ('' if none)."""
    found = css(driver, selector)
    return found[0].text if found else ""


def console_errors(driver: WebDriver) -> list[str]:
    """Script errors and security (CSP) violations logged since the last call. An HTTP error
    answer (source "network") is left out: a page reading a finished RFQ back gets a 404."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and e.get("source") != "network"
    ]
