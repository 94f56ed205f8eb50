"""The README is the front page, here and on the package index: the two commands first, short,
and every link absolute (a relative link to docs/ breaks on the index) or an anchor. What it
held before (options, codes, guides) lives on the site; tests/docs/ checks those pages."""

from __future__ import annotations

import re
from pathlib import Path

import opencdp
from opencdp.codes import SITE_URL

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MAX_LINES = 200
LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>]+)>")


def test_readme_opens_with_the_two_commands() -> None:
    head = README[:400]
    assert "make demo" in head and "make test" in head


def test_readme_is_a_front_page_not_a_manual() -> None:
    lines = README.count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines; move detail to a page of docs/"


def test_every_readme_link_is_absolute_or_an_anchor() -> None:
    links = [a or b for a, b in LINK.findall(README)]
    assert len(links) >= 10
    relative = [link for link in links if not link.startswith(("https://", "#"))]
    assert not relative, f"relative links break on the package index: {relative}"
    anchors = {"#" + re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", README, re.M)}
    assert not [link for link in links if link.startswith("#") and link not in anchors]


def test_readme_links_to_site_pages_that_exist() -> None:
    for link in re.findall(rf"{re.escape(SITE_URL)}([\w/-]*)", README):
        page = link.strip("/") or "index"
        assert (ROOT / "docs" / f"{page}.md").is_file(), f"{SITE_URL}{link}: no docs/{page}.md"


def test_site_url_is_the_one_mkdocs_builds_for() -> None:
    assert f"site_url: {SITE_URL}\n" in (ROOT / "mkdocs.yml").read_text()


def test_public_surface_is_small_and_sorted() -> None:
    assert opencdp.__all__ == sorted(opencdp.__all__)
    for name in ("Client", "AsyncClient", "CustomerIO", "ValidationError", "OpenCDPError"):
        assert name in opencdp.__all__
