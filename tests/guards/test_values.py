"""The snapshot: every normalisation rule, every refusal, and a property test against a plainly
written reference of the documented rules."""

from __future__ import annotations

import dataclasses
import enum
import math
import uuid
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opencdp.errors import ValidationError
from opencdp.guards import Finding, GuardPolicy, Guards

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Color(enum.Enum):
    RED = "red"
    PAIR = (1, 2)


class Level(enum.IntEnum):
    LOW = 1


class Flavour(str, enum.Enum):
    SWEET = "sweet"


class Text(str):
    pass


class Number(int):
    pass


class Real(float):
    pass


@dataclasses.dataclass
class Point:
    x: Any
    y: Any


class Frozen(Mapping[Any, Any]):
    def __init__(self, data: dict[Any, Any]) -> None:
        self._data = data

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def make(**policy: Any) -> Guards:
    guards = Guards(GuardPolicy(silence=frozenset({"OCDP115"}), **policy), lambda f: None)
    return guards


def props(value: Any, **policy: Any) -> Any:
    return make(**policy).track("42", "order_placed", value, None)[2]


def refusal(value: Any) -> tuple[str | None, str | None]:
    with pytest.raises(ValidationError) as err:
        props(value)
    return err.value.code, err.value.field


# -- each rule -------------------------------------------------------------------------------

@pytest.mark.parametrize(("given_", "expected"), [
    (datetime(2024, 1, 1, tzinfo=timezone.utc), 1704067200),
    (datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), 1704067200),
    (datetime(2024, 1, 1, 0, 0, 0, 999_999, tzinfo=timezone.utc), 1704067200),
    (datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone.utc), -1),
    (date(2024, 1, 31), "2024-01-31"),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    (Color.RED, "red"),
    (Color.PAIR, [1, 2]),
    (Level.LOW, 1),
    (Flavour.SWEET, "sweet"),
    (Decimal("9.99"), 9.99),
    (Decimal("2.50"), 2.5),
    (Decimal("2.0"), 2),
    (Decimal("-0"), 0),
    (Decimal("1E+3"), 1000),
    (Decimal(2**64 - 1), 2**64 - 1),
    ((1, "a"), [1, "a"]),
    (Text("plain"), "plain"),
    (Number(7), 7),
    (Real(1.5), 1.5),
    (Point(1, [date(2024, 1, 2)]), {"x": 1, "y": ["2024-01-02"]}),
    (Frozen({"k": (1,)}), {"k": [1]}),
    (-(2**63), -(2**63)),
    (2**64 - 1, 2**64 - 1),
    (-0.0, -0.0),
    ("café ☕ \u2028 \x00", "café ☕ \u2028 \x00"),
])
def test_each_normalisation_rule(given_: Any, expected: Any) -> None:
    out = props({"v": given_, "nested": [{"v": given_}]})
    assert orjson.dumps(out) == orjson.dumps({"v": expected, "nested": [{"v": expected}]})


def test_str_subclass_keys_become_plain_text() -> None:
    out = props({Text("a"): 1, Flavour.SWEET: 2})
    assert out == {"a": 1, "sweet": 2}
    assert all(type(k) is str for k in out)


@pytest.mark.parametrize(("value", "code", "field"), [
    ({"a": {"b": [1, "x\udce9"]}}, "OCDP156", "properties.a.b[1]"),
    ({"a": {"\udce9": 1}}, "OCDP156", "properties.a.\\udce9"),
    ({"a": [{1: 2}]}, "OCDP132", "properties.a[0]"),
    ({"a": [None, {(1, 2): 2}]}, "OCDP132", "properties.a[1]"),
    ({"n": 2**64}, "OCDP132", "properties.n"),
    ({"n": -(2**63) - 1}, "OCDP132", "properties.n"),
    ({"n": b"x"}, "OCDP132", "properties.n"),
    ({"n": bytearray(b"x")}, "OCDP132", "properties.n"),
    ({"n": frozenset({1})}, "OCDP132", "properties.n"),
    ({"n": time(12, 0)}, "OCDP132", "properties.n"),
    ({"n": timedelta(1)}, "OCDP132", "properties.n"),
    ({"n": Decimal("0.1000000000000000000001")}, "OCDP132", "properties.n"),
    ({"n": Decimal("1E+30")}, "OCDP132", "properties.n"),
    ({"n": Decimal("1E+999999999")}, "OCDP132", "properties.n"),
    ({"n": Decimal("1E-999999999")}, "OCDP132", "properties.n"),
    ({"n": Decimal("NaN")}, "OCDP133", "properties.n"),
    ({"n": Decimal("sNaN")}, "OCDP133", "properties.n"),
    ({"n": Decimal("-Infinity")}, "OCDP133", "properties.n"),
    ({"n": float("nan")}, "OCDP133", "properties.n"),
    ({"n": [1, -math.inf]}, "OCDP133", "properties.n[1]"),
    ({"n": Point}, "OCDP132", "properties.n"),
    ({"n": print}, "OCDP132", "properties.n"),
    ({"n": iter([1])}, "OCDP132", "properties.n"),
    ({"n": range(3)}, "OCDP132", "properties.n"),
    ({"n": orjson.Fragment(b"[1]")}, "OCDP132", "properties.n"),
])
def test_each_refusal_names_the_path(value: Any, code: str, field: str) -> None:
    assert refusal(value) == (code, field)


def chain(depth: int, kind: str = "dict") -> Any:
    node: Any = 1
    for _ in range(depth):
        node = {"c": node} if kind == "dict" else [node]
    return node


@pytest.mark.parametrize("kind", ["dict", "list"])
def test_nesting_is_refused_beyond_32_containers(kind: str) -> None:
    assert props({"t": chain(31, kind)}) == {"t": chain(31, kind)}
    code, field = refusal({"t": chain(32, kind)})
    assert code == "OCDP157"
    assert field is not None and field.startswith("properties.t")


def test_a_container_holding_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert refusal({"loop": loop})[0] == "OCDP157"
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    assert refusal(cycle)[0] == "OCDP157"


def test_millisecond_time_names_are_converted_only_at_the_top_and_below_10_to_20() -> None:
    out = props({"created_at": 1704067200000, "paid_time": 1704067200000000,
                 "created": Decimal("1704067200000000000"), "huge_at": 1e20,
                 "nested": {"created_at": 1704067200000}, "count": 10**12})
    assert out == {"created_at": 1704067200, "paid_time": 1704067200, "created": 1704067200,
                   "huge_at": 1e20, "nested": {"created_at": 1704067200000},
                   "count": 10**12}


def test_nothing_is_shared_with_the_input() -> None:
    inner = {"k": [1, {"x": 2}]}
    data = {"a": inner, "b": [inner], "c": (inner,)}
    out = props(data)
    inner["k"][1]["x"] = 3  # type: ignore[index]
    inner["k"].append(4)
    assert out == {"a": {"k": [1, {"x": 2}]}, "b": [{"k": [1, {"x": 2}]}],
                   "c": [{"k": [1, {"x": 2}]}]}


def test_device_fields_and_identify_attributes_use_the_same_rules() -> None:
    guards = make()
    _, attrs, _ = guards.identify("42", {"email": "a@example.com", "plan": Flavour.SWEET,
                                         "seen": datetime(2024, 1, 1, tzinfo=timezone.utc)},
                                  None)
    assert attrs == {"email": "a@example.com", "plan": "sweet", "seen": 1704067200}
    _, _, data = guards.device("42", "d1", "ios", {"apn_token": "t",
                                                   "attributes": {"theme": Color.RED}})
    assert data == {"apn_token": "t", "attributes": {"theme": "red"}, "platform": "ios"}
    with pytest.raises(ValidationError) as err:
        guards.device("42", "d1", "ios", {"apn_token": "t", "attributes": {"x": {1, 2}}})
    assert (err.value.code, err.value.field) == ("OCDP132", "attributes.x")


# -- the reference ---------------------------------------------------------------------------

class Refused(Exception):
    def __init__(self, code: str, field: str) -> None:
        super().__init__(code, field)
        self.code, self.field = code, field


UNITS = [(10**17, 10**9), (10**14, 10**6), (10**11, 10**3)]


def reference(value: Any, path: str, depth: int) -> Any:
    """The documented rules, written out one by one (``depth`` counts the enclosing
    containers)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return reference(value.value, path, depth)
    if isinstance(value, str):
        text = str(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused("OCDP156", path) from None
        return text
    if isinstance(value, int):
        number = int(value)
        if number < -(2**63) or number > 2**64 - 1:
            raise Refused("OCDP132", path)
        return number
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise Refused("OCDP133", path)
        return float(value)
    if isinstance(value, Decimal):
        if value.is_nan() or value.is_infinite():
            raise Refused("OCDP133", path)
        if value == value.to_integral_value():
            if value.adjusted() > 25:
                raise Refused("OCDP132", path)
            return reference(int(value), path, depth)
        as_float = float(value)
        if Decimal(repr(as_float)) != value:
            raise Refused("OCDP132", path)
        return as_float
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int((value - EPOCH) / timedelta(seconds=1))
    if isinstance(value, date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        if depth + 1 > 32:
            raise Refused("OCDP157", path)
        return [reference(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        if depth + 1 > 32:
            raise Refused("OCDP157", path)
        out = {}
        for raw, item in value.items():
            if not isinstance(raw, str):
                raise Refused("OCDP132", path)
            key = str.__str__(raw)  # the text itself (an Enum's str() is its name)
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                bad = key.encode("ascii", "backslashreplace").decode("ascii")
                raise Refused("OCDP156", f"{path}.{bad}") from None
            out[key] = reference(item, f"{path}.{key}", depth + 1)
        return out
    raise Refused("OCDP132", path)


def reference_top(data: dict[Any, Any], field: str) -> Any:
    out = reference(data, field, 0)
    for key, item in out.items():
        is_time = key.endswith(("_at", "_time")) or key == "created"
        if is_time and type(item) in (int, float) and 10**11 <= item < 10**20:
            number = int(item)
            for floor, divisor in UNITS:
                if number >= floor:
                    out[key] = number // divisor
                    break
    return out


# -- the property ----------------------------------------------------------------------------

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
FRIENDLY_TEXT = st.one_of(st.text(max_size=6), st.sampled_from(
    ["\x00", "\u2028\u2029", "\u202e", "🦄" * 3, "' OR 1=1 --", "\\u0000", "a" * 300,
     "é" * 600, ""]))
TEXT = st.one_of(FRIENDLY_TEXT, st.sampled_from(["caf\udce9", "\ud83d"]),
                 st.lists(st.one_of(st.characters(), SURROGATES), max_size=4).map("".join))
FRIENDLY_KEYS = st.one_of(FRIENDLY_TEXT,
                          st.sampled_from(["created_at", "login_time", "created", "count"]),
                          st.builds(Text, st.text(max_size=3)), st.just(Flavour.SWEET))
KEYS = st.one_of(FRIENDLY_KEYS, TEXT, st.integers(-3, 3), st.sampled_from([Color.RED, (1, 2)]))
ZONES = st.sampled_from([None, timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                         timezone(-timedelta(hours=8))])
FRIENDLY = st.one_of(
    st.none(), st.booleans(), FRIENDLY_TEXT,
    st.integers(-(2**63), 2**64 - 1), st.integers(-(10**12), 10**19),
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(Real, st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(Number, st.integers(-5, 5)), st.builds(Text, FRIENDLY_TEXT),
    st.builds(datetime.combine, st.dates(), st.times(), ZONES),
    st.dates(), st.uuids(), st.sampled_from([*Color, *Level, *Flavour]),
    st.decimals(places=2, min_value=-(10**6), max_value=10**6),
)
HOSTILE = st.one_of(
    TEXT, st.integers(-(2**70), 2**70), st.floats(), st.decimals(),
    st.sampled_from([b"x", time(1, 2), timedelta(1), object(), frozenset({1}), range(2)]),
)


def _containers(keys: st.SearchStrategy[Any]) -> Any:
    def build(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.lists(children, max_size=4),
            st.tuples(children, children),
            st.dictionaries(keys, children, max_size=4),
            st.builds(Point, children, children),
            st.builds(Frozen, st.dictionaries(st.text(max_size=3), children, max_size=3)),
        )
    return build


FRIENDLY_VALUES = st.recursive(FRIENDLY, _containers(FRIENDLY_KEYS), max_leaves=16)
VALUES = st.one_of(
    FRIENDLY_VALUES,
    st.recursive(st.one_of(FRIENDLY, HOSTILE), _containers(KEYS), max_leaves=16),
    st.sets(st.integers(0, 3), min_size=1, max_size=2),
    st.tuples(st.integers(28, 36), st.sampled_from(["dict", "list"])).map(
        lambda args: chain(*args)),
)
DATA = st.one_of(st.dictionaries(FRIENDLY_KEYS, FRIENDLY_VALUES, max_size=6),
                 st.dictionaries(KEYS, VALUES, max_size=6))


def mutate(value: Any) -> None:
    if type(value) is dict:
        for item in list(value.values()):
            mutate(item)
        value.clear()
        value["mutated"] = True
    elif type(value) is list:
        for item in list(value):
            mutate(item)
        value[:] = ["mutated"]
    elif isinstance(value, (tuple, Point)):
        for item in (value if isinstance(value, tuple) else (value.x, value.y)):
            mutate(item)


def plain(value: Any) -> bool:
    if type(value) is dict:
        return all(type(k) is str and plain(v) for k, v in value.items())
    if type(value) is list:
        return all(plain(v) for v in value)
    return value is None or type(value) in (str, int, float, bool)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=DATA, kind=st.sampled_from(["track", "identify", "track_anonymous"]))
def test_the_snapshot_is_the_documented_normalisation(data: dict[Any, Any], kind: str) -> None:
    findings: list[Finding] = []
    guards = Guards(GuardPolicy(silence=frozenset({"OCDP115"}), email_hint="off"),
                    findings.append)
    field = "attributes" if kind == "identify" else "properties"
    try:
        expected = reference_top(data, field)
    except Refused as refused:
        event(f"refused {refused.code}")
        with pytest.raises(ValidationError) as err:
            _call(guards, kind, data)
        assert (err.value.code, err.value.field) == (refused.code, refused.field)
        return
    event("accepted")
    out = _call(guards, kind, data)
    encoded = orjson.dumps(out)  # never raises
    assert encoded == orjson.dumps(expected)
    assert plain(out)
    mutate(data)
    assert orjson.dumps(out) == encoded


def _call(guards: Guards, kind: str, data: dict[Any, Any]) -> Any:
    if kind == "identify":
        return guards.identify("42", data, None)[1]
    if kind == "track":
        return guards.track("42", "order_placed", data, None)[2]
    return guards.track_anonymous("anon-1", "order_placed", data, None)[2]


@settings(max_examples=200, deadline=None)
@given(data=st.dictionaries(st.text(max_size=8), st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 10**11), st.floats(max_value=1e11),
    st.text(max_size=8)), max_size=8))
def test_flat_plain_data_takes_the_fast_path_to_the_same_result(data: dict[str, Any]) -> None:
    try:
        expected = reference_top(data, "properties")
    except Refused as refused:
        assert (refusal(data)) == (refused.code, refused.field)
        return
    out = props(data)
    assert orjson.dumps(out) == orjson.dumps(expected) and out is not data


def test_objects_that_pretend_to_be_plain_are_refused() -> None:
    from unittest import mock

    assert refusal({"v": mock.Mock(spec=str)}) == ("OCDP132", "properties.v")
    assert refusal({"v": mock.MagicMock(spec=int)}) == ("OCDP132", "properties.v")
    with pytest.raises(ValidationError) as err:
        props(mock.MagicMock(spec=dict))
    assert err.value.code in ("OCDP132", "OCDP134")
    guards = make()
    for call, code in ((lambda: guards.track(mock.Mock(spec=str), "e", None, None), "OCDP110"),
                       (lambda: guards.track("42", mock.Mock(spec=str), None, None), "OCDP120"),
                       (lambda: guards.identify(mock.MagicMock(spec=int), None, None),
                        "OCDP110")):
        with pytest.raises(ValidationError) as err:
            call()
        assert err.value.code == code
