"""The logger seam: a std ``logging.Logger`` by default, or anything with debug/warn/error.

The dual-write guide's custom loggers have ``debug``, ``warn`` (or ``warning``) and
``error``; we accept either spelling. A logger that raises is ignored: logging must never
break delivery or the host app.

By default every line goes to the ``opencdp`` logger (or a child: ``opencdp.outbox``,
``opencdp.health``, ...) and the host decides its format, level and destination: the library
adds no handler, formatter or level anywhere, so a root handler from ``logging.basicConfig``,
Django's ``LOGGING``, gunicorn's ``logconfig_dict``, uvicorn's ``--log-config`` or Celery's
worker shows our lines as it shows the app's. Not even a ``NullHandler`` (requests' and
urllib3's habit): with one, a host that configured nothing would lose our warnings instead
of getting them bare from Python's last-resort handler, and an OCDP302 loss line must not
vanish (httpx adds none either). The one-liner for a host with no configuration is
``logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s
%(message)s")``.

A line that names a code (``OCDP303``) ends with where to read about it, ``(opencdp explain
OCDP303)``: the seam appends it (``opencdp.codes.with_reference``), so every line written
through ``Log`` gets it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from . import reentry
from .codes import with_reference
from .throttle import Throttle

__all__ = ["Log"]


def _method(logger: Any, *names: str) -> Callable[[str], Any]:
    for name in names:
        method = getattr(logger, name, None)
        if callable(method):
            return method  # type: ignore[no-any-return]
    return lambda _msg: None


class Log:
    """The engine's logger: ``debug`` lines only with ``debug=True``, ``*_once`` variants that
    log a cause once (or once per interval), and never an exception out of a broken logger."""

    def __init__(self, logger: Any = None, debug: bool = False) -> None:
        self.enabled_debug = debug
        if logger is None:
            logger = logging.getLogger("opencdp")
        self._debug = _method(logger, "debug")
        self._info = _method(logger, "info", "debug")
        self._warning = _method(logger, "warning", "warn")
        self._error = _method(logger, "error")
        self._once = Throttle()
        self._lock = threading.Lock()

    def after_fork(self) -> None:
        """In a forked child: the parent's threads may have held the lock at the fork."""
        self._lock = threading.Lock()

    def debug(self, message: str) -> None:
        if self.enabled_debug:
            self._call(self._debug, message)

    def info_debug(self, message: str) -> None:
        """Always passed to the logger's debug method (the logger decides)."""
        self._call(self._debug, message)

    def info(self, message: str) -> None:
        self._call(self._info, message)

    def warning(self, message: str) -> None:
        self._call(self._warning, message)

    def error(self, message: str) -> None:
        self._call(self._error, message)

    def warning_once(self, key: str, message: str, interval: float | None = None) -> bool:
        """Log the first time ``key`` is seen (again after ``interval`` seconds, if given)."""
        if not self._first(key, interval):
            return False
        self.warning(message)
        return True

    def error_once(self, key: str, message: str, interval: float | None = None) -> bool:
        if not self._first(key, interval):
            return False
        self.error(message)
        return True

    def _first(self, key: str, interval: float | None) -> bool:
        nested = reentry.inside()  # read before our own region marks this thread
        with reentry.region():
            # From a signal handler that interrupted this very check: log, don't wait.
            if not self._lock.acquire(blocking=not nested):
                return True
            try:
                return self._once.admit(key, interval) is not None
            finally:
                self._lock.release()

    @staticmethod
    def _call(method: Callable[[str], Any], message: str) -> None:
        try:
            method(with_reference(message))
        except Exception:  # noqa: S110 - a broken logger must not break delivery
            pass
