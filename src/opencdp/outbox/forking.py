"""No thread of ours inside SQLite at the instant of a fork.

SQLite's own mutexes, held by a parent thread in the middle of a statement, could never be
taken in the child. Every statement of ours runs under its instance's lock, so holding all
those locks across ``fork`` (bounded: a lock held while another process has the file's write
lock could take the busy timeout) means the child starts with SQLite at rest. The SQLite
outbox and the spill file both register here; the child then gives its instances new locks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["FORK_WAIT", "hold_across_fork"]

FORK_WAIT = 0.5
"""Seconds a fork waits for each instance's statement in progress, at most."""


def hold_across_fork(locks: Callable[[], Iterable[Any]],
                     in_child: Callable[[], None]) -> None:
    """Take ``locks()`` before each fork, release them after it in the parent, and call
    ``in_child`` in the child (where they are never released: it must replace them)."""
    held: list[Any] = []

    def before() -> None:
        held.extend(lock for lock in locks() if lock.acquire(timeout=FORK_WAIT))

    def parent() -> None:
        while held:
            held.pop().release()

    def child() -> None:
        held.clear()
        in_child()

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=before, after_in_parent=parent, after_in_child=child)
