"""The App API reads the sandbox emulates: search, batch attributes, the activity log.

Seeded through the Track API over loopback, read back through the App API, each answer
validated against Customer.io's App API OpenAPI documents (../shared)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from opencdp.sandbox import Sandbox
from opencdp.sandbox.app_people import ACTIVITY_LIMIT, BATCH_IDS, SEARCH_LIMIT
from support.app_spec import APP_SPEC, assert_valid, operation
from support.shared import require

from .conftest import APP_KEY, SITE, TRACK_KEY, Stilled

EVERYONE = {"attribute": {"field": "cio_id", "operator": "exists"}}


def seed(track: httpx.Client, n: int, events: int = 1) -> None:
    for i in range(n):
        uid = f"p{i:03d}"
        r = track.put(f"/api/v1/customers/{uid}", json={
            "email": f"{uid}@example.com", "plan": "pro" if i % 2 else "free", "score": i,
            "vip": i % 3 == 0, "prefs": {"a": [1, 2]}})
        assert r.status_code == 200, r.text
        r = track.put(f"/api/v1/customers/{uid}/devices", json={"device": {
            "id": f"tok-{i}", "platform": "ios", "last_used": 1_700_000_000,
            "attributes": {"app_version": "1.2", "push_enabled": True}}})
        assert r.status_code == 200, r.text
        for k in range(events):
            r = track.post(f"/api/v1/customers/{uid}/events", json={
                "name": "bought", "data": {"price": i + k}, "timestamp": 1_700_000_000 + i})
            assert r.status_code == 200, r.text


def search(app: httpx.Client, body: Any, **params: Any) -> httpx.Response:
    return app.post("/v1/customers", json=body, params=params)


def test_limits_are_the_spec_s() -> None:
    """The page-size defaults and maxima are the documents', not our guesses."""
    require(APP_SPEC / "customer-io-customers-api-openapi.yml")
    limits = {p["name"]: p["schema"] for p in operation("/v1/customers", "post")["parameters"]}
    assert (limits["limit"]["default"], limits["limit"]["maximum"]) == SEARCH_LIMIT
    act = {p["name"]: p["schema"] for p in operation("/v1/activities", "get")["parameters"]}
    assert (act["limit"]["default"], act["limit"]["maximum"]) == ACTIVITY_LIMIT
    ids = operation("/v1/customers/attributes", "post")["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["ids"]
    assert (ids["minItems"], ids["maxItems"]) == (1, BATCH_IDS)


def test_search_pages_every_person_once(track: httpx.Client, app_api: httpx.Client) -> None:
    seed(track, 23, events=0)
    seen: list[str] = []
    start = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 10} if start is None else {"limit": 10,
                                                                       "start": start}
        r = search(app_api, {"filter": EVERYONE}, **params)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert_valid("/v1/customers", "post", answer)
        assert answer["ids"] == [i["id"] for i in answer["identifiers"]]
        seen += answer["ids"]
        start = answer["next"]
        if not start:
            break
    assert seen == [f"p{i:03d}" for i in range(23)]
    r = search(app_api, {"filter": EVERYONE})
    assert len(r.json()["ids"]) == 23 and r.json()["next"] == ""  # default 50


@pytest.mark.parametrize(("params", "body"), [
    ({"limit": 1001}, {"filter": EVERYONE}),
    ({"limit": 0}, {"filter": EVERYONE}),
    ({"limit": "ten"}, {"filter": EVERYONE}),
    ({"start": "not-a-token"}, {"filter": EVERYONE}),
    ({}, {}),
    ({}, {"filter": {}}),
    ({}, {"filter": {"and": []}}),
    ({}, {"filter": {"segment": {"id": "7"}}}),
    ({}, {"filter": {"attribute": {"field": "plan", "operator": "gt", "value": "x"}}}),
    ({}, {"filter": {"attribute": {"field": "plan", "operator": "eq"}}}),
    ({}, {"filter": {"and": [EVERYONE], "or": [EVERYONE]}}),
    ({}, {"filter": {"not": {"not": {"not": {"not": EVERYONE}}}}}),
])
def test_search_refuses_bad_input(app_api: httpx.Client, params: dict[str, Any],
                                  body: Any) -> None:
    r = search(app_api, body, **params)
    assert r.status_code == 400, r.text
    assert r.json()["meta"]["error"]


def test_filters(track: httpx.Client, app_api: httpx.Client) -> None:
    seed(track, 12, events=0)
    r = track.post("/api/v1/segments/7/add_customers", json={"ids": ["p001", "p004", "p009"]})
    assert r.status_code == 200, r.text

    def ids(flt: Any) -> list[str]:
        r = search(app_api, {"filter": flt}, limit=1000)
        assert r.status_code == 200, r.text
        assert_valid("/v1/customers", "post", r.json())
        return list(r.json()["ids"])

    pro = {"attribute": {"field": "plan", "operator": "eq", "value": "pro"}}
    seg = {"segment": {"id": 7}}
    assert ids(seg) == ["p001", "p004", "p009"]
    assert ids(pro) == [f"p{i:03d}" for i in range(1, 12, 2)]
    assert ids({"and": [seg, pro]}) == ["p001", "p009"]
    assert ids({"and": [seg, {"not": pro}]}) == ["p004"]
    assert ids({"or": [seg, {"attribute": {"field": "score", "operator": "eq",
                                           "value": "10"}}]}) == ["p001", "p004", "p009",
                                                                  "p010"]
    assert ids({"attribute": {"field": "nothing", "operator": "exists"}}) == []
    assert ids({"attribute": {"field": "email", "operator": "eq",
                              "value": "P003@EXAMPLE.COM"}}) == ["p003"]


def test_batch_attributes(track: httpx.Client, app_api: httpx.Client) -> None:
    seed(track, 3, events=0)
    r = app_api.post("/v1/customers/attributes", json={"ids": ["p000", "nobody", "p002"]})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert_valid("/v1/customers/attributes", "post", answer)
    people = [c["customer"] for c in answer["customers"]]
    assert [p["id"] for p in people] == ["p000", "p002"]  # the unknown id is omitted
    first = people[0]
    assert first["attributes"] == {"email": "p000@example.com", "plan": "free", "score": "0",
                                   "vip": "true", "prefs": '{"a":[1,2]}',
                                   "cio_id": first["identifiers"]["cio_id"], "id": "p000"}
    assert first["devices"] == [{"id": "tok-0", "platform": "ios", "last_used": 1_700_000_000,
                                 "attributes": {"app_version": "1.2",
                                                "push_enabled": "true"}}]
    cio = first["identifiers"]["cio_id"]
    for value in (cio, f"cio_{cio}"):
        r = app_api.post("/v1/customers/attributes", params={"id_type": "cio_id"},
                         json={"ids": [value]})
        assert [c["customer"]["id"] for c in r.json()["customers"]] == ["p000"]
    r = app_api.post("/v1/customers/attributes", params={"id_type": "email"},
                     json={"ids": ["p001@example.com"]})
    assert [c["customer"]["id"] for c in r.json()["customers"]] == ["p001"]


@pytest.mark.parametrize(("params", "body"), [
    ({}, {"ids": []}),
    ({}, {"ids": [f"p{i}" for i in range(101)]}),
    ({}, {"ids": [1]}),
    ({}, {"ids": "p000"}),
    ({}, {}),
    ({"id_type": "uuid"}, {"ids": ["p000"]}),
])
def test_batch_attributes_refuses_bad_input(app_api: httpx.Client, params: dict[str, Any],
                                            body: Any) -> None:
    r = app_api.post("/v1/customers/attributes", params=params, json=body)
    assert r.status_code == 400, r.text


def test_activity_log_pages_newest_first(track: httpx.Client, app_api: httpx.Client) -> None:
    seed(track, 14, events=2)
    r = track.post("/api/v1/customers/p000/events", json={"name": "viewed", "type": "screen",
                                                          "timestamp": 1_600_000_000})
    assert r.status_code == 200
    got: list[dict[str, Any]] = []
    start = None
    for _ in range(20):
        params: dict[str, Any] = {"type": "event"} if start is None else {"type": "event",
                                                                          "start": start}
        r = app_api.get("/v1/activities", params=params)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert_valid("/v1/activities", "get", answer)
        assert len(answer["activities"]) <= 10  # the default page
        got += answer["activities"]
        start = answer["next"]
        if not start:
            break
    assert len(got) == 28 and len({a["id"] for a in got}) == 28
    assert [a["timestamp"] for a in got] == sorted((a["timestamp"] for a in got), reverse=True)
    stored = {e["id"] for p in (f"p{i:03d}" for i in range(14))
              for e in track.get(f"/_sandbox/people/customerio/{p}").json()["events"]
              if e["type"] == "event"}
    assert {a["id"] for a in got} == stored
    one = got[-1]
    assert one["type"] == "event" and one["name"] == "bought" and one["customer_id"] == "p000"
    assert one["customer_identifiers"]["email"] == "p000@example.com"
    assert one["data"] == {"price": 0} or one["data"] == {"price": 1}
    r = app_api.get("/v1/activities", params={"type": "screen", "limit": 100})
    assert [a["name"] for a in r.json()["activities"]] == ["viewed"]
    r = app_api.get("/v1/activities", params={"customer_id": "p003", "limit": 100})
    assert {a["customer_id"] for a in r.json()["activities"]} == {"p003"}
    assert len(r.json()["activities"]) == 2
    for bad in ({"limit": 101}, {"limit": 0}, {"start": "x"}, {"deleted": "maybe"},
                {"customer_id": "p001", "id_type": "uuid"}):
        assert app_api.get("/v1/activities", params=bad).status_code == 400, bad


def test_by_email(track: httpx.Client, app_api: httpx.Client) -> None:
    seed(track, 2, events=0)
    r = app_api.get("/v1/customers", params={"email": "P001@example.com"})
    assert r.status_code == 200
    assert [p["id"] for p in r.json()["results"]] == ["p001"]
    assert app_api.get("/v1/customers").status_code == 400


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong-key-0123456789"},
    {"Authorization": f"Bearer {TRACK_KEY}"}, {"Authorization": APP_KEY},
])
def test_401_without_the_app_key(sandbox: Sandbox, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=sandbox.app_url, headers=headers, timeout=10) as c:
        for r in (c.post("/v1/customers", json={"filter": EVERYONE}),
                  c.post("/v1/customers/attributes", json={"ids": ["x"]}),
                  c.get("/v1/activities")):
            assert r.status_code == 401
            assert "wrong-key-0123456789" not in r.text and TRACK_KEY not in r.text
    with httpx.Client(base_url=sandbox.app_url, auth=(SITE, TRACK_KEY), timeout=10) as c:
        assert c.get("/v1/activities").status_code == 401


def test_wrong_method(app_api: httpx.Client) -> None:
    r = app_api.get("/v1/customers/attributes")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert app_api.delete("/v1/customers").status_code == 405


def test_strict_mode_answers_429_above_10_per_second(stilled_strict: Stilled) -> None:
    strict_sandbox = stilled_strict.sandbox
    with stilled_strict.client("app") as c:
        statuses = [c.get("/v1/activities").status_code for _ in range(25)]
        limited = next(r for r in (c.get("/v1/activities") for _ in range(5))
                       if r.status_code == 429)
    assert statuses.count(200) == 10 and statuses.count(429) == 15
    assert "retry-after" not in limited.headers  # none is documented
    assert limited.json() == {"meta": {"error": "Your request is over the 10-per-second "
                                                "limit."}}
    log = httpx.get(f"{strict_sandbox.admin_url}/app_reads", timeout=10).json()
    assert log["limit_per_second"] == 10
    assert [e["status"] for e in log["requests"]][:25] == statuses
    stilled_strict.clock.advance(1.0)  # the sliding second empties
    with stilled_strict.client("app") as c:
        assert c.get("/v1/activities").status_code == 200


def test_not_limited_outside_strict_mode(app_api: httpx.Client) -> None:
    assert {app_api.get("/v1/activities").status_code for _ in range(30)} == {200}


def test_other_app_routes_are_untouched(app_api: httpx.Client) -> None:
    """The transactional sends keep their router; unknown /v1 paths stay 404."""
    assert app_api.get("/v1/customers/p1/segments").status_code == 404
    assert app_api.post("/v1/send/email", json={}).status_code == 400
