"""Log a recurring outbox problem once per cause per interval, with how often it happened.

The queues log through a ``logging.Logger``; the throttling is ``opencdp.throttle``'s, with
a cause being a code plus a short key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .. import clock as _clock
from ..throttle import Throttle

__all__ = ["LogThrottle"]


class LogThrottle:
    def __init__(self, log: logging.Logger, interval: float = 60.0,
                 clock: Callable[[], float] = _clock.monotonic) -> None:
        """``clock`` is monotonic seconds: the engine's by default, a test's stepped one to
        see an interval pass without waiting for it."""
        self.log = log
        self.interval = interval
        self._lock = threading.Lock()
        self._throttle = Throttle(clock)

    def __call__(self, level: int, code: str, cause: str, text: str) -> bool:
        """Log ``text`` under ``code`` unless this cause was logged within the interval;
        returns whether it was logged."""
        with self._lock:
            quiet = self._throttle.admit((code, cause), self.interval)
        if quiet is None:
            return False
        more = f" ({quiet} more since the last report)" if quiet else ""
        self.log.log(level, "[CDP] %s %s%s", code, text, more)
        return True

    def reset(self, code: str, cause: str) -> None:
        """Forget a cause (it recovered), so its next occurrence is logged at once."""
        with self._lock:
            self._throttle.forget((code, cause))
