"""The pure comparison: person objects as the sandbox lists them, dead letters as stored."""

from __future__ import annotations

from typing import Any

import pytest

from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid
from opencdp.outbox.base import DeadLetter
from opencdp.reconcile import compare_person
from opencdp.reconcile.compare import compare_people, same_value, unmatched, within


def person(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "u1", "attributes": {}, "events": [], "devices": [],
                            "suppressed": False}
    base.update(kw)
    return base


def event(id: str, ts: int = 100, name: str = "viewed") -> dict[str, Any]:
    return {"id": id, "name": name, "timestamp": ts, "data": {}}


def test_equal_people_do_not_differ() -> None:
    a = person(attributes={"plan": "pro"}, events=[event("e1")])
    assert compare_person(a, dict(a)) is None
    assert compare_person(None, None) is None


def test_attribute_names_are_reported_never_values() -> None:
    details = compare_person(person(attributes={"plan": "pro", "ssn": "123-45-6789"}),
                             person(attributes={"plan": "free", "extra": 1}))
    assert details == {"attributes": {"only_opencdp": ["ssn"], "only_customerio": ["extra"],
                                      "different": ["plan"]}}
    assert "123-45-6789" not in repr(details) and "free" not in repr(details)


def test_events_match_by_id_and_respect_the_window() -> None:
    a = person(events=[event("e1", 100), event("e2", 200), event("e3", 300)])
    b = person(events=[event("e1", 100)])
    assert compare_person(a, b)["events"] == {  # type: ignore[index]
        "opencdp": 3, "customerio": 1, "only_opencdp": 2, "only_customerio": 0}
    assert compare_person(a, b, since=None, until=150) is None
    assert compare_person(a, b, since=150)["events"]["only_opencdp"] == 2  # type: ignore[index]


def test_events_without_ids_match_by_name_and_time() -> None:
    a = person(events=[{"name": "viewed", "timestamp": 5}])
    assert compare_person(a, person(events=[{"name": "viewed", "timestamp": 5}])) is None
    assert compare_person(a, person(events=[{"name": "viewed", "timestamp": 6}])) is not None


def test_devices_match_by_token_and_web_devices_are_opencdps_alone() -> None:
    cdp = person(devices=[
        {"deviceId": "phone", "id": "phone", "platform": "ios", "apnToken": "tok-1"},
        {"deviceId": "browser", "id": "browser", "platform": "web"},
    ])
    assert compare_person(cdp, person(devices=[{"id": "tok-1", "platform": "ios"}])) is None
    details = compare_person(cdp, person(devices=[{"id": "tok-2", "platform": "ios"}]))
    assert details == {"devices": {"only_opencdp": ["phone"], "only_customerio": ["tok-2"]}}


def test_a_person_missing_on_one_side() -> None:
    details = compare_person(person(events=[event("e1")], attributes={"plan": "pro"}), None)
    assert details == {"missing_from": "customerio", "events": 1, "attributes": ["plan"]}


def test_suppression_is_not_a_difference() -> None:
    assert compare_person(person(), person(suppressed=True)) is None


# -- dead letters and whole platforms, as plain data -----------------------------------------

def letter(message: Message, destination: str, reason: str = "HTTP 400: bad") -> DeadLetter:
    return DeadLetter(message, destination, reason, 400, 1, 100.0)


def test_unmatched_counts_only_messages_lost_on_one_side() -> None:
    both = [Message(new_ulid(), "track", "u1", "viewed", {}, None, OPENCDP | CUSTOMERIO)
            for _ in range(3)]
    cio_only = Message(new_ulid(), "suppress", "u2", None, None, None, CUSTOMERIO)
    dead = {"opencdp": [letter(both[0], "opencdp")],
            "customerio": [letter(both[0], "customerio"), letter(both[1], "customerio"),
                           letter(both[2], "customerio", "HTTP 401: key"),
                           letter(cio_only, "customerio")]}
    count, people = unmatched(dead)
    assert count == 2, "lost on both sides or meant for one side only is not unmatched"
    assert [(p.id, p.source) for p in people] == [("u1", "records")]
    details = people[0].details
    assert details["missing_from"] == "customerio" and details["messages"] == 2
    assert details["reasons"] == ["HTTP 400: bad", "HTTP 401: key"]
    assert people[0].summary.endswith("(+1 more reasons)")
    assert unmatched({}) == (0, [])


def test_compare_people_matches_by_id_then_email() -> None:
    cdp = [person(id="u1"), person(id=None, email="A@Example.com", attributes={"x": 1})]
    cio = [person(id="u1", suppressed=True), person(id=None, email="a@example.com"),
           person(id="u3")]
    found = compare_people(cdp, cio)
    assert (found.compared, found.suppressed) == (3, 1)
    assert [(d.id, d.summary) for d in found.differing] == [
        ("a@example.com", "attributes only in OpenCDP: x"),
        ("u3", "missing in OpenCDP (0 event(s) in Customer.io)")]


def test_within_uses_the_time_the_message_was_accepted() -> None:
    old = Message((1_000_000 << 80) | 1, "track", "u", "e", {}, None, OPENCDP)
    new = Message((2_000_000 << 80) | 2, "track", "u", "e", {}, None, OPENCDP)
    letters = [letter(old, "opencdp"), letter(new, "opencdp")]
    assert within(letters, 1500, None) == letters[1:]
    assert within(letters, None, 1500) == letters[:1]
    assert within(letters, 1000, 2000) == letters[:1], "the window's end is open"


@pytest.mark.parametrize(("a", "b", "same"), [
    (42, "42", True), (True, "true", True), (1.5, "1.5", True), ({"b": 1, "a": 2},
                                                                  '{"a":2,"b":1}', True),
    (42, "43", False), ("42", "42.0", False), (42, 42.0, True), (None, "null", True),
    ("x", "y", False), (1, 2, False),
])
def test_attributes_compare_as_customerio_stores_them(a: object, b: object,
                                                      same: bool) -> None:
    assert same_value(a, b) is same
    assert same_value(b, a) is same
