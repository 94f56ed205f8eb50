"""Run mypy on a sample file whose expected errors are marked ``# error`` at line ends."""

from __future__ import annotations

from pathlib import Path

import pytest


def assert_flags_exactly_the_marked_lines(source: Path) -> None:
    api = pytest.importorskip("mypy.api")
    expected = {i for i, line in enumerate(source.read_text().splitlines(), 1)
                if line.rstrip().endswith("# error")}
    out, err, _ = api.run([str(source), "--strict", "--follow-imports=silent",
                           "--no-incremental", "--cache-dir=/dev/null",
                           "--no-error-summary", "--hide-error-context"])
    lines = {int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line}
    assert lines == expected, out + err
