"""The relay's dashboard in a real Chromium, and its door over plain HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opencdp.config import ClientConfig
from opencdp.server import RelayServer, ServerConfig

from .conftest import RELAY_KEY, SECRET, console_errors, relay_options

WAIT = 20.0


@pytest.fixture
def relay(sandbox: Any, tmp_path: Path) -> Iterator[RelayServer]:
    options = relay_options(sandbox, tmp_path)
    options["client"] = ClientConfig(**options["client"])
    server = RelayServer(ServerConfig(**options)).start()
    try:
        yield server
    finally:
        server.stop(timeout=10)


def _http(relay: RelayServer) -> httpx.Client:
    return httpx.Client(base_url=str(relay.urls["url"]), trust_env=False, timeout=10.0)


def _login(http: httpx.Client) -> str:
    answer = http.post("/dashboard/login", data={"key": RELAY_KEY})
    assert answer.status_code == 303
    csrf: str = http.get("/dashboard/api/session").json()["csrf"]
    return csrf


def until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def test_without_the_key_the_data_answers_401_and_the_page_is_the_login(
        relay: RelayServer) -> None:
    with _http(relay) as http:
        for path in ("api/state", "api/dead", "api/session", "api/migration", "api/dead-count"):
            assert http.get(f"/dashboard/{path}").status_code == 401, path
        assert http.get("/dashboard/api/state",
                        headers={"Authorization": "wrong"}).status_code == 401
        assert http.get(f"/dashboard/api/state?key={RELAY_KEY}").status_code == 401
        page = http.get("/dashboard/")
        assert page.status_code == 200 and 'name="key"' in page.text
        assert RELAY_KEY not in page.text
        assert http.post("/dashboard/login", data={"key": "nope"}).status_code == 401
        assert http.get("/dashboard/api/state",
                        headers={"Authorization": RELAY_KEY}).status_code == 200


def test_the_session_cookie_is_httponly_and_samesite_strict(relay: RelayServer) -> None:
    with _http(relay) as http:
        answer = http.post("/dashboard/login", data={"key": RELAY_KEY})
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and RELAY_KEY not in cookie
        assert answer.headers["location"] == "/dashboard/"


def test_a_cross_site_post_is_refused(relay: RelayServer) -> None:
    with _http(relay) as http:
        csrf = _login(http)
        evil = {"origin": "https://evil.example", "x-csrf-token": csrf}
        assert http.post("/dashboard/api/replay", json={}, headers=evil).status_code == 403
        assert http.post("/dashboard/api/purge", json={}).status_code == 403  # no token
        assert http.post("/dashboard/api/purge", json={},
                         headers={"x-csrf-token": "forged"}).status_code == 403
        assert http.post("/dashboard/login", data={"key": RELAY_KEY},
                         headers={"origin": "https://evil.example"}).status_code == 403
        assert http.post("/dashboard/api/replay", json={},
                         headers={"x-csrf-token": csrf}).status_code == 200
        assert http.post("/dashboard/api/replay", json={"destination": "customerio"},
                         headers={"Authorization": RELAY_KEY}).status_code == 200


def test_repeated_wrong_keys_are_throttled(relay: RelayServer) -> None:
    with _http(relay) as http:
        codes = [http.post("/dashboard/login", data={"key": f"guess{i}"}).status_code
                 for i in range(7)]
        assert codes[:5] == [401] * 5 and codes[-1] == 429


def _traffic(relay: RelayServer, stop: threading.Event, sent: list[int]) -> None:
    with httpx.Client(base_url=str(relay.urls["gateway"]), trust_env=False, timeout=10.0,
                      headers={"Authorization": RELAY_KEY}) as http:
        i = 0
        while not stop.is_set():
            answer = http.post("/v1/persons/track", json={
                "identifier": f"user-{i % 20}", "eventName": "page_viewed",
                "properties": {"n": i}})
            assert answer.status_code == 202
            sent[0] += 1
            i += 1
            time.sleep(0.02)


_VALUE_JS = """
const card = document.querySelector(`article[data-destination="${arguments[0]}"]`);
if (!card) return "";
for (const dt of card.querySelectorAll("dt")) if (dt.textContent === arguments[1])
  return dt.nextElementSibling.textContent;
return "";
"""
_POINTS_JS = """
const line = document.querySelector(`article[data-destination="${arguments[0]}"] svg polyline.l1`);
return line ? line.getAttribute("points") : "";
"""


def _card_value(browser: Any, destination: str, name: str) -> str:
    """Read in one script: the cards are redrawn every second, so a located element goes
    stale between two WebDriver calls."""
    return str(browser.execute_script(_VALUE_JS, destination, name))


def _number(text: str) -> int:
    return int(text.replace(",", "") or 0)


def test_the_relay_dashboard_live_in_chromium(relay: RelayServer, sandbox: Any, browser: Any,
                                              screenshot: Callable[..., Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, WAIT)
    base = str(relay.urls["url"])
    browser.get(base + "/dashboard/")
    field = wait.until(ec.presence_of_element_located((By.ID, "key")))
    field.send_keys(RELAY_KEY)
    field.submit()
    wait.until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, 'article[data-destination="customerio"]')))
    assert browser.get_cookies()[0]["httpOnly"] is True
    assert RELAY_KEY not in browser.page_source

    # traffic flows: the counts and the charts move
    stop, sent = threading.Event(), [0]
    pump = threading.Thread(target=_traffic, args=(relay, stop, sent), daemon=True)
    pump.start()
    try:
        until(lambda: _card_value(browser, "opencdp", "Delivered") not in ("", "0"),
              "delivered counts on the page")
        first = _number(_card_value(browser, "opencdp", "Delivered"))
        until(lambda: _number(_card_value(browser, "opencdp", "Delivered")) > first,
              "the delivered count to grow")
        points = until(lambda: browser.execute_script(_POINTS_JS, "opencdp"),
                       "a delivered/s line in the chart")
        until(lambda: browser.execute_script(_POINTS_JS, "opencdp") != points,
              "the chart to move")

        # Customer.io fails: its copies dead-letter, and the table shows them
        sandbox.set_faults({"customerio": {"error_rate": 1.0}})
        with httpx.Client(base_url=str(relay.urls["gateway"]), trust_env=False, timeout=10.0,
                          headers={"Authorization": RELAY_KEY}) as http:
            assert http.post("/v1/persons/identify", json={
                "identifier": "dead-person", "properties": {"plan": "pro",
                                                            "password": SECRET}}
                             ).status_code == 202
        client = relay.relay.client
        assert client is not None
        until(lambda: any(d.message.identifier == "dead-person"
                          for d in client.dead_letters("customerio")), "a dead letter")
    finally:
        stop.set()
        pump.join(10)
    sandbox.clear_faults()
    until(lambda: browser.find_elements(By.XPATH, '//td[text()="dead-person"]'),
          "the dead letter in the table")
    assert _card_value(browser, "customerio", "Dead letters") not in ("", "0")

    screenshot(browser, "dashboard-relay")

    # its payload, scrubbed
    until(lambda: browser.execute_script(
        "const td = [...document.querySelectorAll('#dead-table td')]"
        ".find((c) => c.textContent === 'dead-person');"
        "if (!td) return false; td.parentElement.querySelector('button').focus(); return true;"),
        "the dead letter's View button")
    browser.switch_to.active_element.send_keys(Keys.ENTER)  # by keyboard
    body = wait.until(ec.visibility_of_element_located((By.ID, "payload-body")))
    until(lambda: "dead-person" in body.text, "the payload")
    assert SECRET not in body.text and "<redacted>" in body.text

    screenshot(browser, "dashboard-relay-payload", top=False)

    # replay the selection from the page: confirm, and the sandbox stores it
    Select(browser.find_element(By.ID, "f-destination")).select_by_value("customerio")
    browser.find_element(By.ID, "replay").click()
    dialog = wait.until(ec.visibility_of_element_located((By.ID, "confirm")))
    assert "Replay" in dialog.text and "customerio" in dialog.text
    browser.find_element(By.ID, "confirm-ok").click()
    until(lambda: "Replayed" in browser.find_element(By.ID, "action-status").text,
          "the replay to be reported")
    until(lambda: sandbox.person("customerio", "dead-person") is not None,
          "the sandbox to store the replayed person")
    assert sandbox.person("customerio", "dead-person")["attributes"]["plan"] == "pro"

    migration = browser.find_element(By.ID, "migration").text
    assert "Phase" in migration and "Ready for phase 3" in migration
    assert console_errors(browser) == []


def test_the_page_is_small_and_self_contained(relay: RelayServer) -> None:
    with _http(relay) as http:
        _login(http)
        page = http.get("/dashboard/", headers={"accept-encoding": "gzip"})
        total = len(page.content)
        for name in ("app.css", "common.js", "app.js"):
            asset = http.get(f"/dashboard/static/{name}", headers={"accept-encoding": "gzip"})
            assert asset.status_code == 200
            total += int(asset.headers["content-length"])
            text = asset.text.replace("http://www.w3.org/2000/svg", "")  # a name, not a fetch
            assert "http://" not in text and "https://" not in text
        assert total < 300_000
        assert "default-src 'none'" in page.headers["content-security-policy"]
