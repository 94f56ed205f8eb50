"""Customer.io Track API v1: every endpoint, auth, limits, de-duplication, rate limit."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from .conftest import APP_KEY, SITE, TRACK_KEY, ULID_A, ULID_B, Stilled


def _errors(r: httpx.Response) -> list[str]:
    errors: list[str] = r.json()["meta"]["errors"]
    return errors


def test_identify_creates_and_updates(sandbox: Any, track: httpx.Client) -> None:
    r = track.put("/api/v1/customers/42", json={"email": "ada@example.com", "plan": "pro",
                                                "created_at": 1_700_000_000})
    assert (r.status_code, r.json()) == (200, {})
    track.put("/api/v1/customers/42", json={"plan": "team", "nested": {"a": [1, 2]}})
    person = sandbox.person("customerio", "42")
    assert person["attributes"] == {"email": "ada@example.com", "plan": "team",
                                    "created_at": 1_700_000_000, "nested": {"a": [1, 2]}}
    assert sandbox.person("customerio", "ADA@example.com")["id"] == "42"
    assert sandbox.person("customerio", f"cio_{person['cio_id']}")["id"] == "42"


def test_identify_by_email_and_by_cio_id(sandbox: Any, track: httpx.Client) -> None:
    assert track.put("/api/v1/customers/ada%40example.com", json={"plan": "x"}
                     ).status_code == 200
    person = sandbox.person("customerio", "ada@example.com")
    assert person["email"] == "ada@example.com"
    assert person["id"] is None
    r = track.put(f"/api/v1/customers/cio_{person['cio_id']}", json={"id": "7"})
    assert r.status_code == 200
    assert sandbox.person("customerio", "7")["email"] == "ada@example.com"
    missing = track.put("/api/v1/customers/cio_ffffff", json={"a": 1})
    assert missing.status_code == 200
    assert sandbox.stats()["customerio"]["ignored"] == {"unknown_cio_id": 1}


def test_path_ids_are_decoded_per_segment(sandbox: Any, track: httpx.Client) -> None:
    assert track.put("/api/v1/customers/a%2Fb", json={"k": 1}).status_code == 200
    assert track.post("/api/v1/customers/a%2Fb/events", json={"name": "x"}).status_code == 200
    assert sandbox.person("customerio", "a/b")["events"][0]["name"] == "x"


def test_update_only_never_creates(sandbox: Any, track: httpx.Client) -> None:
    assert track.put("/api/v1/customers/9", json={"_update": True, "a": 1}).status_code == 200
    assert sandbox.person("customerio", "9") is None
    track.put("/api/v1/customers/9", json={"a": 1})
    track.put("/api/v1/customers/9", json={"_update": True, "a": 2})
    assert sandbox.person("customerio", "9")["attributes"] == {"a": 2}
    assert sandbox.stats()["customerio"]["ignored"] == {"update_only_no_person": 1}


@pytest.mark.parametrize(("body", "needle"), [
    ({f"a{i}": i for i in range(301)}, "300"),
    ({"n" * 151: 1}, "150 bytes"),
    ({"v": "é" * 501}, "1000 bytes"),
    ({"v": {"deep": "x" * 1000}}, "1000 bytes"),
    ({"created_at": -1}, "created_at"),
    ({"_timestamp": "yesterday"}, "_timestamp"),
    ({"created_at": 1.5}, "created_at"),
    ({"_update": "yes"}, "_update"),
    ({"email": 5}, "email"),
])
def test_identify_limits(track: httpx.Client, body: dict[str, Any], needle: str) -> None:
    r = track.put("/api/v1/customers/1", json=body)
    assert r.status_code == 400
    assert needle in _errors(r)[0]


def test_id_longer_than_150_bytes_is_refused(track: httpx.Client) -> None:
    r = track.put(f"/api/v1/customers/{'x' * 151}", json={})
    assert r.status_code == 400
    assert "150 bytes" in _errors(r)[0]
    assert track.put(f"/api/v1/customers/{'x' * 150}", json={}).status_code == 200


def test_delete_person(sandbox: Any, track: httpx.Client) -> None:
    track.put("/api/v1/customers/1", json={"email": "a@b.co"})
    assert track.delete("/api/v1/customers/1").status_code == 200
    assert sandbox.person("customerio", "1") is None
    assert sandbox.person("customerio", "a@b.co") is None
    assert track.delete("/api/v1/customers/never").status_code == 200


def test_event_is_stored_and_deduplicated_by_id(sandbox: Any, track: httpx.Client) -> None:
    body = {"name": " purchase ", "id": ULID_A, "timestamp": 1_700_000_000,
            "data": {"price": 23.45}}
    for _ in range(3):
        assert track.post("/api/v1/customers/42/events", json=body).status_code == 200
    track.post("/api/v1/customers/42/events", json={**body, "id": ULID_B.lower()})
    track.post("/api/v1/customers/42/events", json={"name": "page", "type": "page"})
    events = sandbox.person("customerio", "42")["events"]
    assert [(e["name"], e["id"]) for e in events[:2]] == [("purchase", ULID_A),
                                                          ("purchase", ULID_B)]
    assert events[0] == {"name": "purchase", "id": ULID_A, "timestamp": 1_700_000_000,
                         "data": {"price": 23.45}, "type": "event"}
    assert events[2]["type"] == "page"
    stats = sandbox.stats()["customerio"]
    assert (stats["events"], stats["duplicates"]) == (3, 2)


@pytest.mark.parametrize(("body", "needle"), [
    ({"name": "x", "timestamp": 2**63}, "timestamp"),
    ({"name": "x", "timestamp": 1_700_000_000.5}, "timestamp"),
    ({"name": "x", "timestamp": "2024-01-01T00:00:00Z"}, "timestamp"),
    ({"name": "x", "timestamp": -5}, "timestamp"),
    ({"data": {}}, "name"),
    ({"name": "  "}, "name"),
    ({"name": "n" * 101}, "100 bytes"),
    ({"name": "x", "id": "not-a-ulid"}, "ULID"),
    ({"name": "x", "id": "81HZX3Q4T0V5B8K2M7N9P6R1S3"}, "ULID"),
    ({"name": "x", "type": "click"}, "type"),
    ({"name": "x", "data": [1]}, "data"),
    ({"name": "x", "data": {"blob": "x" * 100_001}}, "100000 bytes"),
])
def test_event_rejections(sandbox: Any, track: httpx.Client, body: dict[str, Any],
                          needle: str) -> None:
    r = track.post("/api/v1/customers/1/events", json=body)
    assert r.status_code == 400
    assert needle in _errors(r)[0]
    assert sandbox.stats()["customerio"]["events"] == 0


def test_millisecond_timestamp_is_counted_by_reason_in_strict_mode(
        strict_sandbox: Any, strict_track: httpx.Client) -> None:
    strict_track.post("/api/v1/customers/1/events",
                      json={"name": "x", "timestamp": 1_700_000_000_000})
    assert strict_sandbox.stats()["customerio"]["rejected"] == {"timestamp_milliseconds": 1}


def test_anonymous_events(sandbox: Any, track: httpx.Client) -> None:
    body = {"name": "watched", "anonymous_id": "anon-1", "id": ULID_A, "data": {"v": 1}}
    assert track.post("/api/v1/events", json=body).status_code == 200
    assert track.post("/api/v1/events", json=body).status_code == 200
    assert track.post("/api/v1/events", json={"name": "x", "anonymous_id": 5}
                      ).status_code == 400
    assert track.post("/api/v1/events", json={"name": "x", "type": "screen"}).status_code == 200
    anon = sandbox.anonymous_events()
    assert [(e["name"], e["anonymous_id"]) for e in anon] == [("watched", "anon-1"),
                                                              ("x", None)]
    assert sandbox.stats()["customerio"]["duplicates"] == 1


def test_devices_add_update_delete(sandbox: Any, track: httpx.Client) -> None:
    dev = {"device": {"id": "tok-1", "platform": "ios", "last_used": 1_700_000_000,
                      "attributes": {"app_version": "1.0"}}}
    assert track.put("/api/v1/customers/1/devices", json=dev).status_code == 200
    track.put("/api/v1/customers/1/devices", json={"device": {"id": "tok-2",
                                                              "platform": "android",
                                                              "token": "legacy"}})
    devices = sandbox.person("customerio", "1")["devices"]
    assert devices[0] == {"id": "tok-1", "platform": "ios", "last_used": 1_700_000_000,
                          "attributes": {"app_version": "1.0"}}
    assert devices[1]["attributes"] == {"token": "legacy"}
    assert track.delete("/api/v1/customers/1/devices/tok-1").status_code == 200
    assert [d["id"] for d in sandbox.person("customerio", "1")["devices"]] == ["tok-2"]
    assert track.delete("/api/v1/customers/nobody/devices/x").status_code == 200


@pytest.mark.parametrize(("body", "needle"), [
    ({}, "device"),
    ({"device": {"platform": "ios"}}, "device.id"),
    ({"device": {"id": "t", "platform": "web"}}, "platform"),
    ({"device": {"id": "t"}}, "platform"),
    ({"device": {"id": "t", "platform": "ios", "last_used": "today"}}, "last_used"),
    ({"device": {"id": "t", "platform": "ios", "attributes": "x"}}, "attributes"),
    ({"device": "tok"}, "device"),
])
def test_device_rejections(track: httpx.Client, body: dict[str, Any], needle: str) -> None:
    r = track.put("/api/v1/customers/1/devices", json=body)
    assert r.status_code == 400
    assert needle in _errors(r)[0]


def test_suppress_and_unsuppress(sandbox: Any, track: httpx.Client) -> None:
    track.put("/api/v1/customers/1", json={"a": 1})
    assert track.post("/api/v1/customers/1/suppress", json={}).status_code == 200
    assert sandbox.person("customerio", "1")["suppressed"] is True
    track.put("/api/v1/customers/1", json={"a": 2})
    track.post("/api/v1/customers/1/events", json={"name": "x"})
    person = sandbox.person("customerio", "1")
    assert (person["attributes"], person["events"]) == ({"a": 1}, [])
    assert sandbox.stats()["customerio"]["ignored"] == {"suppressed_identifier": 2}
    assert track.post("/api/v1/customers/1/unsuppress").status_code == 200
    track.put("/api/v1/customers/1", json={"a": 3})
    assert sandbox.person("customerio", "1")["attributes"] == {"a": 3}
    assert track.post("/api/v1/customers/2/suppress").status_code == 200
    assert sandbox.person("customerio", "2")["suppressed"] is True


def test_merge_moves_everything_to_the_primary(sandbox: Any, track: httpx.Client) -> None:
    track.put("/api/v1/customers/1", json={"plan": "pro"})
    track.put("/api/v1/customers/2", json={"plan": "free", "email": "two@example.com"})
    track.post("/api/v1/customers/2/events", json={"name": "seen", "timestamp": 1})
    track.put("/api/v1/customers/2/devices", json={"device": {"id": "t", "platform": "ios"}})
    r = track.post("/api/v1/merge_customers", json={"primary": {"id": "1"},
                                                   "secondary": {"email": "two@example.com"}})
    assert r.status_code == 200
    assert sandbox.person("customerio", "2") is None
    primary = sandbox.person("customerio", "1")
    assert primary["attributes"]["plan"] == "pro"
    assert [e["name"] for e in primary["events"]] == ["seen"]
    assert [d["id"] for d in primary["devices"]] == ["t"]
    assert sandbox.person("customerio", "two@example.com")["id"] == "1"


@pytest.mark.parametrize("body", [
    {"primary": {"id": "1", "email": "a@b.co"}, "secondary": {"id": "2"}},
    {"primary": {"phone": "+14155550100"}, "secondary": {"id": "2"}},
    {"secondary": {"id": "2"}},
    {"primary": "1", "secondary": {"id": "2"}},
])
def test_merge_rejections_use_the_single_error_shape(track: httpx.Client,
                                                     body: dict[str, Any]) -> None:
    r = track.post("/api/v1/merge_customers", json=body)
    assert r.status_code == 400
    assert isinstance(r.json()["meta"]["error"], str)


def test_merge_without_its_primary_is_a_no_op(sandbox: Any, track: httpx.Client) -> None:
    """Spec (person_merge): "Merges `secondary` into `primary`, then deletes `secondary`.
    The operation is not reversible, and `primary` must already exist." Without it there is
    nothing to merge into: 200, and the secondary is untouched."""
    track.put("/api/v1/customers/2", json={})
    r = track.post("/api/v1/merge_customers", json={"primary": {"id": "1"},
                                                   "secondary": {"id": "2"}})
    assert r.status_code == 200
    assert sandbox.person("customerio", "2") is not None
    assert sandbox.stats()["customerio"]["ignored"] == {"merge_primary_missing": 1}
    ok = track.post("/api/v1/merge_customers", json={"primary": {"id": "1"},
                                                    "secondary": {"id": "never"}})
    assert ok.status_code == 200


def test_metrics_push_events_region_segments_unsubscribe(sandbox: Any,
                                                        track: httpx.Client) -> None:
    assert track.post("/api/v1/metrics", json={"delivery_id": "d1", "metric": "opened",
                                               "timestamp": 1_700_000_000}).status_code == 200
    assert track.post("/api/v1/metrics", json={"delivery_id": "d1", "metric": "read"}
                      ).status_code == 400
    assert track.post("/api/v1/metrics", json={"metric": "opened"}).status_code == 400
    assert track.post("/api/v1/push/events", json={"delivery_id": "d2", "event": "opened",
                                                   "device_id": "t"}).status_code == 200
    assert track.post("/api/v1/push/events", json={"delivery_id": "d2", "event": "clicked"}
                      ).status_code == 400
    region = track.get("/api/v1/accounts/region").json()
    assert region["region"] == "us"
    assert region["url"] == sandbox.track_url
    assert track.post("/api/v1/segments/7/add_customers", json={"ids": ["1"]}
                      ).status_code == 200
    assert track.post("/api/v1/segments/7/remove_customers",
                      json={"ids": [str(i) for i in range(1001)]}).status_code == 400
    assert track.post("/api/v1/segments/7/add_customers", json={"ids": "1"}).status_code == 400
    assert track.post("/api/v1/segments/7/rename", json={}).status_code == 404
    with httpx.Client(base_url=sandbox.track_url) as anon:
        assert anon.post("/unsubscribe/d3", json={"unsubscribe": True}).status_code == 200
        assert anon.post("/unsubscribe/d3", json={"unsubscribe": "y"}).status_code == 400
    metrics = [d.get("metric", d.get("event")) for d in
               httpx.get(f"{sandbox.admin_url}/deliveries").json()]
    assert metrics == ["opened", "opened", "unsubscribed"]


def test_unknown_v1_endpoints(track: httpx.Client) -> None:
    assert track.get("/api/v1/customers/1").status_code == 405
    assert track.post("/api/v1/customers/1/attributes", json={}).status_code == 404
    assert track.post("/api/v1/nothing", json={}).status_code == 404
    assert track.put("/api/v1/customers/", json={}).status_code == 404


def test_invalid_json(track: httpx.Client) -> None:
    r = track.put("/api/v1/customers/1", content=b"{", headers={"content-type":
                                                                "application/json"})
    assert r.status_code == 400
    assert "JSON" in _errors(r)[0]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(("auth", "hint"), [
    (None, "missing"),
    (_basic(SITE, "wrong"), "wrong Track API key"),
    (_basic("other-site", TRACK_KEY), "unknown site id"),
    (f"Bearer {APP_KEY}", "App API key was sent to the Track API"),
    (_basic(SITE, APP_KEY), "App API key was sent as the Track API key"),
    (f"Bearer {TRACK_KEY}", "HTTP Basic"),
    ("Basic %%%", "malformed"),
    (TRACK_KEY, "HTTP Basic"),
])
def test_auth_failures_are_401_with_a_hint(sandbox: Any, auth: str | None, hint: str) -> None:
    headers = {"Authorization": auth} if auth else {}
    with httpx.Client(base_url=sandbox.track_url, headers=headers) as c:
        r1 = c.put("/api/v1/customers/1", json={})
        r2 = c.post("/api/v2/entity", json={})
    assert r1.status_code == r2.status_code == 401
    assert hint in r1.json()["meta"]["error"]
    assert hint in r2.json()["errors"][0]["message"]
    for secret in (TRACK_KEY, APP_KEY):
        assert secret not in r1.text
        assert secret not in r2.text
    assert sandbox.person("customerio", "1") is None


def test_app_key_mixup_is_counted_apart(sandbox: Any) -> None:
    with httpx.Client(base_url=sandbox.track_url,
                      headers={"Authorization": f"Bearer {APP_KEY}"}) as c:
        c.put("/api/v1/customers/1", json={})
    assert sandbox.stats()["customerio"]["rejected"] == {"wrong_key_type": 1}


def _burst(track: httpx.Client, n: int) -> tuple[list[int], httpx.Response, httpx.Response]:
    statuses = [track.put(f"/api/v1/customers/{i}", json={}).status_code for i in range(n)]
    v1 = track.put("/api/v1/customers/x", json={})
    v2 = track.post("/api/v2/entity", json={"type": "person", "identifiers": {"id": "y"},
                                            "action": "identify"})
    return statuses, v1, v2


def test_rate_limit_is_a_sliding_window_with_retry_after(stilled: Stilled) -> None:
    sandbox = stilled.sandbox
    sandbox.set_faults({"customerio": {"rate_limit_rps": 5}})
    with stilled.client("track") as track:
        statuses, v1, v2 = _burst(track, 5)
    assert statuses == [200] * 5
    assert (v1.status_code, v2.status_code) == (429, 429)
    assert int(v1.headers["retry-after"]) >= 1
    assert "rate limit" in _errors(v1)[0]
    assert v2.json()["errors"][0]["reason"] == "rate_limited"
    assert sandbox.stats()["customerio"]["rejected"]["rate_limited"] == 2
    assert sandbox.person("customerio", "x") is None


def test_rate_limit_window_slides(stilled: Stilled) -> None:
    stilled.sandbox.set_faults({"customerio": {"rate_limit_rps": 2}})
    with stilled.client("track") as track:
        track.put("/api/v1/customers/1", json={})
        stilled.clock.advance(0.5)
        track.put("/api/v1/customers/1", json={})
        assert track.put("/api/v1/customers/1", json={}).status_code == 429
        stilled.clock.advance(0.5)  # the first request leaves the window
        assert track.put("/api/v1/customers/1", json={}).status_code == 200
        assert track.put("/api/v1/customers/1", json={}).status_code == 429
