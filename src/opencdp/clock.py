"""Time as a dependency: one wall clock and one monotonic clock for the whole engine.

Why a clock of our own rather than ``time.time()``: the wall clock steps (NTP corrections, a
VM resumed, an operator's ``date -s``), and everything the engine schedules or measures in
wall time (retry not-before times, lease expiries, the retry budget's age, a message's
pending age) would step with it: an hour back and retries wait an hour; a day forward and
every message has outlived its budget. ``SteadyClock`` is wall time that moves at the
monotonic clock's rate: it follows the system's wall clock while the two agree (NTP slews a
few milliseconds at a time) and absorbs a step, logging it once (OCDP340), so that within a
process no wait and no age jumps. Durable times written by another process, or before a
restart, are bounded against the present where they are read (``outbox.base.bound_due``).

The engine reads ``current()``. Tests step time instead of sleeping or changing the machine's
clock: ``use(SteadyClock(manual))`` steps a ``ManualClock`` under the engine as the machine's
clock would step; ``use(manual)`` makes the engine itself see the step (another process, or
the same one after a restart).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SteadyClock", "SystemClock", "current", "monotonic", "use",
           "wall"]

STEP_TOLERANCE = 1.0
"""Seconds the wall clock may drift from the monotonic clock before it counts as a step."""

_log = logging.getLogger("opencdp")


class Clock(Protocol):
    """Wall time (Unix seconds, comparable across processes) and monotonic time (seconds,
    only comparable within a process)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SteadyClock:
    """The system's wall clock, with its steps taken out (see the module docstring).

    Lock-free on purpose: it is read on every call and from signal handlers. Two threads
    re-anchoring at once both write a correct anchor.
    """

    __slots__ = ("_anchor", "_mono", "_wall", "stepped")

    def __init__(self, source: Clock | None = None) -> None:
        """``source`` is the raw clock whose steps are absorbed (the system's by default;
        a stepped ``ManualClock`` in tests)."""
        self._wall = time.time if source is None else source.time
        self._mono = time.monotonic if source is None else source.monotonic
        self._anchor = self._wall() - self._mono()
        self.stepped = 0.0
        """Seconds of wall-clock steps absorbed since the start (signed, total)."""

    def time(self) -> float:
        mono = self._mono()
        steady = self._anchor + mono
        drift = self._wall() - steady
        if -STEP_TOLERANCE <= drift <= STEP_TOLERANCE:
            if drift:
                self._anchor += drift
            return steady + drift
        self._absorb(drift)
        return steady

    def _absorb(self, drift: float) -> None:
        # Logged the first time a given step is seen; the anchor is kept, so the process
        # goes on in its own time until the wall clock comes back within the tolerance.
        if abs(drift - self.stepped) > STEP_TOLERANCE:
            self.stepped = drift
            _log.warning("[CDP] OCDP340 the wall clock stepped by %+.0f s; the engine keeps its "
                         "own time (retries, leases and ages are not moved by it)", drift)

    def monotonic(self) -> float:
        return self._mono()


class SystemClock:
    """The machine's clocks as they are, steps included: what a remote service sees (the
    sandbox emulates one, so it must not absorb a step the engine is being tested against)."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock for tests: monotonic time follows the real one (so waits still end), and
    the wall clock can be stepped by ``step(seconds)`` without touching the machine.

    ``frozen=True`` stops both clocks except by ``advance``: for a server under test whose
    windows must not move while a slow machine sends a burst (the sandbox's rate window),
    never for an engine that waits on it."""

    def __init__(self, start: float | None = None, *, frozen: bool = False) -> None:
        self._real = _still if frozen else time.monotonic
        self._offset = (time.time() if start is None else start) - self._real()
        self._elapsed = 0.0
        self._lock = threading.Lock()

    def step(self, seconds: float) -> None:
        """The wall clock jumps; monotonic time does not."""
        with self._lock:
            self._offset += seconds

    def advance(self, seconds: float) -> None:
        """Time passes: both clocks move (waits already running still end in real time)."""
        with self._lock:
            self._elapsed += seconds

    def time(self) -> float:
        return self._offset + self._elapsed + self._real()

    def monotonic(self) -> float:
        return self._elapsed + self._real()


def _still() -> float:
    return 0.0


_clocks: list[Clock] = [SteadyClock()]


def current() -> Clock:
    return _clocks[-1]


def wall() -> float:
    """Unix seconds from the engine's clock."""
    return _clocks[-1].time()


def monotonic() -> float:
    return _clocks[-1].monotonic()


@contextlib.contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the engine's clock for the duration of the block (tests)."""
    _clocks.append(clock)
    try:
        yield clock
    finally:
        _clocks.remove(clock)
