"""The README keeps the project's promises: the two commands first, every code documented,
generated tables current, the public surface sorted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import opencdp

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    head = README[:400]
    assert "make demo" in head and "make test" in head


def test_generated_code_tables_are_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "update_readme.py"),
                             "--check"], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_every_code_used_in_the_source_is_documented() -> None:
    used = set()
    for path in (ROOT / "src" / "opencdp").rglob("*.py"):
        used.update(re.findall(r"OCDP\d{3}", path.read_text()))
    missing = sorted(code for code in used if code not in README)
    assert not missing, f"codes not in README.md: {missing}"


def test_public_surface_is_small_and_sorted() -> None:
    assert opencdp.__all__ == sorted(opencdp.__all__)
    for name in ("Client", "AsyncClient", "CustomerIO", "ValidationError", "OpenCDPError"):
        assert name in opencdp.__all__
