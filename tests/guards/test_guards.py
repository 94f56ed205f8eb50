"""Guards: once-per-cause reporting, counting, silence, strict mode, caching and inspect."""

from __future__ import annotations

import dataclasses
import enum
import math
import threading
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from opencdp.errors import ConfigurationError, ValidationError
from opencdp.guards import Finding, GuardPolicy, Guards
from opencdp.guards.events import check_event_name
from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid


class Recorder:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def __call__(self, finding: Finding) -> None:
        self.findings.append(finding)

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]


def make(**policy: Any) -> tuple[Guards, Recorder]:
    rec = Recorder()
    return Guards(GuardPolicy(**policy), rec), rec


def msg(kind: str, data: Any, name: str | None = None,
        destinations: int = OPENCDP | CUSTOMERIO) -> Message:
    return Message(new_ulid(), kind, "42", name, data, None, destinations)


# -- reporting -------------------------------------------------------------------------------

def test_a_warning_is_reported_once_per_cause_and_counted_every_time() -> None:
    guards, rec = make()
    guards.identify("42", {"email": "a@example.com"}, None)
    for _ in range(3):
        assert guards.track("42", "UserSignedUp", None, None)[1] == "UserSignedUp"
    guards.track("42", "user-signed-up", None, None)
    assert rec.codes == ["OCDP121", "OCDP121"]
    assert "UserSignedUp" in rec.findings[0].message
    assert rec.findings[0].field == "event" and rec.findings[0].severity == "warning"
    assert guards.counts() == {"OCDP121": 4}


def test_silenced_codes_are_counted_but_not_reported_nor_refused_in_strict_mode() -> None:
    guards, rec = make(silence=frozenset({"OCDP121", "OCDP115"}), strict=True)
    guards.track("42", "UserSignedUp", None, None)
    assert rec.findings == []
    assert guards.counts() == {"OCDP115": 1, "OCDP121": 1}


def test_silence_accepts_any_iterable_and_refuses_malformed_codes() -> None:
    assert GuardPolicy(silence={"OCDP101"}).silence == frozenset({"OCDP101"})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        GuardPolicy(silence=frozenset({"W101"}))
    with pytest.raises(ConfigurationError):
        GuardPolicy(email_hint="loud")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        GuardPolicy(max_event_names=0)


def test_strict_mode_refuses_every_warning_naming_the_field() -> None:
    guards, rec = make(strict=True)
    guards.identify("42", {"email": "a@example.com"}, None)
    with pytest.raises(ValidationError) as err:
        guards.track("42", "order_placed", None, 1704067200000)
    assert (err.value.field, err.value.code) == ("timestamp", "OCDP101")
    assert str(err.value).startswith("OCDP101 ")
    with pytest.raises(ValidationError) as err:
        guards.identify("ada@example.com", {"email": "ada@example.com"}, None)
    assert (err.value.field, err.value.code) == ("user_id", "OCDP111")
    for _ in range(2):  # refused on every call, not only the first
        with pytest.raises(ValidationError):
            guards.track("42", "OrderPlaced", None, None)
    assert rec.findings == []
    assert guards.counts()["OCDP121"] == 2


def test_refusals_raise_and_are_counted_but_not_reported() -> None:
    guards, rec = make(silence=frozenset({"OCDP115"}))
    with pytest.raises(ValidationError) as err:
        guards.track("42", "viewed_product_83412", None, None)
    assert (err.value.code, err.value.field) == ("OCDP122", "event")
    assert "83412" not in str(err.value)
    assert rec.findings == [] and guards.counts() == {"OCDP115": 1, "OCDP122": 1}


def test_pii_refusal_can_be_silenced_and_becomes_a_counted_pass() -> None:
    guards, rec = make(silence=frozenset({"OCDP122", "OCDP115"}))
    assert guards.track("42", "http_404_seen", None, None)[1] == "http_404_seen"
    assert guards.track("42", "http_404_seen", None, None)[1] == "http_404_seen"
    assert rec.findings == [] and guards.counts()["OCDP122"] == 2


@pytest.mark.parametrize(("hint", "expected"), [("debug", "debug"), ("warning", "warning"),
                                                ("off", None)])
def test_email_hint_level(hint: Any, expected: str | None) -> None:
    guards, rec = make(email_hint=hint)
    guards.identify("1", {"name": "Ada"}, None)
    guards.identify("2", None, None)
    assert [f.severity for f in rec.findings] == ([expected] if expected else [])


def test_email_hint_as_warning_is_refused_in_strict_mode_but_debug_is_not() -> None:
    guards, _ = make(strict=True)
    guards.identify("1", {"name": "Ada"}, None)
    guards, _ = make(strict=True, email_hint="warning")
    with pytest.raises(ValidationError) as err:
        guards.identify("1", {"name": "Ada"}, None)
    assert err.value.code == "OCDP131"


def test_each_cause_is_reported_once_across_threads() -> None:
    guards, rec = make(silence=frozenset({"OCDP115"}))
    barrier = threading.Barrier(8, timeout=10)

    def worker() -> None:
        barrier.wait()
        for _ in range(500):
            guards.track("42", "OrderPlaced", {"a": 1}, None)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert rec.codes == ["OCDP121"]
    assert guards.counts()["OCDP121"] == 4000


# -- caching ---------------------------------------------------------------------------------

def test_event_names_are_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = check_event_name

    def counting(value: object, *args: Any) -> Any:
        calls.append(value)
        return real(value, *args)

    monkeypatch.setattr("opencdp.guards._guards.check_event_name", counting)
    guards, rec = make()
    guards.identify("42", {"email": "a@example.com"}, None)
    for _ in range(100):
        guards.track("42", "order_placed", {"a": 1}, None)
        guards.track("42", "OrderPlaced", None, None)
    assert calls == ["order_placed", "OrderPlaced"]
    assert rec.codes == ["OCDP121"] and guards.counts() == {"OCDP121": 100}


def test_track_before_identify_warns_once_per_user_and_counts_each_call() -> None:
    guards, rec = make()
    for _ in range(3):
        guards.track("7", "order_placed", None, None)
    guards.track("8", "order_placed", None, None)
    guards.identify("9", {"email": "a@example.com"}, None)
    guards.track("9", "order_placed", None, None)
    guards.track_anonymous("anon-1", "order_placed", None, None)
    assert rec.codes == ["OCDP115", "OCDP115"]
    assert [f.field for f in rec.findings] == ["user_id", "user_id"]
    assert guards.counts() == {"OCDP115": 4}


def test_identified_ids_are_remembered_within_a_bound() -> None:
    guards, rec = make(remember_ids=4)
    for i in range(10):
        guards.identify(str(i), {"email": "a@example.com"}, None)
    guards.track("9", "order_placed", None, None)
    assert rec.codes == []
    guards.track("0", "order_placed", None, None)
    assert rec.codes == ["OCDP115"]


def test_a_recently_checked_id_in_the_older_generation_is_kept() -> None:
    guards, rec = make(remember_ids=4)
    guards.identify("a", {"email": "a@example.com"}, None)
    guards.identify("b", {"email": "a@example.com"}, None)  # young is full: a, b become old
    guards.track("a", "order_placed", None, None)  # promoted back to young
    guards.identify("c", {"email": "a@example.com"}, None)
    guards.identify("d", {"email": "a@example.com"}, None)
    guards.track("a", "order_placed", None, None)
    assert rec.codes == []


def test_cardinality_warns_once_with_the_top_families() -> None:
    guards, rec = make(max_event_names=3)
    guards.identify("42", {"email": "a@example.com"}, None)
    for page in ("home", "pricing", "docs", "blog", "about"):
        guards.track("42", f"viewed_{page}", None, None)
    guards.track("42", "viewed_home", None, None)
    assert rec.codes == ["OCDP123"]
    assert "4 distinct names" in rec.findings[0].message
    assert "viewed_* (4)" in rec.findings[0].message
    assert guards.counts() == {"OCDP123": 2}


# -- call-time normalisation -----------------------------------------------------------------

def test_identifiers_are_trimmed_and_ints_become_text() -> None:
    guards, _ = make()
    uid, _, ts = guards.identify(42, {"email": "a@example.com"}, None)
    assert (uid, ts) == ("42", None)
    assert guards.track(" 42 ", " order_placed ", None, None)[:2] == ("42", "order_placed")
    assert guards.identifier(7, "device_id") == "7"


@pytest.mark.parametrize("bad", ["", "   ", None, 1.5, True, ["42"]])
def test_bad_identifiers_are_refused(bad: object) -> None:
    guards, _ = make()
    with pytest.raises(ValidationError) as err:
        guards.track(bad, "order_placed", None, None)
    assert (err.value.code, err.value.field) == ("OCDP110", "user_id")


def test_identify_folds_anonymous_id_into_the_attributes() -> None:
    guards, _ = make()
    attrs = {"email": "a@example.com"}
    _, out, _ = guards.identify("42", attrs, None, "anon-7f3a")
    assert out == {"email": "a@example.com", "anonymous_id": "anon-7f3a"}
    assert attrs == {"email": "a@example.com"}
    with pytest.raises(ValidationError) as err:
        guards.identify("42", attrs, None, "  ")
    assert err.value.field == "anonymous_id"


def test_properties_may_be_mappings_dataclasses_or_models() -> None:
    @dataclasses.dataclass
    class Order:
        order_id: str
        total: float

    class Model:
        def model_dump(self, mode: str) -> dict[str, Any]:
            return {"order_id": "A2"}

    class Frozen(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            return {"k": 1}[key]

        def __iter__(self) -> Any:
            return iter(["k"])

        def __len__(self) -> int:
            return 1

    guards, _ = make(silence=frozenset({"OCDP115"}))
    assert guards.track("1", "e", Order("A1", 9.5), None)[2] == {"order_id": "A1", "total": 9.5}
    assert guards.track("1", "e", Model(), None)[2] == {"order_id": "A2"}
    assert guards.track("1", "e", Frozen(), None)[2] == {"k": 1}
    with pytest.raises(ValidationError) as err:
        guards.track("1", "e", ["A1"], None)
    assert (err.value.code, err.value.field) == ("OCDP134", "properties")


def test_too_many_attributes_are_refused_at_call_time() -> None:
    guards, _ = make()
    with pytest.raises(ValidationError) as err:
        guards.identify("42", {f"a{i}": i for i in range(301)}, None)
    assert err.value.code == "OCDP135"


# -- inspect ---------------------------------------------------------------------------------

def test_inspect_returns_the_same_message_when_nothing_changes() -> None:
    guards, rec = make()
    m = msg("track", {"a": 1, "b": [1.5, "x", None, True], "c": {"d": "e"}}, "order_placed")
    assert guards.inspect(m) is m
    none = msg("suppress", None)
    assert guards.inspect(none) is none
    assert rec.findings == []


def test_inspect_names_the_path_of_a_bad_value() -> None:
    guards, _ = make()
    data = {"items": [{"sku": "A1"}, {"sku": b"A2"}]}
    with pytest.raises(ValidationError) as err:
        guards.inspect(msg("track", data, "order_placed"))
    assert (err.value.code, err.value.field) == ("OCDP132", "properties.items[1].sku")
    with pytest.raises(ValidationError) as err:
        guards.inspect(msg("identify", {"score": math.inf}))
    assert (err.value.code, err.value.field) == ("OCDP133", "attributes.score")
    for bad in ({"n": Decimal(1)}, {"n": {1, 2}}, {"n": {1: "x"}}, {"n": 2**70}, {"n": object()}):
        with pytest.raises(ValidationError) as err:
            guards.inspect(msg("track", bad, "e"))
        assert err.value.code == "OCDP132", bad


def test_inspect_converts_friendly_types_without_touching_the_input() -> None:
    class Plan(enum.Enum):
        PRO = "pro"

    guards, rec = make()
    ident = uuid.UUID(int=5)
    moment = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    data = {"when": moment, "day": date(2024, 1, 2), "id": ident, "plan": Plan.PRO,
            "pair": (1, 2), "nested": [{"at": moment}]}
    out = guards.inspect(msg("track", data, "e"))
    assert out.data == {"when": 1704063600, "day": "2024-01-02", "id": str(ident),
                        "plan": "pro", "pair": [1, 2], "nested": [{"at": 1704063600}]}
    assert data["when"] is moment and data["pair"] == (1, 2)
    assert rec.findings == []


def test_inspect_converts_millisecond_time_attributes_once_per_name() -> None:
    guards, rec = make()
    m = guards.inspect(msg("identify", {"created_at": 1704067200000, "login_time": 1704067200,
                                        "created": 1704067200123456, "count": 10**12}))
    assert m.data == {"created_at": 1704067200, "login_time": 1704067200,
                      "created": 1704067200, "count": 10**12}
    guards.inspect(msg("track", {"created_at": 1704067200000.0}, "e"))
    assert rec.codes == ["OCDP104", "OCDP104"]
    assert {f.field for f in rec.findings} == {"attributes.created_at", "attributes.created"}
    assert guards.counts() == {"OCDP104": 3}


def test_naive_datetimes_in_data_are_utc_with_a_warning() -> None:
    guards, rec = make()
    m = guards.inspect(msg("identify", {"signup_at": datetime(2024, 1, 1)}))
    assert m.data == {"signup_at": 1704067200}
    assert rec.codes == ["OCDP102"]


def test_type_drift_is_reported_once_per_attribute() -> None:
    guards, rec = make()
    guards.inspect(msg("identify", {"plan": "premium", "score": 1, "tags": None}))
    guards.inspect(msg("identify", {"plan": 1, "score": 2.5, "tags": ["a"]}))
    guards.inspect(msg("identify", {"plan": True}))
    assert rec.codes == ["OCDP130"]
    assert rec.findings[0].field == "attributes.plan"
    assert "was string, now number" in rec.findings[0].message
    assert guards.counts() == {"OCDP130": 2}


def test_size_limits_apply_to_messages_for_customerio() -> None:
    guards, _ = make()
    long_value = {"bio": "é" * 501}  # 1002 bytes
    with pytest.raises(ValidationError) as err:
        guards.inspect(msg("identify", long_value))
    assert (err.value.code, err.value.field) == ("OCDP135", "attributes.bio")
    with pytest.raises(ValidationError):
        guards.inspect(msg("identify", {"n" * 151: 1}))
    with pytest.raises(ValidationError):
        guards.inspect(msg("identify", {"list": list(range(300))}))
    big = {"rows": ["x" * 1000] * 100}
    with pytest.raises(ValidationError) as err:
        guards.inspect(msg("track", big, "e"))
    assert err.value.code == "OCDP136"
    assert guards.inspect(msg("track", big, "e", destinations=OPENCDP)).data is big
    assert guards.inspect(msg("identify", long_value, destinations=OPENCDP)).data is long_value


def test_customerio_call_time_limits_can_be_turned_off() -> None:
    guards, _ = make(customerio_limits=False, silence=frozenset({"OCDP115"}))
    assert guards.track("u" * 200, "e" * 200, None, None)[0] == "u" * 200
    guards, _ = make()
    with pytest.raises(ValidationError) as err:
        guards.track("u" * 200, "order_placed", None, None)
    assert err.value.code == "OCDP113"
    with pytest.raises(ValidationError) as err:
        guards.track("42", "e" * 101, None, None)
    assert err.value.code == "OCDP124"


def test_a_failing_report_callback_never_reaches_the_caller(
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(finding: Finding) -> None:
        raise RuntimeError("log handler down")

    guards = Guards(GuardPolicy(), broken)
    assert guards.track("42", "order_placed", None, None)[1] == "order_placed"
    assert "reporting OCDP115 failed" in caplog.text
    assert guards.counts() == {"OCDP115": 1}
