"""Log a recurring outbox problem once per cause per interval, with how often it happened.

A queue that is down fails every call; logging each one would flood the host's logs, and
logging only the first one per exception type (for the life of the process) hides the second
outage. So each cause (a code plus a short key) is logged at most once per ``interval``
seconds, and the next line says how many occurrences the quiet period swallowed.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["LogThrottle"]


class LogThrottle:
    def __init__(self, log: logging.Logger, interval: float = 60.0) -> None:
        self.log = log
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._quiet: dict[tuple[str, str], int] = {}

    def __call__(self, level: int, code: str, cause: str, text: str) -> bool:
        """Log ``text`` under ``code`` unless this cause was logged within the interval;
        returns whether it was logged."""
        key = (code, cause)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._quiet[key] = self._quiet.get(key, 0) + 1
                return False
            self._last[key] = now
            quiet = self._quiet.pop(key, 0)
        more = f" ({quiet} more since the last report)" if quiet else ""
        self.log.log(level, "[CDP] %s %s%s", code, text, more)
        return True

    def reset(self, code: str, cause: str) -> None:
        """Forget a cause (it recovered), so its next occurrence is logged at once."""
        with self._lock:
            self._last.pop((code, cause), None)
            self._quiet.pop((code, cause), None)
