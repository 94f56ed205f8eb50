"""One version source: ``_version.py``, which the build reads and the package imports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import opencdp
from opencdp import _version

ROOT = Path(__file__).resolve().parents[1]


def test_the_build_reads_the_version_from_the_package() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"], "a second, static version"
    assert project["project"]["dynamic"] == ["version"]
    source = ROOT / project["tool"]["hatch"]["version"]["path"]
    assert source.resolve() == Path(_version.__file__).resolve()
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", opencdp.__version__)
