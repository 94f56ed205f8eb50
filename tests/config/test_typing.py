"""mypy sees every option: a misspelt keyword or a wrong type is flagged before it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.typing_check import assert_flags_exactly_the_marked_lines


@pytest.mark.timeout(180)
def test_type_checkers_check_options() -> None:
    assert_flags_exactly_the_marked_lines(Path(__file__).with_name("typing_options.py"))
