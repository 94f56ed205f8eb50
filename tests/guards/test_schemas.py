"""The typed taxonomy: runtime checks of TypedDict, dataclass and pydantic schemas, and how
a type checker sees a typed ``track()``."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any, Literal, Optional, TypedDict

import pytest

from opencdp.errors import ConfigurationError, ValidationError
from opencdp.guards import Event, Finding, GuardPolicy, Guards, Schemas
from support.typing_check import assert_flags_exactly_the_marked_lines


class Item(TypedDict):
    sku: str
    quantity: int


class _OrderRequired(TypedDict):
    order_id: str
    total: float


class OrderPlaced(_OrderRequired, total=False):
    items: list[Item]
    channel: Literal["web", "app"]
    coupon: Optional[str]  # noqa: UP045 (the old spelling must work too)
    meta: dict[str, Any]


@dataclasses.dataclass
class Refunded:
    order_id: str
    amount: float = 0.0
    reason: str | None = None


class Person(TypedDict, total=False):
    email: str
    plan: Literal["free", "pro"]
    seats: int


def run(schemas: Schemas, kind: str, name: str | None, data: Any, **policy: Any
        ) -> tuple[dict[str, Any] | None, list[Finding]]:
    found: list[Finding] = []
    guards = Guards(GuardPolicy(schemas=schemas, email_hint="off", **policy), found.append)
    guards.identify("42", {"email": "a@example.com"}, None)
    if kind == "identify":
        return guards.identify("42", data, None)[1], found
    return guards.track("42", name, data, None)[2], found


@pytest.mark.parametrize(("data", "problems"), [
    ({"order_id": "A1", "total": 9.99}, []),
    ({"order_id": "A1", "total": 10, "items": [{"sku": "S", "quantity": 2}], "channel": "web",
      "coupon": None, "meta": {"k": [1]}}, []),
    ({"order_id": "A1"}, ["total is missing"]),
    ({"order_id": "A1", "total": "9.99"}, ["total should be a number, got str"]),
    ({"order_id": "A1", "total": True}, ["total should be a number, got bool"]),
    ({"order_id": "A1", "total": 1, "items": [{"sku": "S", "quantity": 1.5}]},
     ["items[0].quantity should be an integer, got float"]),
    ({"order_id": "A1", "total": 1, "channel": "email"},
     ["channel should be one of ['web', 'app']"]),
    ({"order_id": "A1", "total": 1, "coupon": 5}, ["coupon should be str | null, got int"]),
    ({"order_id": "A1", "total": 1, "extra": 1}, ["extra is not in the schema"]),
    (["A1"], ["data should be an object"]),
])
def test_typeddict_schemas(data: Any, problems: list[str]) -> None:
    schemas = Schemas()
    schemas.event("order_placed", OrderPlaced)
    assert schemas.problems("track", "order_placed", data) == problems


def test_a_mismatch_warns_once_per_event_and_problem_and_is_counted() -> None:
    schemas = Schemas()
    schemas.event("order_placed", OrderPlaced)
    found: list[Finding] = []
    guards = Guards(GuardPolicy(schemas=schemas), found.append)
    guards.identify("42", {"email": "a@example.com"}, None)
    for _ in range(3):
        guards.track("42", "order_placed", {"order_id": "A1"}, None)
    assert [f.code for f in found] == ["OCDP170"]
    assert found[0].field == "properties" and "total is missing" in found[0].message
    assert guards.counts() == {"OCDP170": 3}


def test_refusing_registries_and_strict_mode_refuse() -> None:
    schemas = Schemas(refuse=True)
    schemas.event("order_placed", OrderPlaced)
    with pytest.raises(ValidationError) as err:
        run(schemas, "track", "order_placed", {"order_id": "A1"})
    assert (err.value.code, err.value.field) == ("OCDP170", "properties")
    lenient = Schemas()
    lenient.event("order_placed", OrderPlaced)
    with pytest.raises(ValidationError):
        run(lenient, "track", "order_placed", {"order_id": "A1"}, strict=True)


def test_closed_taxonomies_flag_unregistered_names() -> None:
    schemas = Schemas(closed=True)
    schemas.event("order_placed", OrderPlaced)
    _, found = run(schemas, "track", "order_shipped", {"x": 1})
    assert [f.code for f in found] == ["OCDP171"]
    _, found = run(Schemas(), "track", "order_shipped", {"x": 1})
    assert found == []


def test_dataclass_schemas_take_instances_and_dicts() -> None:
    schemas = Schemas()
    refunded = schemas.event("order_refunded", Refunded)
    found: list[Finding] = []
    guards = Guards(GuardPolicy(schemas=schemas, silence=frozenset({"OCDP115"})), found.append)
    _, name, props, _ = guards.track("42", refunded, Refunded("A1", 5.0), None)
    assert name == "order_refunded" and type(name) is str
    assert props == {"order_id": "A1", "amount": 5.0, "reason": None}
    assert found == []
    assert schemas.problems("track", "order_refunded", {"amount": "x"}) == [
        "order_id is missing", "amount should be a number, got str"]


def test_pydantic_models_validate_themselves() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Signup(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        plan: str
        seats: int

    schemas = Schemas()
    signup = schemas.event("signed_up", Signup)
    guards = Guards(GuardPolicy(schemas=schemas, silence=frozenset({"OCDP115"})), print)
    assert guards.track("42", signup, Signup(plan="pro", seats=3), None)[2] == {
        "plan": "pro", "seats": 3}
    problems = schemas.problems("track", "signed_up", {"plan": "pro", "seats": "many"})
    assert len(problems) == 1 and problems[0].startswith("seats:")


def test_attribute_schemas_check_types_but_require_nothing() -> None:
    schemas = Schemas()
    schemas.attributes(Person)
    _, found = run(schemas, "identify", None, {"plan": "pro", "nickname": "ada"})
    assert found == []
    _, found = run(schemas, "identify", None, {"plan": "enterprise", "seats": "3"})
    assert [f.code for f in found] == ["OCDP170"]
    assert "plan should be one of" in found[0].message and "seats should be" in found[0].message


def test_events_are_strings_that_remember_their_schema() -> None:
    event = Schemas().event(" order_placed ", OrderPlaced)
    assert isinstance(event, str) and event == "order_placed" and event.schema is OrderPlaced
    assert {"order_placed": 1}[event] == 1
    copy = pickle.loads(pickle.dumps(event))  # noqa: S301 (our own bytes)
    assert copy == event and copy.schema is OrderPlaced and isinstance(copy, Event)


@pytest.mark.parametrize("schema", [dict, int, "order"])
def test_schemas_must_be_typeddicts_dataclasses_or_models(schema: Any) -> None:
    with pytest.raises(ConfigurationError):
        Schemas().event("order_placed", schema)


@pytest.mark.timeout(180)
def test_type_checkers_check_typed_track_calls() -> None:
    assert_flags_exactly_the_marked_lines(Path(__file__).with_name("typing_track.py"))


def test_a_mismatch_at_many_list_positions_makes_one_report() -> None:
    schemas = Schemas()
    schemas.event("order_placed", OrderPlaced)
    found: list[Finding] = []
    guards = Guards(GuardPolicy(schemas=schemas, email_hint="off"), found.append)
    guards.identify("42", None, None)
    for i in range(50):
        items = [{"sku": "S", "quantity": 1}] * i + [{"sku": "S", "quantity": 1.5}]
        guards.track("42", "order_placed", {"order_id": "A1", "total": 1, "items": items}, None)
    assert [f.code for f in found] == ["OCDP170"]
    assert guards.counts() == {"OCDP170": 50}


def test_a_model_whose_validator_raises_is_a_mismatch_not_a_crash() -> None:
    class Strange:
        @classmethod
        def model_validate(cls, data: Any) -> Any:
            raise KeyError("boom")

    schemas = Schemas()
    schemas.event("signed_up", Strange)
    assert schemas.problems("track", "signed_up", {"plan": "pro"}) == [
        "the model refused the data (KeyError)"]
