"""The rest of Customer.io's Track API through either facade, checked by what the sandbox
stored: page and screen views, people by email/cio_id/phone, objects and relationships,
delivery metrics and unsubscribes, manual segments."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from opencdp import AsyncClient, Client, ConfigurationError, ValidationError
from opencdp.destinations.opencdp import Gateway
from opencdp.message import Message, new_ulid
from opencdp.outbox.base import Leased
from support.openapi import SPEC_PATH
from support.shared import require


def test_page_and_screen_views_reach_both_platforms(make: Any, sandbox: Any) -> None:
    client = make()
    client.identify("u1", {"email": "u1@example.com"})
    page_id = client.page("u1", "https://example.com/pricing", {"referrer": "https://x.test"},
                          timestamp=1_700_000_000)
    screen_id = client.screen("u1", "Checkout", {"step": 2})
    assert client.flush(10)
    events = sandbox.person("customerio", "u1")["events"]
    assert [(e["type"], e["name"], e["data"]) for e in events] == [
        ("page", "https://example.com/pricing", {"referrer": "https://x.test"}),
        ("screen", "Checkout", {"step": 2})]
    assert [e["id"] for e in events] == [page_id, screen_id]
    assert events[0]["timestamp"] == 1_700_000_000
    cdp = sandbox.person("opencdp", "u1")["events"]
    assert [(e["name"], e["data"]) for e in cdp] == [
        ("page_viewed", {"referrer": "https://x.test", "url": "https://example.com/pricing"}),
        ("screen_viewed", {"step": 2, "screen": "Checkout"})]


def test_anonymous_views_go_to_customerio_only(make: Any, sandbox: Any) -> None:
    client = make()
    client.page_anonymous("anon-1", "/pricing", {"title": "Pricing"})
    client.screen_anonymous("anon-1", "Home")
    assert client.flush(10)
    # Two v1 requests in flight at once: their order of arrival is not promised (documented).
    stored = sorted((e["type"], e["name"], e["anonymous_id"], e["data"])
                    for e in sandbox.anonymous_events())
    assert stored == [("page", "/pricing", "anon-1", {"title": "Pricing"}),
                      ("screen", "Home", "anon-1", {})]
    assert sandbox.stats()["opencdp"]["events"] == 0


def test_people_by_email_phone_and_cio_id(make: Any, sandbox: Any) -> None:
    client = make()
    client.identify_by({"email": "Ada@Example.com"}, {"plan": "pro"})
    client.identify_by({"phone": "+15551234567"}, {"plan": "basic"})
    assert client.flush(10)
    ada = sandbox.person("customerio", "ada@example.com")
    assert ada["attributes"]["plan"] == "pro"
    event_id = client.track_by({"cio_id": "cio_" + ada["cio_id"]}, "upgraded", {"to": "max"})
    client.track_by({"email": "ada@example.com"}, "renewed")
    client.suppress_by({"phone": "+15551234567"})
    assert client.flush(10)
    ada = sandbox.person("customerio", "ada@example.com")
    assert (ada["events"][0]["name"], ada["events"][0]["id"]) == ("upgraded", event_id)
    assert [e["name"] for e in ada["events"]] == ["upgraded", "renewed"]
    (gone,) = sandbox.suppressed()
    assert gone["phone"] == "+15551234567"
    assert sandbox.stats()["opencdp"]["people"] == 0, "the gateway addresses people by id only"
    client.identify_by({"id": "u9"}, {"plan": "x"})
    assert client.flush(10)
    assert sandbox.person("opencdp", "u9") is not None, "{'id': ...} is a plain identify"


def test_objects_and_relationships(make: Any, sandbox: Any) -> None:
    client = make()
    client.identify("u1", {"email": "u1@example.com"})
    client.identify_object("1", "acme", {"name": "Acme", "seats": 40})
    client.identify_object(2, "beta")
    client.add_relationships("u1", [
        {"object_type_id": "1", "object_id": "acme", "attributes": {"role": "admin"}},
        {"object_type_id": 2, "object_id": "beta"}])
    client.add_anonymous_relationship("anon-5", "1", "acme", {"role": "trial"})
    assert client.flush(10)
    objects = {(o["object_type_id"], o["object_id"]): o for o in sandbox.objects()}
    assert objects[("1", "acme")]["attributes"] == {"name": "Acme", "seats": 40}
    assert objects[("1", "acme")]["relationships"] == [
        {"identifiers": {"anonymous_id": "anon-5"},
         "relationship_attributes": {"role": "trial"}}]
    rels = sandbox.person("customerio", "u1")["attributes"]["cio_relationships"]
    assert rels == [
        {"identifiers": {"object_type_id": "1", "object_id": "acme"},
         "relationship_attributes": {"role": "admin"}},
        {"identifiers": {"object_type_id": "2", "object_id": "beta"}}]
    client.delete_relationships("u1", [{"object_type_id": "2", "object_id": "beta"}])
    client.delete_object("2", "beta")
    assert client.flush(10)
    assert sandbox.person("customerio", "u1")["attributes"]["cio_relationships"] == rels[:1]
    assert {(o["object_type_id"], o["object_id"]) for o in sandbox.objects()} == {("1", "acme")}
    assert sandbox.person("opencdp", "u1")["attributes"] == {"email": "u1@example.com"}


def test_many_entity_operations_share_batches(make: Any, sandbox: Any) -> None:
    client = make()
    for i in range(60):
        client.identify_object("1", f"org-{i}", {"n": i})
    assert client.flush(10)
    stats = sandbox.stats()["customerio"]
    assert stats["objects"] == 60
    assert stats["requests"] < 20, stats["requests"]


def test_delivery_metrics_and_unsubscribe(make: Any, sandbox: Any) -> None:
    client = make()
    client.report_metric("RPILAgUBcRhIBqSfeiIwdIYJKxTY", "clicked", href="https://x.test/a",
                         recipient="ada@example.com", timestamp=1_700_000_000)
    client.report_push_metric("RPIyMTM6OjEyMzQ=", "opened", "tok-1", timestamp=1_700_000_001)
    client.unsubscribe_delivery("RPI/with slash")
    assert client.flush(10)
    by_source = {d.get("source", d.get("metric")): d for d in sandbox.deliveries()}
    assert by_source["metrics"] == {
        "source": "metrics", "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
        "metric": "clicked", "timestamp": 1_700_000_000, "href": "https://x.test/a",
        "recipient": "ada@example.com"}
    v2 = by_source["v2"]
    assert (v2["identifiers"], v2["name"], v2["attributes"], v2["timestamp"]) == (
        {"id": "RPIyMTM6OjEyMzQ="}, "opened", {"device_token": "tok-1"}, 1_700_000_001)
    assert by_source["unsubscribed"]["delivery_id"] == "RPI/with slash"
    assert by_source["unsubscribed"]["unsubscribe"] is True


def test_manual_segment_membership(make: Any, sandbox: Any) -> None:
    client = make()
    client.identify("u1", {"email": "u1@example.com"})
    client.identify("u2", {"email": "u2@example.com"})
    assert client.flush(10)
    client.add_to_segment(7, (u for u in ("u1", "u2")))
    client.add_to_segment("8", ["u2@example.com"], id_type="email")
    assert client.flush(10)
    assert sandbox.segments() == {"7": ["u1", "u2"], "8": ["u2"]}
    client.remove_from_segment(7, ["u1"])
    assert client.flush(10)
    assert sandbox.segments() == {"7": ["u2"], "8": ["u2"]}


CUSTOMERIO_ONLY = [
    ("identify_by", ({"email": "a@example.com"},)),
    ("track_by", ({"phone": "+15551234567"}, "e")),
    ("suppress_by", ({"id": "42"},)),
    ("page_anonymous", ("anon", "/")),
    ("identify_object", ("1", "acme")),
    ("delete_object", ("1", "acme")),
    ("add_relationships", ("42", [{"object_type_id": "1", "object_id": "a"}])),
    ("add_anonymous_relationship", ("anon", "1", "acme")),
    ("report_metric", ("d-1", "opened")),
    ("report_push_metric", ("d-1", "opened", "tok")),
    ("unsubscribe_delivery", ("d-1",)),
    ("add_to_segment", (7, ["42"])),
]


@pytest.mark.parametrize(("call", "args"), CUSTOMERIO_ONLY, ids=[c for c, _ in CUSTOMERIO_ONLY])
def test_customerio_only_calls_need_dual_write(make: Any, sandbox: Any, call: str,
                                               args: tuple[Any, ...]) -> None:
    client = make(send_to_customer_io=False)
    with pytest.raises(ConfigurationError, match=r"Customer\.io operation"):
        getattr(client, call)(*args)


def test_views_without_dual_write_reach_the_gateway(make: Any, sandbox: Any) -> None:
    client = make(send_to_customer_io=False)
    client.page("u1", "/a")
    assert client.flush(10)
    (event,) = sandbox.person("opencdp", "u1")["events"]
    assert (event["name"], event["data"]) == ("page_viewed", {"url": "/a"})
    assert sandbox.stats()["customerio"]["requests"] == 0


BAD = [
    ("OCDP180", "identify_by", ({"email": "a@example.com", "id": "1"},)),
    ("OCDP180", "identify_by", ({"phone": "555-1234"},)),
    ("OCDP180", "track_by", ({"email": "not-an-email"}, "e")),
    ("OCDP180", "suppress_by", ("42",)),
    ("OCDP180", "page", ({"fax": "1"}, "/")),
    ("OCDP181", "identify_object", ("company", "acme")),
    ("OCDP181", "identify_object", ("1", "x" * 151)),
    ("OCDP181", "delete_object", ("1", "  ")),
    ("OCDP182", "add_relationships", ("42", [])),
    ("OCDP182", "add_relationships", ("42", [{"object_type_id": "1"}])),
    ("OCDP182", "delete_relationships", ("42", [{"object_type_id": "1", "object_id": "a",
                                                 "role": "admin"}])),
    ("OCDP183", "page", ("42", " ")),
    ("OCDP183", "screen_anonymous", ("anon", 12)),
    ("OCDP184", "report_metric", ("d-1", "unsubscribed")),
    ("OCDP184", "report_metric", ("", "opened")),
    ("OCDP184", "report_push_metric", ("d-1", "clicked", "tok")),
    ("OCDP184", "report_push_metric", ("d-1", "opened", " ")),
    ("OCDP184", "unsubscribe_delivery", (None,)),
    ("OCDP185", "add_to_segment", ("vip", ["42"])),
    ("OCDP185", "add_to_segment", (0, ["42"])),
    ("OCDP185", "add_to_segment", (7, "42")),
    ("OCDP185", "remove_from_segment", (7, [str(i) for i in range(1001)])),
    ("OCDP110", "add_anonymous_relationship", ("", "1", "acme")),
]


@pytest.mark.parametrize(("code", "call", "args"), BAD,
                         ids=[f"{c}-{call}-{i}" for i, (c, call, _) in enumerate(BAD)])
def test_bad_arguments_are_refused_at_the_call(make: Any, sandbox: Any, code: str, call: str,
                                               args: tuple[Any, ...]) -> None:
    client = make()
    with pytest.raises(ValidationError) as caught:
        getattr(client, call)(*args)
    assert caught.value.code == code
    assert client.flush(5)
    assert sandbox.stats()["customerio"]["requests"] == 0


def test_segment_id_type_and_metric_fields_are_checked(make: Any) -> None:
    client = make()
    with pytest.raises(ValidationError) as caught:
        client.add_to_segment(7, ["42"], id_type="phone")
    assert caught.value.code == "OCDP185"
    with pytest.raises(ValidationError) as caught:
        client.add_to_segment(7, ["not-an-email"], id_type="email")
    assert caught.value.code == "OCDP180"
    with pytest.raises(ValidationError) as caught:
        client.report_metric("d-1", "clicked", href=5)
    assert caught.value.code == "OCDP184"


def test_the_call_snapshot_is_frozen(make: Any, sandbox: Any) -> None:
    client = make()
    attributes = {"name": "Acme"}
    objects = [{"object_type_id": "1", "object_id": "acme", "attributes": {"role": "admin"}}]
    client.identify("u1", {"email": "u1@example.com"})
    client.identify_object("1", "acme", attributes)
    client.add_relationships("u1", objects)
    attributes["name"] = "changed"
    objects[0]["attributes"]["role"] = "changed"  # type: ignore[index]
    assert client.flush(10)
    (obj,) = sandbox.objects()
    assert obj["attributes"] == {"name": "Acme"}
    rels = sandbox.person("customerio", "u1")["attributes"]["cio_relationships"]
    assert rels[0]["relationship_attributes"] == {"role": "admin"}


def _coverage_tables() -> tuple[dict[str, str], dict[str, str]]:
    page = (Path(__file__).resolve().parents[2] / "docs" / "calls.md").read_text()
    section = page.split("\n## Customer.io Track API coverage\n", 1)[1].split("\n## ", 1)[0]
    reachable, _, hidden = section.partition("Deliberately not exposed:")
    rows = re.compile(r"^\| `(\w+)` \| `(\w+) ([^`]+)` \| (.+) \|$", re.M)

    def table(text: str) -> dict[str, str]:
        return {f"{m[1]} {m[2]} {m[3]}": m[4] for m in rows.finditer(text)}

    return table(reachable), table(hidden)


def test_every_track_operation_is_reachable_or_deliberately_not_exposed() -> None:
    spec = json.loads(require(SPEC_PATH).read_text())
    operations = {f"{op['operationId']} {method.upper()} {path}"
                  for path, item in spec["paths"].items()
                  for method, op in item.items() if method in ("get", "put", "post", "delete")}
    reachable, hidden = _coverage_tables()
    assert not set(reachable) & set(hidden)
    assert set(reachable) | set(hidden) == operations, (
        f"not in docs/calls.md: {sorted(operations - set(reachable) - set(hidden))}; "
        f"not in the OpenAPI document: {sorted(set(reachable) | set(hidden) - operations)}")
    assert all(len(why) > 40 for why in hidden.values()), "say why"
    for calls in reachable.values():
        for name in re.findall(r"`(\w+)`", calls):
            if name in ("batch",):
                continue
            assert callable(getattr(Client, name, None)), name
            assert asyncio.iscoroutinefunction(getattr(AsyncClient, name)), name


def test_the_coverage_check_can_fail() -> None:
    reachable, _ = _coverage_tables()
    assert "track POST /api/v1/customers/{identifier}/events" in reachable
    assert len(reachable) >= 10


def test_the_gateway_gets_views_as_tracks_and_refuses_what_it_has_no_endpoint_for() -> None:
    gateway = Gateway(("http://127.0.0.1:1",), "key")
    page = Leased(Message(new_ulid(), "page", "42", "/a", {"url": "/old", "x": 1}, None, 3))
    obj = Leased(Message(new_ulid(), "object_identify", "acme", "1", {}, None, 3))
    (request,), refused = gateway.encode([page, obj])
    assert request.path == "/v1/persons/track"
    assert orjson.loads(request.body or b"") == {
        "identifier": "42", "eventName": "page_viewed", "properties": {"url": "/a", "x": 1}}
    assert [d.items for d in refused] == [[obj]]


def test_a_durable_queue_carries_every_new_kind(make: Any, sandbox: Any, tmp_path: Path) -> None:
    client = make(queue=f"sqlite:///{tmp_path / 'q.db'}")
    client.identify_by({"phone": "+15550000001"}, {"plan": "pro"})
    client.page({"phone": "+15550000001"}, "/pricing")
    client.identify_object("1", "acme", {"n": 1})
    client.add_relationships({"phone": "+15550000001"},
                             [{"object_type_id": "1", "object_id": "acme"}])
    client.report_push_metric("d-1", "delivered", "tok")
    client.identify(person_id := "u-durable", {"email": "d@example.com"})
    assert client.flush(10)
    person = sandbox.person("customerio", "+15550000001")
    assert person["phone"] == "+15550000001"
    assert [(e["type"], e["name"]) for e in person["events"]] == [("page", "/pricing")]
    assert person["attributes"]["cio_relationships"] == [
        {"identifiers": {"object_type_id": "1", "object_id": "acme"}}]
    assert [o["object_id"] for o in sandbox.objects()] == ["acme"]
    assert [d["name"] for d in sandbox.deliveries()] == ["delivered"]
    assert sandbox.stats()["customerio"]["rejected_total"] == 0
    client.add_to_segment(3, [person_id])
    assert client.flush(10)
    assert sandbox.segments() == {"3": [person_id]}


def test_messages_of_every_new_kind_survive_serialisation() -> None:
    from opencdp.message import dumps_message, loads_message

    for kind in ("identify:email", "page", "object_anonymous", "segment_add"):
        message = Message(new_ulid(), kind, "x", "1", {"ids": ["a"]}, 1_700_000_000, 2)
        assert loads_message(dumps_message(message)) == message
