"""Guards: once-per-cause reporting, counting, silence, strict mode, caching, snapshots."""

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


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_lenient_codes_warn_once_with_their_code_and_let_the_value_through(strict: bool
                                                                          ) -> None:
    guards, rec = make(lenient={"OCDP122", "OCDP104"}, strict=strict,
                       silence=frozenset({"OCDP115"}))
    for _ in range(3):
        assert guards.track("42", "viewed_product_12345678", {"seen_at": 1704067200123},
                            None)[1:3] == ("viewed_product_12345678",
                                           {"seen_at": 1704067200123})
        assert guards.identify("42", {"email": "a@example.com", "created_at": 1704067200000},
                               None)[1] == {"email": "a@example.com",
                                            "created_at": 1704067200000}
    assert sorted((f.code, f.field, f.severity) for f in rec.findings) == [
        ("OCDP104", "attributes.created_at", "warning"),
        ("OCDP104", "properties.seen_at", "warning"),
        ("OCDP122", "event", "warning")]
    pii = next(f for f in rec.findings if f.code == "OCDP122")
    assert "a number (an id?)" in pii.message and "12345678" not in pii.message
    assert guards.counts() == {"OCDP104": 6, "OCDP115": 1, "OCDP122": 3}


@pytest.mark.parametrize("policy", [{"lenient": {"OCDP122"}}, {"silence": {"OCDP122"}}])
def test_a_name_with_personal_data_is_never_logged_by_any_rule(policy: Any) -> None:
    guards, rec = make(**policy)
    guards.identify("42", {"email": "a@example.com"}, None)
    for _ in range(2):
        assert guards.track("42", "SmsTo+14155551234", None, None)[1] == "SmsTo+14155551234"
    assert "OCDP121" in rec.codes
    assert not [f.message for f in rec.findings if "4155551234" in f.message]
    assert guards.counts()["OCDP121"] == guards.counts()["OCDP122"] == 2


def test_relax_makes_a_built_guards_lenient() -> None:
    guards, rec = make(silence=frozenset({"OCDP115"}))
    with pytest.raises(ValidationError):
        guards.track("42", "order_2024_11_05", None, None)
    guards.relax({"OCDP122"})
    assert guards.policy.lenient == {"OCDP122"}
    assert guards.track("42", "order_2024_11_05", None, None)[1] == "order_2024_11_05"
    assert [(f.code, "a date" in f.message) for f in rec.findings] == [("OCDP122", True)]
    assert guards.track("42", "x", {"sent_at": 1704067200000}, None)[2] == {
        "sent_at": 1704067200}


@pytest.mark.parametrize("codes", [{"OCDP132"}, {"OCDP121"}, {"OCDP999"}, {"nope"}])
def test_only_rules_that_can_let_a_value_through_are_lenient(codes: set[str]) -> None:
    with pytest.raises(ConfigurationError) as err:
        GuardPolicy(lenient=frozenset(codes))
    assert "lenient" in str(err.value)


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


def test_track_before_identify_is_reported_once_per_process_and_counted_each_call() -> None:
    guards, rec = make()
    for _ in range(3):
        guards.track("7", "order_placed", None, None)
    for i in range(1000):
        guards.track(f"user-{i}", "order_placed", None, None)
    guards.identify("9", {"email": "a@example.com"}, None)
    guards.track("9", "order_placed", None, None)
    guards.track_anonymous("anon-1", "order_placed", None, None)
    assert rec.codes == ["OCDP115"]
    assert rec.findings[0].field == "user_id"
    assert "7" not in rec.findings[0].message
    assert guards.counts() == {"OCDP115": 1003}


def test_track_before_identify_is_never_refused_in_strict_mode() -> None:
    guards, rec = make(strict=True)
    for _ in range(3):
        assert guards.track("7", "order_placed", None, None)[0] == "7"
    assert rec.codes == ["OCDP115"] and guards.counts() == {"OCDP115": 3}


def test_track_before_identify_is_not_reported_again_after_the_interval() -> None:
    now = [0.0]
    rec = Recorder()
    guards = Guards(GuardPolicy(report_interval=10), rec, clock=lambda: now[0])
    guards.track("7", "order_placed", None, None)
    now[0] = 1000.0
    guards.track("8", "order_placed", None, None)
    assert rec.codes == ["OCDP115"]


def test_a_cause_is_reported_again_after_the_interval_with_the_count_in_between() -> None:
    now = [0.0]
    rec = Recorder()
    guards = Guards(GuardPolicy(report_interval=60), rec, clock=lambda: now[0])
    guards.identify("42", {"email": "a@example.com"}, None)
    for _ in range(5):
        guards.track("42", "order_placed", None, 1704067200000)
    now[0] = 59.9
    guards.track("42", "order_placed", None, 1704067200000)
    assert rec.codes == ["OCDP101"]
    now[0] = 60.0
    guards.track("42", "order_placed", None, 1704067200000)
    assert rec.codes == ["OCDP101", "OCDP101"]
    assert rec.findings[1].message.endswith("(5 more since the last report)")
    assert guards.counts() == {"OCDP101": 7}


def test_report_interval_is_validated() -> None:
    for bad in (-1, "60", True, float("nan")):
        with pytest.raises(ConfigurationError):
            GuardPolicy(report_interval=bad)  # type: ignore[arg-type]


def test_identifier_warnings_are_reported_per_field_never_per_id() -> None:
    guards, rec = make(email_hint="off")
    for i in range(500):
        guards.identify(f"user{i}@example.com", None, None)
        guards.identify(f"+44 20 7946 {i:04d}", None, None)
        guards.identify(f"cio_{i}", None, None)
    assert sorted(rec.codes) == ["OCDP111", "OCDP112", "OCDP114"]
    assert all("example.com" not in f.message and "7946" not in f.message
               for f in rec.findings)
    assert guards.counts() == {"OCDP111": 500, "OCDP112": 500, "OCDP114": 500}


def test_naive_datetimes_in_a_list_make_one_report() -> None:
    guards, rec = make()
    guards.identify("42", {"email": "a@example.com",
                           "logins": [datetime(2024, 1, d) for d in range(1, 29)]}, None)
    assert rec.codes == ["OCDP102"]
    assert guards.counts() == {"OCDP102": 28}


def test_remembered_causes_are_bounded() -> None:
    guards, rec = make(remember_ids=10, email_hint="off")
    for i in range(100):
        guards.identify("42", {f"a{i}_at": 1704067200000}, None)
    assert rec.codes == ["OCDP104"] * 100  # one cause per attribute name
    assert len(guards._reporter._throttle) <= 10


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


def test_customerio_only_limits_are_not_refused_at_the_call() -> None:
    guards, _ = make(silence=frozenset({"OCDP115", "OCDP121"}))
    many = {f"a{i}": i for i in range(301)}
    assert guards.identify("42", many, None)[1] == many
    assert guards.identify("42", {"bio": "x" * 5000, "n" * 200: 1}, None)[1] is not None
    assert guards.track("u" * 255, "e" * 255, {"rows": ["x" * 1000] * 200}, None)[0] == "u" * 255


def test_gateway_limits_are_refused_at_the_call() -> None:
    guards, _ = make(silence=frozenset({"OCDP115"}))
    with pytest.raises(ValidationError) as err:
        guards.track("u" * 256, "order_placed", None, None)
    assert (err.value.code, err.value.field) == ("OCDP113", "user_id")
    with pytest.raises(ValidationError) as err:
        guards.track("42", "e" * 256, None, None)
    assert (err.value.code, err.value.field) == ("OCDP124", "event")


def test_identify_returns_a_snapshot_independent_of_the_input() -> None:
    guards, _ = make()
    tags = ["a"]
    attrs = {"email": "a@example.com", "tags": tags, "address": {"city": "Oslo"}}
    _, out, _ = guards.identify("42", attrs, None)
    tags.append("b")
    attrs["address"]["city"] = "Bergen"  # type: ignore[index]
    attrs["email"] = "b@example.com"
    assert out == {"email": "a@example.com", "tags": ["a"], "address": {"city": "Oslo"}}


def test_track_returns_a_copy_even_for_flat_plain_data() -> None:
    guards, _ = make(silence=frozenset({"OCDP115"}))
    props = {"order_id": "A1", "total": 9.5}
    out = guards.track("42", "order_placed", props, None)[2]
    assert out == props and out is not props


@pytest.mark.parametrize(("bad", "code", "field"), [
    ({"items": [{"sku": "A1"}, {"sku": b"A2"}]}, "OCDP132", "properties.items[1].sku"),
    ({"score": math.inf}, "OCDP133", "properties.score"),
    ({"name": "caf\udce9"}, "OCDP156", "properties.name"),
    ({"n": {1, 2}}, "OCDP132", "properties.n"),
    ({"n": {1: "x"}}, "OCDP132", "properties.n"),
    ({"n": 2**64}, "OCDP132", "properties.n"),
    ({"n": object()}, "OCDP132", "properties.n"),
])
def test_values_the_encoder_refuses_are_refused_at_the_call_naming_the_path(
        bad: dict[str, Any], code: str, field: str) -> None:
    guards, _ = make(silence=frozenset({"OCDP115"}))
    for call in (lambda: guards.track("42", "e", bad, None),
                 lambda: guards.track_anonymous("anon-1", "e", bad, None)):
        with pytest.raises(ValidationError) as err:
            call()
        assert (err.value.code, err.value.field) == (code, field)
    with pytest.raises(ValidationError) as err:
        guards.identify("42", bad, None)
    assert (err.value.code, err.value.field) == (code, field.replace("properties", "attributes"))


def test_friendly_types_are_converted_without_touching_the_input() -> None:
    class Plan(enum.Enum):
        PRO = "pro"

    guards, rec = make(silence=frozenset({"OCDP115"}))
    ident = uuid.UUID(int=5)
    moment = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    data = {"when": moment, "day": date(2024, 1, 2), "id": ident, "plan": Plan.PRO,
            "pair": (1, 2), "nested": [{"at": moment}], "price": Decimal("9.99")}
    out = guards.track("42", "e", data, None)[2]
    assert out == {"when": 1704063600, "day": "2024-01-02", "id": str(ident),
                   "plan": "pro", "pair": [1, 2], "nested": [{"at": 1704063600}],
                   "price": 9.99}
    assert data["when"] is moment and data["pair"] == (1, 2)
    assert rec.findings == []


def test_millisecond_time_attributes_are_converted_once_per_name() -> None:
    guards, rec = make(silence=frozenset({"OCDP115"}))
    _, out, _ = guards.identify("42", {"email": "a@example.com", "created_at": 1704067200000,
                                       "login_time": 1704067200, "created": 1704067200123456,
                                       "count": 10**12}, None)
    assert out == {"email": "a@example.com", "created_at": 1704067200,
                   "login_time": 1704067200, "created": 1704067200, "count": 10**12}
    guards.track("42", "e", {"created_at": 1704067200000.0}, None)
    assert rec.codes == ["OCDP104", "OCDP104"]  # once per attribute name
    assert {f.field for f in rec.findings} == {"attributes.created_at", "attributes.created"}
    assert guards.counts() == {"OCDP104": 3}


def test_naive_datetimes_in_data_are_utc_with_a_warning() -> None:
    guards, rec = make()
    _, out, _ = guards.identify("42", {"email": "a@example.com",
                                       "signup_at": datetime(2024, 1, 1)}, None)
    assert out == {"email": "a@example.com", "signup_at": 1704067200}
    assert rec.codes == ["OCDP102"]


def test_type_drift_is_reported_once_per_attribute() -> None:
    guards, rec = make(email_hint="off")
    guards.identify("1", {"plan": "premium", "score": 1, "tags": None}, None)
    guards.identify("2", {"plan": 1, "score": 2.5, "tags": ["a"]}, None)
    guards.identify("3", {"plan": True}, None)
    assert rec.codes == ["OCDP130"]
    assert rec.findings[0].field == "attributes.plan"
    assert "was string, now number" in rec.findings[0].message
    assert guards.counts() == {"OCDP130": 2}


def test_hostile_mappings_are_refused_with_a_validation_error() -> None:
    class Broken(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise KeyError(key)

        def __iter__(self) -> Any:
            raise RuntimeError("boom")

        def __len__(self) -> int:
            return 1

    class BadModel:
        def model_dump(self, mode: str) -> dict[str, Any]:
            raise RuntimeError("boom")

    guards, _ = make(silence=frozenset({"OCDP115"}))
    for bad in (Broken(), BadModel(), {"nested": Broken()}):
        with pytest.raises(ValidationError) as err:
            guards.track("42", "e", bad, None)
        assert err.value.code in ("OCDP132", "OCDP134")


def test_a_failing_report_callback_never_reaches_the_caller(
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(finding: Finding) -> None:
        raise RuntimeError("log handler down")

    guards = Guards(GuardPolicy(), broken)
    assert guards.track("42", "order_placed", None, None)[1] == "order_placed"
    assert "reporting OCDP115 failed" in caplog.text
    assert guards.counts() == {"OCDP115": 1}
