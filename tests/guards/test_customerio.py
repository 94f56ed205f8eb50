"""``customerio_refusal``: each of Customer.io's own limits, exactly at its boundary, and the
call-time checks that no longer apply them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from opencdp.guards import GuardPolicy, Guards, customerio_refusal
from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid


def message(kind: str, identifier: str = "42", name: str | None = None,
            data: Any = None) -> Message:
    return Message(new_ulid(), kind, identifier, name, data, None, OPENCDP | CUSTOMERIO)


def code(reason: str | None) -> str | None:
    return None if reason is None else reason.split(" ", 1)[0]


@pytest.mark.parametrize("kind", ["identify", "track", "add_device", "delete_device",
                                  "suppress", "unsuppress", "delete"])
def test_person_ids_up_to_150_bytes(kind: str) -> None:
    name = "d1" if kind in ("add_device", "delete_device") else "e" if kind == "track" else None
    assert customerio_refusal(message(kind, "u" * 150, name)) is None
    assert code(customerio_refusal(message(kind, "u" * 151, name))) == "OCDP113"
    assert customerio_refusal(message(kind, "é" * 75, name)) is None  # 150 bytes
    reason = customerio_refusal(message(kind, "é" * 75 + "u", name))
    assert reason == "OCDP113 person id is 151 bytes; Customer.io takes at most 150"


def test_anonymous_ids_have_no_person_id_limit() -> None:
    assert customerio_refusal(message("track_anonymous", "a" * 255, "e")) is None


def test_merge_sides_by_id_up_to_150_bytes() -> None:
    ok = {"primary": {"id": "u" * 150}, "secondary": {"email": "e" * 200}}
    assert customerio_refusal(message("merge", "u" * 150, None, ok)) is None
    bad = {"primary": {"id": "42"}, "secondary": {"id": "u" * 151}}
    assert customerio_refusal(message("merge", "42", None, bad)) == (
        "OCDP113 secondary.id is 151 bytes; Customer.io takes at most 150")


@pytest.mark.parametrize("kind", ["track", "track_anonymous"])
def test_event_names_up_to_100_bytes(kind: str) -> None:
    assert customerio_refusal(message(kind, name="e" * 100)) is None
    assert customerio_refusal(message(kind, name="é" * 50)) is None
    assert customerio_refusal(message(kind, name="e" * 101)) == (
        "OCDP124 event name is 101 bytes; Customer.io takes at most 100")
    assert code(customerio_refusal(message(kind, name="é" * 50 + "e"))) == "OCDP124"


def event_data(size: int) -> dict[str, str]:
    data = {"rows": ""}
    data["rows"] = "x" * (size - len(orjson.dumps(data)))
    assert len(orjson.dumps(data)) == size
    return data


@pytest.mark.parametrize("kind", ["track", "track_anonymous"])
def test_event_data_up_to_100000_bytes(kind: str) -> None:
    assert customerio_refusal(message(kind, name="e", data=event_data(100_000))) is None
    assert customerio_refusal(message(kind, name="e", data=event_data(100_001))) == (
        "OCDP136 event data is 100001 bytes; Customer.io takes at most 100000")


def test_up_to_300_attributes_per_identify() -> None:
    assert customerio_refusal(message("identify", data={f"a{i}": i for i in range(300)})) \
        is None
    assert customerio_refusal(message("identify", data={f"a{i}": i for i in range(301)})) == (
        "OCDP135 301 attributes; Customer.io takes at most 300 per identify")


def test_attribute_names_up_to_150_bytes() -> None:
    assert customerio_refusal(message("identify", data={"n" * 150: 1})) is None
    assert customerio_refusal(message("identify", data={"é" * 75: 1})) is None
    reason = customerio_refusal(message("identify", data={"n" * 151: 1}))
    assert reason is not None and reason.startswith("OCDP135 attribute name 'nnn")
    assert reason.endswith("is 151 bytes; Customer.io takes at most 150")


@pytest.mark.parametrize(("ok", "over"), [
    ("x" * 1000, "x" * 1001),
    ("é" * 500, "é" * 500 + "x"),
    (["x" * 996], ["x" * 997]),  # JSON: ["..."] is the value's 4 extra bytes
    ({"k": "x" * 992}, {"k": "x" * 993}),
])
def test_attribute_values_up_to_1000_bytes(ok: Any, over: Any) -> None:
    assert customerio_refusal(message("identify", data={"bio": ok})) is None
    assert customerio_refusal(message("identify", data={"bio": over})) == (
        "OCDP135 attributes.bio is 1001 bytes; Customer.io takes at most 1000 per value")


def test_the_reason_never_holds_a_value() -> None:
    secret = "s3cr3t-" + "x" * 2000
    for m in (message("identify", data={"token": secret}),
              message("track", name="e", data={"token": secret * 60}),
              message("identify", secret[:200])):
        reason = customerio_refusal(m)
        assert reason is not None and "s3cr3t" not in reason


def test_other_messages_and_small_ones_pass() -> None:
    assert customerio_refusal(message("identify", data=None)) is None
    assert customerio_refusal(message("identify", data={})) is None
    assert customerio_refusal(message("track", name="order_placed", data=None)) is None
    assert customerio_refusal(message("add_device", name="d", data={"attributes": {
        "x" * 200: "y" * 2000}})) is None


def test_the_call_accepts_what_only_customerio_refuses() -> None:
    guards = Guards(GuardPolicy(silence=frozenset({"OCDP115"})), lambda f: None)
    uid, attrs, _ = guards.identify("u" * 255, {f"a{i}": "x" * 1001 for i in range(301)}, None)
    assert len(uid) == 255 and attrs is not None and len(attrs) == 301
    m = message("identify", uid, None, attrs)
    assert code(customerio_refusal(m)) == "OCDP113"
    _, name, props, _ = guards.track("42", "e" * 255, {"rows": "x" * 200_000}, None)
    assert code(customerio_refusal(message("track", "42", name, props))) == "OCDP124"
    assert code(customerio_refusal(message("track", "42", "e", props))) == "OCDP136"
