"""Every rule's documented examples: each bad one is caught, each good one is clean."""

from __future__ import annotations

import pytest

from opencdp.guards import RULES, Example, Rule
from opencdp.guards.examples import run_example

CASES = [
    pytest.param(rule, example, id=f"{code}-{which}-{i}")
    for code, rule in sorted(RULES.items())
    for which in ("bad", "good")
    for i, example in enumerate(rule.examples(which))
]


@pytest.mark.parametrize(("rule", "example"), CASES)
def test_example(rule: type[Rule], example: Example) -> None:
    outcome = run_example(example)
    if example in rule.examples("bad"):
        assert rule.code in outcome.codes, (
            f"{rule.code} missed its bad example; found {sorted(outcome.codes)}")
    else:
        assert outcome.codes == set(), (
            f"{rule.code}'s good example raised {sorted(outcome.codes)}: "
            f"{[f.message for f in outcome.findings]} {outcome.refusal}")


def test_every_rule_has_bad_and_good_examples() -> None:
    for rule in RULES.values():
        assert rule.examples("bad") and rule.examples("good"), rule.code
        assert rule.code.startswith("OCDP1") and len(rule.code) == 7
