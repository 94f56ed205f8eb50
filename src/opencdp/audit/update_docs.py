"""Rewrite the generated blocks of Markdown files from the rule classes.

``python -m opencdp.audit.update_docs FILE... [--check]``: each ``<!-- BEGIN audit-codes -->``
... ``<!-- END audit-codes -->`` block (also ``audit-rules`` and ``audit-weights``) is
replaced by its current rendering. With ``--check`` nothing is written and the exit status is
1 when a file is out of date.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .docs import update_markdown

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [Path(a) for a in args if a != "--check"]
    stale = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        updated = update_markdown(text)
        if updated != text:
            stale.append(path)
            if not check:
                path.write_text(updated, encoding="utf-8")
    for path in stale:
        print(f"{path}: {'out of date' if check else 'updated'}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
