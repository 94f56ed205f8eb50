"""Customer.io Track API v2: batch (200/207/400/413), entity, every action and type."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import ULID_A, ULID_B


def person(action: str, ident: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "person", "identifiers": {"id": "42"} if ident is None else ident,
            "action": action, **extra}


def batch(track: httpx.Client, *ops: Any) -> httpx.Response:
    return track.post("/api/v2/batch", json={"batch": list(ops)})


def test_mixed_batch_is_applied(sandbox: Any, track: httpx.Client) -> None:
    r = batch(track,
              person("identify", attributes={"plan": "pro"}),
              person("event", name="purchase", id=ULID_A, timestamp=1_700_000_000,
                     attributes={"price": 9.5}),
              person("page", name="/pricing"),
              person("screen", name="Home"),
              person("add_device", device={"token": "abc", "platform": "ios",
                                           "last_used": 1_700_000_000}),
              {"type": "person", "action": "merge", "primary": {"id": "42"},
               "secondary": {"email": "a@b.co"}})
    assert (r.status_code, r.json()) == (200, {})
    p = sandbox.person("customerio", "42")
    assert p["attributes"] == {"plan": "pro"}
    assert [(e["name"], e["type"]) for e in p["events"]] == [
        ("purchase", "event"), ("/pricing", "page"), ("Home", "screen")]
    assert p["events"][0]["data"] == {"price": 9.5}
    assert p["devices"] == [{"id": "abc", "platform": "ios", "last_used": 1_700_000_000}]
    assert sandbox.stats()["customerio"]["accepted"] == 6


def test_partial_batch_is_207_and_applies_the_rest(sandbox: Any, track: httpx.Client) -> None:
    r = batch(track,
              person("identify", attributes={"a": 1}),
              person("event", name="x", timestamp="yesterday"),
              person("teleport"),
              person("identify", {"id": "43"}),
              "not an object",
              {"type": "robot", "action": "identify"})
    assert r.status_code == 207
    errors = r.json()["errors"]
    assert [e["batch_index"] for e in errors] == [1, 2, 4, 5]
    assert errors[0] == {"batch_index": 1, "reason": "invalid_timestamp",
                         "field": "timestamp",
                         "message": "timestamp must be an integer Unix timestamp in seconds"}
    assert errors[1]["field"] == "action"
    assert errors[3]["field"] == "type"
    assert sandbox.person("customerio", "42") is not None
    assert sandbox.person("customerio", "43") is not None
    stats = sandbox.stats()["customerio"]
    assert stats["accepted"] == 2
    assert stats["rejected_total"] == 4


@pytest.mark.parametrize(("body", "status", "field"), [
    ({}, 400, "batch"),
    ({"batch": {}}, 400, "batch"),
    ({"batch": []}, 400, "batch"),
    ([1], 400, "body"),
])
def test_whole_batch_rejections(track: httpx.Client, body: Any, status: int,
                                field: str) -> None:
    r = track.post("/api/v2/batch", json=body)
    assert r.status_code == status
    assert r.json()["errors"][0]["field"] == field


def test_invalid_json_batch(track: httpx.Client) -> None:
    r = track.post("/api/v2/batch", content=b"[", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["reason"] == "invalid_json"


def test_size_limits(sandbox: Any, track: httpx.Client) -> None:
    big_value = "x" * 900
    op = person("identify", attributes={f"a{i}": big_value for i in range(40)})  # ~37 KB
    r = batch(track, op, person("identify", {"id": "ok"}))
    assert r.status_code == 207
    assert r.json()["errors"][0]["reason"] == "too_large"
    assert sandbox.person("customerio", "ok") is not None
    entity = track.post("/api/v2/entity", json=op)
    assert entity.status_code == 413
    ops = [person("identify", {"id": str(i)}, attributes={"v": "y" * 900}) for i in range(560)]
    too_big = batch(track, *ops)
    assert too_big.status_code == 413
    assert "500 KB" in too_big.json()["errors"][0]["message"]
    assert sandbox.person("customerio", "1") is None


def test_entity_endpoint(sandbox: Any, track: httpx.Client) -> None:
    r = track.post("/api/v2/entity", json=person("identify", {"email": "a@b.co"},
                                                 attributes={"x": 1}))
    assert (r.status_code, r.json()) == (200, {})
    assert sandbox.person("customerio", "a@b.co")["attributes"] == {"x": 1}
    bad = track.post("/api/v2/entity", json=person("event", name=""))
    assert bad.status_code == 400
    assert bad.json() == {"errors": [{"reason": "invalid_value", "field": "name",
                                      "message": "name must not be empty"}]}
    assert track.get("/api/v2/entity").status_code == 405
    assert track.post("/api/v2/other", json={}).status_code == 404


@pytest.mark.parametrize(("ident", "field"), [
    ({"id": "1", "email": "a@b.co"}, "identifiers"),
    ({}, "identifiers"),
    ({"anonymous_id": "anon"}, "identifiers.anonymous_id"),
    ({"phone": "4155550100"}, "identifiers.phone"),
    ({"email": "not-an-email"}, "identifiers.email"),
    ({"id": ""}, "identifiers.id"),
    ({"id": True}, "identifiers.id"),
    ({"id": "x" * 151}, "identifiers.id"),
    ({"cio_id": 5}, "identifiers.cio_id"),
])
def test_person_identifier_rules(track: httpx.Client, ident: dict[str, Any],
                                 field: str) -> None:
    r = track.post("/api/v2/entity", json=person("identify", ident))
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == field


def test_anonymous_v2_event_points_to_v1(track: httpx.Client) -> None:
    r = track.post("/api/v2/entity", json=person("event", {"anonymous_id": "a"}, name="x"))
    assert "/api/v1/events" in r.json()["errors"][0]["message"]


def test_identifier_kinds(sandbox: Any, track: httpx.Client) -> None:
    r = batch(track, person("identify", {"phone": "+14155552671"}, attributes={"k": 1}),
              person("identify", {"id": 77}, attributes={"k": 2}))
    assert r.status_code == 200
    assert sandbox.person("customerio", "+14155552671")["attributes"] == {"k": 1}
    assert sandbox.person("customerio", "77")["attributes"] == {"k": 2}
    cio = sandbox.person("customerio", "77")["cio_id"]
    batch(track, person("identify", {"cio_id": cio}, attributes={"k": 3}))
    assert sandbox.person("customerio", "77")["attributes"] == {"k": 3}


def test_event_dedup_and_rules(sandbox: Any, track: httpx.Client) -> None:
    ev = person("event", name="purchase", id=ULID_A)
    batch(track, ev, ev, person("event", name="purchase", id=ULID_B))
    batch(track, ev)
    stats = sandbox.stats()["customerio"]
    assert (stats["events"], stats["duplicates"]) == (2, 2)
    r = batch(track, person("event"), person("event", name="x", id="bad"),
              person("event", name="x", attributes=[1]), person("event", name="n" * 101),
              person("event", name="x", timestamp="now"))
    assert [e["field"] for e in r.json()["errors"]] == ["name", "id", "attributes", "name",
                                                        "timestamp"]


def test_identify_rules(sandbox: Any, track: httpx.Client) -> None:
    r = batch(track, person("identify", {"id": "new"}, attributes={"_update": True}),
              person("identify", attributes={"created_at": "2024-01-01"}),
              person("identify", timestamp=-1),
              person("identify", attributes="x"),
              person("identify", cio_relationships={}),
              person("identify", {"id": "rel"}, timestamp=1_700_000_000,
                     cio_relationships=[{"identifiers": {"object_type_id": "1",
                                                         "object_id": "acme"}}]))
    assert [e["batch_index"] for e in r.json()["errors"]] == [1, 2, 3, 4]
    assert r.json()["errors"][0]["field"] == "attributes.created_at"
    assert sandbox.person("customerio", "new") is None
    assert sandbox.person("customerio", "rel") is not None


def test_delete_suppress_unsuppress(sandbox: Any, track: httpx.Client) -> None:
    batch(track, person("identify"), person("suppress"))
    assert sandbox.person("customerio", "42")["suppressed"] is True
    assert sandbox.stats()["customerio"]["people"] == 0, "suppress deletes the profile"
    batch(track, person("event", name="x"), person("identify", attributes={"a": 1}))
    assert sandbox.person("customerio", "42")["events"] == []
    batch(track, person("unsuppress"), person("unsuppress", {"id": "ghost"}))
    assert sandbox.person("customerio", "42") is None
    assert sandbox.person("customerio", "ghost") is None
    batch(track, person("identify", attributes={"a": 2}))
    assert sandbox.person("customerio", "42")["attributes"] == {"a": 2}
    batch(track, person("delete"), person("delete", {"id": "ghost"}))
    assert sandbox.person("customerio", "42") is None


def test_devices(sandbox: Any, track: httpx.Client) -> None:
    batch(track, person("add_device", device={"token": "t1", "platform": "android",
                                              "attributes": {"push_enabled": "true"}}),
          person("add_device", device={"token": "t2", "platform": "ios"}),
          person("delete_device", device={"token": "t1"}),
          person("delete_device", {"id": "ghost"}, device={"token": "t1"}))
    assert [d["id"] for d in sandbox.person("customerio", "42")["devices"]] == ["t2"]
    r = batch(track, person("add_device", device={"id": "t", "platform": "ios"}),
              person("add_device", device={"token": "t", "platform": "web"}),
              person("add_device"),
              person("delete_device", device={}),
              person("add_device", device={"token": "t", "platform": "ios",
                                           "last_used": "today"}))
    assert [e["field"] for e in r.json()["errors"]] == [
        "device.token", "device.platform", "device", "device.token", "device.last_used"]


def test_relationships(sandbox: Any, track: httpx.Client) -> None:
    rel = [{"identifiers": {"object_type_id": "1", "object_id": "acme"}}]
    batch(track, person("add_relationships", cio_relationships=rel))
    assert sandbox.person("customerio", "42")["attributes"]["cio_relationships"] == rel
    batch(track, person("delete_relationships", cio_relationships=rel))
    assert sandbox.person("customerio", "42")["attributes"]["cio_relationships"] == []
    r = batch(track, person("add_relationships"), person("add_relationships",
                                                         cio_relationships=[]))
    assert len(r.json()["errors"]) == 2


def test_merge_action(sandbox: Any, track: httpx.Client) -> None:
    batch(track, person("identify", {"id": "a"}, attributes={"x": 1}),
          person("identify", {"id": "b"}, attributes={"y": 2}))
    r = batch(track, {"type": "person", "action": "merge", "primary": {"id": "a"},
                      "secondary": {"id": "b"}},
              {"type": "person", "action": "merge", "primary": {"phone": "+1415"},
               "secondary": {"id": "b"}},
              {"type": "person", "action": "merge", "primary": {"id": "zz"},
               "secondary": {"id": "a"}})
    assert [e["batch_index"] for e in r.json()["errors"]] == [1]
    assert sandbox.person("customerio", "a")["attributes"] == {"x": 1, "y": 2}
    assert sandbox.person("customerio", "b") is None


def test_objects(sandbox: Any, track: httpx.Client) -> None:
    obj = {"type": "object", "identifiers": {"object_type_id": "1", "object_id": "acme"}}
    r = batch(track, {**obj, "action": "identify", "attributes": {"name": "Acme"}},
              {**obj, "action": "identify_anonymous", "anonymous_id": "anon-1"},
              {**obj, "action": "add_relationships",
               "cio_relationships": [{"identifiers": {"id": "42"}}]},
              {**obj, "action": "delete_relationships",
               "cio_relationships": [{"identifiers": {"id": "42"}}]},
              {"type": "object", "identifiers": {"cio_object_id": "o1"}, "action": "identify"})
    assert r.status_code == 200
    objects = httpx.get(f"{sandbox.admin_url}/objects").json()
    assert objects[0]["attributes"] == {"name": "Acme"}
    assert objects[0]["relationships"] == [{"identifiers": {"anonymous_id": "anon-1"}}]
    assert sandbox.stats()["customerio"]["objects"] == 1, "cio_object_id only updates"
    assert sandbox.stats()["customerio"]["ignored"] == {"unknown_cio_object_id": 1}
    batch(track, {**obj, "action": "delete"})
    assert sandbox.stats()["customerio"]["objects"] == 0
    r = batch(track, {**obj, "action": "event"},
              {"type": "object", "identifiers": {"object_id": "x"}, "action": "identify"},
              {**obj, "action": "add_relationships"},
              {**obj, "action": "identify", "cio_relationships": {}},
              {**obj, "action": "identify_anonymous", "anonymous_id": 5})
    assert [e["field"] for e in r.json()["errors"]] == [
        "action", "identifiers", "cio_relationships", "cio_relationships", "anonymous_id"]


def test_delivery_metrics(sandbox: Any, track: httpx.Client) -> None:
    ok = {"type": "delivery", "identifiers": {"id": "RPIyMTM6"}, "action": "event",
          "name": "opened", "attributes": {"device_token": "t"}}
    r = batch(track, ok, {**ok, "name": "clicked"}, {**ok, "attributes": {}},
              {**ok, "action": "identify"}, {**ok, "identifiers": {}})
    assert [e["field"] for e in r.json()["errors"]] == [
        "name", "attributes.device_token", "action", "identifiers.id"]
    assert sandbox.stats()["customerio"]["deliveries"] == 1
