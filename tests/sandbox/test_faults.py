"""Every fault kind, per service: what the client sees, what was stored, what was counted."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from opencdp.sandbox import Sandbox
from support.waiting import wait_for

from .conftest import CDP_KEY, Stilled

IDENTIFY = {"identifier": "u1", "properties": {"plan": "pro"}}


def _identify(gateway: httpx.Client, ident: str = "u1", **kw: Any) -> httpx.Response:
    return gateway.post("/v1/persons/identify", json={"identifier": ident}, **kw)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 521, 523])
def test_injected_errors_happen_before_processing(sandbox: Any, gateway: httpx.Client,
                                                  track: httpx.Client, status: int) -> None:
    sandbox.set_faults({"opencdp": {"error_rate": 1.0, "statuses": [status]},
                        "customerio": {"error_rate": 1.0, "statuses": [status]}})
    r1 = _identify(gateway)
    r2 = track.put("/api/v1/customers/u1", json={"a": 1})
    assert (r1.status_code, r2.status_code) == (status, status)
    if status in (521, 523):
        assert "cloudflare" in r1.text
        assert r1.headers["content-type"].startswith("text/html")
    else:
        assert "message" in r1.json()
    assert sandbox.person("opencdp", "u1") is None
    assert sandbox.person("customerio", "u1") is None
    stats = sandbox.stats()
    for service in ("opencdp", "customerio"):
        assert stats[service]["faults"] == {f"error_{status}": 1}
        assert stats[service]["5xx"] == 1
        assert stats[service]["requests"] == 1


def test_error_rate_picks_among_statuses_and_is_reproducible(sandbox: Any,
                                                             gateway: httpx.Client) -> None:
    def run() -> list[int]:
        sandbox.set_faults({"opencdp": {"error_rate": 0.5, "statuses": [502, 504],
                                        "seed": 7}})
        return [_identify(gateway).status_code for _ in range(40)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 502, 504}
    stored_ok = sandbox.stats()["opencdp"]["accepted"]
    assert stored_ok == 2 * first.count(200)


def test_rate_limit_storm(sandbox: Any, gateway: httpx.Client, app_api: httpx.Client) -> None:
    sandbox.set_faults({"opencdp": {"rate_limit_storm": 1.0, "retry_after": 7},
                        "customerio": {"rate_limit_storm": 1.0}})
    r = _identify(gateway)
    assert (r.status_code, r.headers["retry-after"]) == (429, "7")
    s = app_api.post("/v1/send/sms", json={})
    assert (s.status_code, s.headers["retry-after"]) == (429, "1")
    assert sandbox.person("opencdp", "u1") is None
    assert sandbox.stats()["opencdp"]["faults"] == {"rate_limit_storm": 1}
    assert sandbox.stats()["customerio"]["responses"] == {"429": 1}


def test_latency_is_added_and_does_not_block_other_requests(sandbox: Any) -> None:
    sandbox.set_faults({"opencdp": {"latency_ms": 300}})
    results: list[float] = []

    def one() -> None:
        with httpx.Client(base_url=sandbox.opencdp_url, headers={"Authorization": CDP_KEY},
                          timeout=10) as c:
            t0 = time.monotonic()
            assert _identify(c).status_code == 200
            results.append(time.monotonic() - t0)

    t0 = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    total = time.monotonic() - t0
    assert len(results) == 8
    assert min(results) >= 0.3
    assert total < 8 * 0.3  # concurrent, not serialised behind one sleeping request
    assert sandbox.stats()["opencdp"]["faults"] == {"latency": 8}


def test_jitter_stays_in_range(sandbox: Any, gateway: httpx.Client) -> None:
    sandbox.set_faults({"opencdp": {"latency_ms": 50, "jitter_ms": 100, "seed": 3}})
    for _ in range(3):
        t0 = time.monotonic()
        assert _identify(gateway).status_code == 200
        assert time.monotonic() - t0 >= 0.05


def test_other_service_is_unaffected(sandbox: Any, gateway: httpx.Client,
                                     track: httpx.Client) -> None:
    sandbox.set_faults({"customerio": {"down": True}})
    assert track.put("/api/v1/customers/1", json={}).status_code == 503
    assert _identify(gateway).status_code == 200
    assert sandbox.stats()["opencdp"]["faults"] == {}
    assert sandbox.stats()["customerio"]["faults"] == {"down": 1}


def test_connection_reset_before_processing(sandbox: Any, gateway: httpx.Client) -> None:
    sandbox.set_faults({"opencdp": {"reset_rate": 1.0}})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        _identify(gateway)
    assert sandbox.person("opencdp", "u1") is None
    assert sandbox.stats()["opencdp"]["faults"] == {"reset": 1}
    sandbox.set_faults({"opencdp": None})
    assert _identify(gateway).status_code == 200  # the client's pool recovers


def test_connection_reset_after_store_is_recorded(sandbox: Any, track: httpx.Client) -> None:
    sandbox.set_faults({"customerio": {"reset_after_store_rate": 1.0}})
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        track.put("/api/v1/customers/u1", json={"a": 1})
    assert sandbox.person("customerio", "u1")["attributes"] == {"a": 1}
    stats = sandbox.stats()["customerio"]
    assert stats["faults"] == {"reset_after_store": 1}
    assert stats["responses"] == {}


def test_hang_stores_then_never_answers(sandbox: Any) -> None:
    sandbox.set_faults({"opencdp": {"hang_rate": 1.0}})
    with httpx.Client(base_url=sandbox.opencdp_url, headers={"Authorization": CDP_KEY}) as c, \
            pytest.raises(httpx.ReadTimeout):
        _identify(c, timeout=httpx.Timeout(5, read=0.3))
    assert sandbox.person("opencdp", "u1") is not None
    stats = sandbox.stats()["opencdp"]
    assert stats["faults"] == {"hang_after_store": 1}
    assert stats["accepted"] == 1
    assert stats["responses"] == {}


def test_hanging_requests_do_not_hold_up_stop() -> None:
    sb = Sandbox(port=0, faults={"customerio": {"hang_rate": 1.0}}).start()
    errors: list[BaseException] = []

    def hang() -> None:
        try:
            httpx.put(f"{sb.track_url}/api/v1/customers/1", json={},
                      auth=("sandbox-site", "sandbox-track-key"), timeout=30)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=hang)
    thread.start()
    assert wait_for(lambda: sb.stats()["customerio"]["faults"].get("hang_after_store") == 1, 5)
    t0 = time.monotonic()
    sb.stop()
    thread.join(10)
    assert time.monotonic() - t0 < 5
    assert len(errors) == 1


def test_manual_down_and_down_status(sandbox: Any, gateway: httpx.Client) -> None:
    sandbox.set_faults({"opencdp": {"down": True, "down_status": 521}})
    assert _identify(gateway).status_code == 521
    sandbox.set_faults({"opencdp": {"down": False}})
    assert _identify(gateway).status_code == 200


def test_scheduled_outage_relative(stilled: Stilled) -> None:
    start = stilled.clock.time()
    stilled.sandbox.set_faults({"opencdp": {"down_from": 0.3, "down_for": 0.4}})
    with stilled.client("gateway") as gateway:
        assert _identify(gateway).status_code == 200
        stilled.clock.advance(0.35)
        assert _identify(gateway).status_code == 503
        stilled.clock.advance(0.4)
        assert _identify(gateway).status_code == 200
    outage = stilled.sandbox.faults()["opencdp"]["outages"][0]
    assert (outage["start"], outage["end"]) == pytest.approx((start + 0.3, start + 0.7))


def test_scheduled_outage_absolute(sandbox: Any, gateway: httpx.Client) -> None:
    now = time.time()
    sandbox.set_faults({"opencdp": {"outages": [{"start": now - 1, "end": now + 60}]}})
    assert _identify(gateway).status_code == 503
    sandbox.set_faults({"opencdp": {"outages": [{"start": now + 60, "end": now + 120}]}})
    assert _identify(gateway).status_code == 200


@pytest.mark.parametrize("settings", [
    {"error_rate": -0.1}, {"error_rate": "x"}, {"statuses": []}, {"statuses": [404]},
    {"latency_ms": -1}, {"down": "yes"}, {"down_status": 200}, {"outages": {}},
    {"outages": [{"down_from": 5}]}, {"outages": [{"start": 10, "end": 5}]},
    {"rate_limit_rps": -1}, {"seed": 1.5}, {"bogus": 1}, [1],
])
def test_bad_fault_settings_are_400(sandbox: Any, settings: Any) -> None:
    r = httpx.post(f"{sandbox.admin_url}/faults", json={"opencdp": settings})
    assert r.status_code == 400
    assert r.json()["reason"] == "invalid_faults"
    assert sandbox.faults()["opencdp"]["error_rate"] == 0.0


def test_faults_merge_clear_and_reset_to_start_up() -> None:
    start = {"customerio": {"error_rate": 1.0, "statuses": [500]}}
    with Sandbox(port=0, faults=start) as sb:
        assert sb.faults()["customerio"]["error_rate"] == 1.0
        r = httpx.put(f"{sb.track_url}/api/v1/customers/1", json={},
                      auth=("sandbox-site", "sandbox-track-key"))
        assert r.status_code == 500
        sb.set_faults({"customerio": {"latency_ms": 5}})
        merged = sb.faults()["customerio"]
        assert (merged["error_rate"], merged["latency_ms"]) == (1.0, 5)
        sb.clear_faults()
        assert sb.faults()["customerio"]["error_rate"] == 0.0
        sb.reset()
        assert sb.faults()["customerio"]["error_rate"] == 1.0


def test_admin_api_is_never_faulted(sandbox: Any) -> None:
    sandbox.set_faults({"opencdp": {"down": True}, "customerio": {"reset_rate": 1.0}})
    assert sandbox.stats()["customerio"]["requests"] == 0


def test_outage_shorthand_replaces_and_outages_combine(sandbox: Any) -> None:
    sandbox.set_faults({"opencdp": {"down_from": 100, "down_for": 10}})
    sandbox.set_faults({"opencdp": {"down_from": 200, "down_for": 10}})
    assert len(sandbox.faults()["opencdp"]["outages"]) == 1
    sandbox.set_faults({"opencdp": {"outages": [{"start": 1, "end": 2}], "down_from": 5,
                                    "down_for": 5}})
    assert len(sandbox.faults()["opencdp"]["outages"]) == 2
