"""Every rule's documented examples: each bad one is reported on exactly its marked lines,
each good one is reported nowhere (by any rule)."""

from __future__ import annotations

import re

import pytest
from audit_markers import expected, found

from opencdp.audit import Rule, Severity, all_rules, audit_source, get_rule
from opencdp.audit.rules.event_name_case import to_snake_case

RULES = all_rules()


def _examples(kind: str) -> list[object]:
    return [
        pytest.param(rule, example, id=f"{rule.code}-{kind}-{index}")
        for rule in RULES
        for index, example in enumerate(getattr(rule, kind))
    ]


@pytest.mark.parametrize(("rule", "example"), _examples("INVALID"))
def test_invalid_example_is_reported_on_marked_lines(rule: type[Rule], example: str) -> None:
    marks = expected(example, rule.EXAMPLE_PATH)
    assert rule.code in {code for _, code in marks}, "a bad example must mark its own code"
    result = audit_source(example, rule.EXAMPLE_PATH)
    assert found(result) == marks
    for finding in result.findings:
        assert "\n" not in finding.message


@pytest.mark.parametrize(("rule", "example"), _examples("VALID"))
def test_valid_example_is_clean(rule: type[Rule], example: str) -> None:
    result = audit_source(example, rule.EXAMPLE_PATH)
    assert result.findings == ()
    assert result.score == 100


def test_codes_are_unique_sorted_and_in_the_audit_range() -> None:
    codes = [rule.code for rule in RULES]
    assert codes == sorted(set(codes))
    assert all(re.fullmatch(r"OCDP2\d\d", code) for code in codes)


@pytest.mark.parametrize("rule", RULES, ids=[r.code for r in RULES])
def test_rule_is_documented(rule: type[Rule]) -> None:
    assert re.fullmatch(r"[a-z]+(?:-[a-z]+)*", rule.name)
    assert isinstance(rule.severity, Severity)
    assert rule.summary() and rule.explanation()
    assert rule.message and "\n" not in rule.message and len(rule.message) <= 90
    assert rule.VALID and rule.INVALID
    assert get_rule(rule.code.lower()) is rule


def test_public_surface_is_small_and_sorted() -> None:
    import opencdp.audit

    exported = opencdp.audit.__all__
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    assert all(hasattr(opencdp.audit, name) for name in exported)


def test_names_are_unique() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))


def test_unknown_code_is_a_named_key_error() -> None:
    with pytest.raises(KeyError, match="OCDP299"):
        get_rule("OCDP299")


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("UserSignedUp", "user_signed_up"),
        ("user-signed-up", "user_signed_up"),
        ("Order Completed", "order_completed"),
        ("HTTPRequestFailed", "http_request_failed"),
        ("cart.viewed", "cart_viewed"),
    ],
)
def test_snake_case_suggestion(name: str, snake: str) -> None:
    assert to_snake_case(name) == snake
