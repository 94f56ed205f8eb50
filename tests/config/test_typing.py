"""mypy sees every option: a misspelt keyword or a wrong type is flagged before it runs."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.timeout(180)
def test_type_checkers_check_options() -> None:
    api = pytest.importorskip("mypy.api")
    source = Path(__file__).with_name("typing_options.py")
    expected = {i for i, line in enumerate(source.read_text().splitlines(), 1)
                if line.rstrip().endswith("# error")}
    out, err, _ = api.run([str(source), "--strict", "--follow-imports=silent",
                           "--no-incremental", "--cache-dir=/dev/null",
                           "--no-error-summary", "--hide-error-context"])
    lines = {int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line}
    assert lines == expected, out + err
