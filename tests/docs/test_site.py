"""The documentation site builds offline with ``mkdocs build --strict``: a broken link or
anchor, a page missing from the nav, or a docstring the API reference cannot read fails."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")


def test_the_site_builds_strict_and_offline(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           # any attempt to reach the network fails the build instead of waiting
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "NO_PROXY": ""}
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - start < 60
    codes = (tmp_path / "codes" / "index.html").read_text()
    assert 'id="ocdp305"' in codes and 'id="ocdp101"' in codes and 'id="ocdp201"' in codes
    api = (tmp_path / "api" / "opencdp" / "index.html").read_text()
    assert "opencdp.Client" in api or "Client" in api
    for page in tmp_path.rglob("*.html"):
        text = page.read_text()
        assert "fonts.googleapis.com" not in text, f"{page}: fetches fonts"
