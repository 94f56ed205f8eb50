"""The architecture page cites only what the code does."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"


def test_every_code_the_page_cites_is_emitted_by_the_package() -> None:
    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in (ROOT / "src" / "opencdp").rglob("*.py")
                       if p.name not in ("codes.py", "explain.py"))
    cited = set(re.findall(r"OCDP\d{3}", PAGE.read_text(encoding="utf-8")))
    assert cited, "the page cites codes"
    assert sorted(code for code in cited if code not in source) == []


def test_every_file_the_page_walks_through_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    named = set(re.findall(r"[a-z_/]+\.py", text))
    files = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("[st]*/**/*.py")}
    missing = [n for n in named if not any(f == n or f.endswith("/" + n) for f in files)]
    assert named and sorted(missing) == []
