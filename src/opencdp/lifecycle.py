"""Graceful shutdown for servers and workers: drain on SIGTERM/SIGINT, within a bound.

``close()`` is already registered for interpreter exit; what a server adds is the signal: a
process manager sends SIGTERM and waits a grace period before SIGKILL, so the drain must fit in
that period. The handler closes the given clients (each within ``timeout``), then chains to
the handler that was installed before it (gunicorn's, uvicorn's, Celery's), or exits. A signal
that lands inside one of our own calls on the main thread is acted on the moment that call
returns (``reentry.py``), so the drain never waits for a lock its own thread holds.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, Protocol

from . import reentry

__all__ = ["install_signal_handlers"]

Handler = Callable[[int, FrameType | None], Any] | int | None


class _Closable(Protocol):
    def close(self, timeout: float = ...) -> Any: ...


def install_signal_handlers(
    *clients: _Closable,
    timeout: float = 10.0,
    signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT),
    exit_code: int | None = 0,
) -> Callable[[], None]:
    """Close ``clients`` when one of ``signals`` arrives, then chain to the previous handler.

    If the previous handler is the default one (or none), the process exits with
    ``exit_code`` (``None`` means: don't exit, just drain). Returns a function that restores
    the previous handlers. Must be called from the main thread, like ``signal.signal``.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("install_signal_handlers must be called from the main thread")
    previous: dict[int, Handler] = {}
    done = threading.Event()

    def act(signum: int, frame: FrameType | None) -> None:
        if not done.is_set():
            done.set()
            for client in clients:
                client.close(timeout=timeout)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_IGN:
            return
        elif exit_code is not None:
            sys.exit(exit_code)

    def handler(signum: int, frame: FrameType | None) -> None:
        # Landing in the middle of one of our calls on this thread, the close could only
        # wait for that call's own lock: it runs the moment that call returns instead.
        reentry.defer(lambda: act(signum, frame))

    for signum in signals:
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, handler)

    def restore() -> None:
        for signum, before in previous.items():
            signal.signal(signum, before if before is not None else signal.SIG_DFL)

    return restore
