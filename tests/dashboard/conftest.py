"""Fixtures: a real Chromium driven by Selenium, and a relay delivering into a sandbox.

The browser is installed by the test run when missing (as root, from Debian's packages), as
redis-server is; under CI=true failing to get one fails the run, elsewhere the tests skip with
one line saying why. Screenshots go to an artifacts directory (``OPENCDP_ARTIFACTS``, else a
temporary one); with ``OPENCDP_UPDATE_SCREENSHOTS=1`` they are also copied to docs/images/.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opencdp.config import BreakerConfig, RetryConfig

from .browser import VARIANCE_JS, BrowserUnavailable, find_or_install_chromium, in_ci, png_size

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
RELAY_KEY = "relay-key-0123456789"
SECRET = "hunter2-very-secret-value"


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    try:
        return find_or_install_chromium()
    except BrowserUnavailable as exc:
        if in_ci():
            pytest.fail(f"CI=true but no Chromium could be had: {exc}")
        pytest.skip(f"dashboard tests need Chromium: {exc}")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    where = os.environ.get("OPENCDP_ARTIFACTS")
    path = Path(where) if where else Path(tempfile.mkdtemp(prefix="opencdp-artifacts-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser(chromium: tuple[str, str]) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1400", "--no-first-run", "--disable-extensions",
                "--proxy-server=direct://", "--proxy-bypass-list=*"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture
def screenshot(artifacts: Path) -> Callable[..., Path]:
    """Save the page as ``NAME.png``, check it is no blank page, and return its path."""

    def take(driver: Any, name: str, top: bool = True) -> Path:
        path = artifacts / f"{name}.png"
        if top:
            driver.execute_script("window.scrollTo(0, 0)")
        data = driver.get_screenshot_as_png()
        path.write_bytes(data)
        width, height = png_size(data)
        assert width >= 800 and height >= 600
        variance = driver.execute_async_script(VARIANCE_JS, driver.get_screenshot_as_base64())
        assert variance > 50, f"the screenshot {path} looks blank (grey variance {variance})"
        if os.environ.get("OPENCDP_UPDATE_SCREENSHOTS"):
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, DOCS_IMAGES / path.name)
        return path

    return take


def relay_options(sandbox: Any, tmp_path: Path) -> dict[str, Any]:
    """A relay dual-writing into ``sandbox`` whose Customer.io copies dead-letter after two
    quick tries (the breaker stays closed, so they do not just wait)."""
    from opencdp.testing import sandbox_options

    client = sandbox_options(sandbox, retry=RetryConfig(base_delay=0.01, max_delay=0.02,
                                                        max_attempts=2),
                             breaker=BreakerConfig(failure_threshold=10_000, reset_timeout=0.2),
                             timeout=5.0)
    return {"api_keys": (RELAY_KEY,), "queue": f"sqlite:///{tmp_path / 'relay.db'}",
            "port": 0, "drain_timeout": 3.0, "client": client}
