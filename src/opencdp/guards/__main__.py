"""``python -m opencdp.guards [docs/guards.md]``: regenerate the rules table in the docs."""

from __future__ import annotations

import sys
from pathlib import Path

from .docs import update_file

target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/guards.md")
print(f"{target}: {'updated' if update_file(target) else 'up to date'}")
