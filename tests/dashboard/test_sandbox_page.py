"""The sandbox's page in a real Chromium: both platforms side by side, a person's diff, the
request log, and fault toggles that change the running sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from opencdp import Client
from opencdp.testing import sandbox_options

from .conftest import console_errors
from .test_relay_dashboard import WAIT, until


def test_the_sandbox_page_in_chromium(sandbox: Any, browser: Any,
                                      screenshot: Callable[..., Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    with Client(**sandbox_options(sandbox)) as client:
        client.identify("ada", {"email": "ada@example.com", "plan": "pro"})
        client.track("ada", "signed_up", {"source": "ads"})
        client.identify("grace", {"email": "grace@example.com"})
        assert client.flush(10)
    # one platform drifts: Customer.io's copy of ada has another plan
    with httpx.Client(trust_env=False, timeout=10) as http:
        answer = http.put(f"{sandbox.track_url}/api/v1/customers/ada",
                          json={"plan": "free"},
                          auth=("sandbox-site", "sandbox-track-key"))
        assert answer.status_code == 200

    wait = WebDriverWait(browser, WAIT)
    browser.get(sandbox.urls["dashboard"])
    wait.until(ec.presence_of_element_located((By.XPATH, '//table[@id="people-opencdp"]//td')))
    until(lambda: "ada" in browser.find_element(By.ID, "people-customerio").text,
          "people on both platforms")
    assert "grace" in browser.find_element(By.ID, "people-opencdp").text

    search = browser.find_element(By.ID, "q")
    search.send_keys("grace")
    search.submit()
    until(lambda: "ada" not in browser.find_element(By.ID, "people-opencdp").text,
          "the search to narrow the list")
    search.clear()
    search.submit()
    until(lambda: "ada" in browser.find_element(By.ID, "people-opencdp").text,
          "the full list again")

    browser.find_element(By.CSS_SELECTOR, 'button[aria-label^="Compare ada"]').click()
    diff = wait.until(ec.visibility_of_element_located((By.ID, "diff-body")))
    until(lambda: "Not in sync" in diff.text, "the diff")
    assert "plan" in diff.text and '"free"' in diff.text and '"pro"' in diff.text

    until(lambda: "/api/v1/customers/ada" in browser.find_element(By.ID, "log").text,
          "the request in the log")

    # the fault toggles change the running sandbox
    Select(browser.find_element(By.ID, "fault-customerio-error_rate")).select_by_value("1")
    browser.find_element(By.ID, "fault-customerio-down").click()
    browser.find_element(By.CSS_SELECTOR, 'form[data-service="customerio"] button').click()
    until(lambda: sandbox.faults()["customerio"]["down"] is True, "the outage to apply")
    assert sandbox.faults()["customerio"]["error_rate"] == 1.0
    assert sandbox.faults()["opencdp"]["error_rate"] == 0.0
    with httpx.Client(trust_env=False, timeout=10) as http:
        refused = http.put(f"{sandbox.track_url}/api/v1/customers/ada", json={"plan": "x"},
                           auth=("sandbox-site", "sandbox-track-key"))
    assert refused.status_code == 503
    until(lambda: "503" in browser.find_element(By.ID, "log").text, "the 503 in the log")
    until(lambda: "outage: yes" in browser.find_element(By.ID, "faults").text,
          "the page to show the outage")
    time.sleep(0.2)
    screenshot(browser, "dashboard-sandbox")

    browser.find_element(By.ID, "faults-clear").click()
    until(lambda: not sandbox.faults()["customerio"]["down"], "the faults to clear")
    assert console_errors(browser) == []
