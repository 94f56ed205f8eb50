"""Calls from signal handlers: never wait on what the interrupted code of the same thread holds.

A Python signal handler runs on the main thread between two bytecodes of whatever that
thread was doing, possibly in the middle of one of our calls, holding our lock, a SQLite
transaction or a Redis connection from a pool. A call in the handler that waits for any of
those waits for ever: the holder cannot go on until the handler returns.

So every stretch of our code that may hold such a thing runs inside ``region()``, a per-thread
depth counter (a dict keyed by thread id: no lock, nothing a handler could wait on). A call
that finds its own thread already inside a region was made by a handler that interrupted us
(we never call ourselves), and takes a path that waits on nothing: a track is handed over to
the engine (``Engine.handoff``), a flush says False at once, a close and the documented
signal helper are deferred with ``defer`` until the interrupted region ends, microseconds
later on the same thread.

Why not an ``RLock``: re-entering would run the handler's call in the middle of the
interrupted one's critical section; and why not a ``threading.local``: it costs more on the
path every call takes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from types import TracebackType

__all__ = ["Region", "defer", "inside", "region"]

_depth: dict[int, int] = {}
_deferred: dict[int, list[Callable[[], object]]] = {}
_ident = threading.get_ident


def inside() -> bool:
    """True when this thread is inside one of our regions, i.e. when called from a signal
    handler that interrupted our own code."""
    return bool(_depth) and _ident() in _depth


def defer(action: Callable[[], object]) -> None:
    """Run ``action`` on this thread when its outermost region ends (now, if outside any)."""
    ident = _ident()
    if ident not in _depth:
        action()
        return
    _deferred.setdefault(ident, []).append(action)


class Region:
    """``with region():`` marks code that may hold a lock, a transaction or a connection."""

    __slots__ = ()

    def __enter__(self) -> None:
        ident = _ident()
        _depth[ident] = _depth.get(ident, 0) + 1

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        ident = _ident()
        depth = _depth.get(ident, 1) - 1
        if depth:
            _depth[ident] = depth
            return
        _depth.pop(ident, None)
        actions = _deferred.pop(ident, None)
        if actions:
            for action in actions:
                action()


_REGION = Region()


def region() -> Region:
    return _REGION


def _after_fork_in_child() -> None:
    # Only the forking thread exists in the child; another thread's id may be reused there.
    ident = _ident()
    for table in (_depth, _deferred):
        for key in [k for k in table if k != ident]:
            table.pop(key, None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
