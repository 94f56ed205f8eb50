"""The project's ``shared/`` folder beside the repository (Customer.io's OpenAPI documents):
tests that read it skip with one line on a clone without it, and fail under ``CI=true``,
where it is always laid out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SPEC = SHARED / "spec" / "customerio"


def require(path: Path, *, module: bool = False) -> Path:
    """``path`` if it exists; otherwise skip (the module, with ``module=True``), or fail in CI."""
    if path.is_file():
        return path
    reason = (f"needs {path.relative_to(SHARED.parent)} "
              "(the project's shared/ folder beside the repository)")
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but {reason} is missing", pytrace=False)
    pytest.skip(reason, allow_module_level=module)
