"""Waiting in tests: a condition polled until it holds, bounded in time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], seconds: float = 10.0) -> bool:
    """True as soon as ``predicate()`` is truthy; False after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
