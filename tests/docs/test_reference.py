"""The API reference shows every public name it lists with a docstring: the site renders
only documented members (``show_if_no_docstring: false``), so an undocumented method would
silently vanish from the reference."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

griffe = pytest.importorskip("griffe")
ROOT = Path(__file__).resolve().parents[2]


def _final(obj: Any) -> Any:
    return obj.final_target if obj.is_alias else obj


def _undocumented(obj: Any, found: set[str]) -> None:
    obj = _final(obj)
    if not obj.docstring:
        found.add(obj.path)
    kind = obj.kind.value
    if kind not in ("class", "module"):
        return
    for name, member in obj.members.items():
        if name.startswith("_") or (kind == "module" and name not in (obj.exports or ())):
            continue
        target = _final(member)
        if target.kind.value != "attribute" or kind == "module":
            _undocumented(target, found)


def test_every_name_the_reference_shows_has_a_docstring() -> None:
    loader = griffe.GriffeLoader(search_paths=[str(ROOT / "src")])
    package = loader.load("opencdp")
    loader.resolve_aliases(implicit=False, external=False)
    targets = [t for page in (ROOT / "docs" / "api").glob("*.md")
               for t in re.findall(r"^::: (\S+)", page.read_text(), re.M)]
    assert targets, "the reference pages list no objects"
    found: set[str] = set()
    for target in targets:
        obj = package
        for part in target.split(".")[1:]:
            obj = obj.members[part]
        _undocumented(obj, found)
    assert not found, f"undocumented in the API reference: {sorted(found)}"
