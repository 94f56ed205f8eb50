"""Event ids, devices and merges: their rules, counts, silence and strictness."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import pytest

from opencdp.errors import ValidationError
from opencdp.guards import Finding, GuardPolicy, Guards
from opencdp.message import new_ulid, parse_ulid, ulid_str


def make(**policy: Any) -> tuple[Guards, list[Finding]]:
    found: list[Finding] = []
    return Guards(GuardPolicy(**policy), found.append), found


def refused(call: Any) -> tuple[str | None, str | None]:
    with pytest.raises(ValidationError) as err:
        call()
    return err.value.code, err.value.field


# -- event ids -------------------------------------------------------------------------------

def test_event_ids_are_ulids() -> None:
    guards, _ = make()
    text = ulid_str(new_ulid())
    assert guards.event_id(text) == parse_ulid(text)
    assert guards.event_id(text.lower()) == parse_ulid(text)
    assert guards.event_id(f" {text} ") == parse_ulid(text)
    assert guards.event_id(5) == 5


@pytest.mark.parametrize("bad", ["order-1001", "", "0" * 25, "8" + "0" * 25, "I" * 26,
                                 "é" * 26, 12.5, True, -1, 1 << 128, None,
                                 b"01HZX3Q4T0V5B8K2M7N9P6R1S3"])
def test_bad_event_ids_are_refused_and_counted(bad: object) -> None:
    guards, found = make()
    assert refused(lambda: guards.event_id(bad)) == ("OCDP151", "event_id")
    assert guards.counts() == {"OCDP151": 1} and found == []


# -- devices ---------------------------------------------------------------------------------

def test_a_device_snapshot_drops_nones_and_converts_last_used() -> None:
    guards, found = make()
    attributes = {"theme": "dark"}
    uid, did, data = guards.device(42, " dev-1 ", "ios", {
        "apn_token": "a1b2", "fcm_token": None, "name": "Ada's phone", "attributes": attributes,
        "last_used": datetime(2024, 1, 1, tzinfo=timezone.utc)})
    assert (uid, did) == ("42", "dev-1")
    assert data == {"apn_token": "a1b2", "name": "Ada's phone", "attributes": {"theme": "dark"},
                    "platform": "ios", "last_used": 1704067200}
    attributes["theme"] = "light"
    assert data["attributes"] == {"theme": "dark"} and found == []


def test_device_attributes_may_be_a_dataclass() -> None:
    @dataclasses.dataclass
    class Prefs:
        theme: str

    guards, _ = make()
    data = guards.device("42", "d", "android", {"fcm_token": "t", "attributes": Prefs("dark")})[2]
    assert data["attributes"] == {"theme": "dark"}


@pytest.mark.parametrize(("platform", "fields", "code", "field"), [
    ("iOS", {"apn_token": "t"}, "OCDP152", "platform"),
    (None, {"apn_token": "t"}, "OCDP152", "platform"),
    ("windows", {"apn_token": "t"}, "OCDP152", "platform"),
    ("ios", {}, "OCDP153", "fcm_token"),
    ("ios", {"apn_token": None, "fcm_token": None}, "OCDP153", "fcm_token"),
    ("ios", {"apn_token": ""}, "OCDP153", "apn_token"),
    ("android", {"fcm_token": "   "}, "OCDP153", "fcm_token"),
    ("android", {"fcm_token": 12345}, "OCDP153", "fcm_token"),
    ("ios", {"apn_token": "t", "attributes": ["dark"]}, "OCDP154", "attributes"),
    ("ios", {"apn_token": "t", "attributes": "dark"}, "OCDP154", "attributes"),
    ("ios", {"apn_token": "t", "last_used": "yesterday"}, "OCDP103", "last_used"),
    ("ios", {"apn_token": "t", "name": b"phone"}, "OCDP132", "name"),
    ("ios", {"apn_token": "t", "attributes": {"n": "caf\udce9"}}, "OCDP156", "attributes.n"),
    ("ios", ["apn_token"], "OCDP134", "fields"),
])
def test_bad_devices_are_refused_naming_the_field(platform: object, fields: Any, code: str,
                                                   field: str) -> None:
    guards, _ = make()
    assert refused(lambda: guards.device("42", "d", platform, fields)) == (code, field)
    assert guards.counts() == {code: 1}


def test_a_platform_in_the_refusal_is_cut_short() -> None:
    guards, _ = make()
    with pytest.raises(ValidationError) as err:
        guards.device("42", "d", "x" * 500, {"apn_token": "t"})
    assert "x" * 30 not in str(err.value)


def test_device_last_used_in_milliseconds_is_converted_with_a_warning() -> None:
    guards, found = make()
    data = guards.device("42", "d", "ios", {"apn_token": "t", "last_used": 1704067200000})[2]
    assert data["last_used"] == 1704067200
    assert [(f.code, f.field) for f in found] == [("OCDP101", "last_used")]
    strict, _ = make(strict=True)
    assert refused(lambda: strict.device("42", "d", "ios", {
        "apn_token": "t", "last_used": 1704067200000})) == ("OCDP101", "last_used")


# -- merges ----------------------------------------------------------------------------------

def test_merge_sides_are_checked_and_trimmed() -> None:
    guards, found = make()
    label, sides = guards.merge({"id": 42}, {"email": " old@example.com "})
    assert label == "42"
    assert sides == {"primary": {"id": "42"}, "secondary": {"email": "old@example.com"}}
    assert found == []  # an email is expected on an email side


def test_an_email_as_a_merge_id_is_warned() -> None:
    guards, found = make()
    guards.merge({"id": "ada@example.com"}, {"cio_id": "a1"})
    assert [(f.code, f.field) for f in found] == [("OCDP111", "primary.id")]


@pytest.mark.parametrize(("primary", "secondary", "code", "field"), [
    ("42", {"id": "43"}, "OCDP155", "primary"),
    ({"id": "42", "email": "a@example.com"}, {"id": "43"}, "OCDP155", "primary"),
    ({}, {"id": "43"}, "OCDP155", "primary"),
    ({"id": "42"}, {"user_id": "43"}, "OCDP155", "secondary"),
    ({"id": "42"}, [("id", "43")], "OCDP155", "secondary"),
    ({"id": "42"}, {"id": "  "}, "OCDP110", "secondary.id"),
    ({"id": "u" * 256}, {"id": "43"}, "OCDP113", "primary.id"),
])
def test_bad_merges_are_refused_naming_the_side(primary: Any, secondary: Any, code: str,
                                                field: str) -> None:
    guards, _ = make()
    assert refused(lambda: guards.merge(primary, secondary)) == (code, field)
    assert guards.counts() == {code: 1}
