"""MkDocs hooks (``hooks:`` in mkdocs.yml): the codes page is filled from the package, and
the migration pages join the nav as they land.

``docs/codes.md`` holds the page's introduction and a ``<!-- codes -->`` marker; at build time
the marker becomes ``opencdp.codes.render_page()``, read from the same entries that
``opencdp explain`` prints. Nothing generated is committed, so adding a code is one entry in
``src/opencdp/codes.md`` (or one rule class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MARKER = "<!-- codes -->"
# The migration guide's pages, in nav order: listed under "Migration" once they exist, so the
# nav never names a missing page and a landed page is never left out of it.
MIGRATION_PAGES = (
    ("Importing data", "import.md"),
    ("Importing from Customer.io", "import-from-customerio.md"),
    ("Hold and rollback", "hold.md"),
)


def on_config(config: Any, **_: Any) -> Any:
    named = _files(config["nav"])
    for section in config["nav"]:
        if isinstance(section, dict) and "Migration" in section:
            pages = section["Migration"]
            for title, page in MIGRATION_PAGES:
                if page not in named and (Path(config["docs_dir"]) / page).is_file():
                    pages.insert(len(pages) - 1, {title: page})  # before the compat page
    return config


def _files(nav: Any) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, dict):
        return set().union(*(_files(v) for v in nav.values()))
    if isinstance(nav, list):
        return set().union(*(_files(v) for v in nav))
    return set()


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri == "codes.md":
        from opencdp.codes import render_page

        if MARKER not in markdown:
            raise ValueError(f"docs/codes.md: the {MARKER} marker is missing")
        return markdown.replace(MARKER, render_page())
    return markdown
