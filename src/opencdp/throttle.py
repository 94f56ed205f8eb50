"""Report a recurring cause once per interval, and say how often the quiet period held it back.

A queue that is down fails every call, and one field that every call gets wrong fails every
call too: reporting each occurrence floods the host's log, and reporting only the first (for
the life of the process) hides the second outage. So a cause is reported the first time, then
at most once per interval, and the next report says how many occurrences it stands for. The
engine's log, the outbox's warnings and the guards' reporter all throttle through this one
class.

Causes are remembered up to a cap; past it the oldest half is forgotten, so a new cause is
never silenced by old ones (a forgotten cause is merely reported again). There is no lock
here: every caller already holds its own, and the log's and the reporter's are taken so that a
signal handler interrupting them never waits on them (``reentry.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable

__all__ = ["Throttle"]


class Throttle:
    __slots__ = ("_cap", "_causes", "_clock")

    def __init__(self, clock: Callable[[], float] = time.monotonic, cap: int = 10_000) -> None:
        self._clock = clock
        self._cap = max(cap, 2)
        self._causes: dict[Hashable, list[float]] = {}
        """Per cause: the monotonic time before which it stays quiet, and how many times it
        was held back since its last report."""

    def admit(self, cause: Hashable, interval: float | None) -> int | None:
        """None to stay quiet; else report, having held back this many since the last report.
        ``interval=None`` reports a cause once."""
        now = self._clock()
        until = math.inf if interval is None else now + interval
        entry = self._causes.get(cause)
        if entry is None:
            if len(self._causes) >= self._cap:
                for old in list(self._causes)[: self._cap // 2]:
                    del self._causes[old]
            self._causes[cause] = [until, 0.0]
            return 0
        if now < entry[0]:
            entry[1] += 1
            return None
        held = int(entry[1])
        entry[0], entry[1] = until, 0.0
        return held

    def __len__(self) -> int:
        """How many causes are remembered."""
        return len(self._causes)

    def forget(self, cause: Hashable) -> None:
        """The cause recovered: its next occurrence is reported at once."""
        self._causes.pop(cause, None)
