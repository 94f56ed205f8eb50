"""compare_person on plain person objects, as the sandbox lists them."""

from __future__ import annotations

from typing import Any

from opencdp.reconcile import compare_person


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
