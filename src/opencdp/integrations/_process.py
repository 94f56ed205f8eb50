"""One client per process, built on first use and closed at worker exit.

A client owns a delivery thread, and threads do not survive ``fork``: a client built before
a prefork server forks (``gunicorn --preload``, Celery's prefork pool) must not be used in
the children. ``ProcessClient`` remembers the pid it built for and builds again in a child;
``close_all()`` is what the server hooks call at worker exit.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from ..client import AsyncClient, Client

__all__ = [
    "ProcessClient",
    "build_all",
    "close_all",
    "close_client",
    "forget_all",
    "shutdown_timeout",
]

C = TypeVar("C", Client, AsyncClient)

_holders: weakref.WeakSet[ProcessClient[Client]] = weakref.WeakSet()


def shutdown_timeout(client: Client | AsyncClient) -> float:
    return float(client.config.shutdown_timeout)


def close_client(client: Client | AsyncClient) -> bool:
    """Close either facade from synchronous code within its ``shutdown_timeout``."""
    if isinstance(client, Client):
        return client.close(timeout=shutdown_timeout(client))
    outcome: list[bool] = []
    closer = client.close

    def run() -> None:
        outcome.append(asyncio.run(closer(timeout=shutdown_timeout(client))))

    worker = threading.Thread(target=run, name="opencdp-close")
    worker.start()
    worker.join()
    return bool(outcome and outcome[0])


class ProcessClient(Generic[C]):
    """Builds ``factory()`` once per process, lazily, thread-safely."""

    def __init__(self, factory: Callable[[], C], *, prebuild: bool = False) -> None:
        self._factory: Callable[[], C] = factory
        self.prebuild = prebuild
        self._client: C | None = None
        self._pid = 0
        self._lock = threading.Lock()
        _holders.add(self)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        state = "built" if self.built else "not built"
        return f"ProcessClient({state})"

    @property
    def built(self) -> bool:
        """True when this process has its own client (an inherited one does not count)."""
        return self._client is not None and self._pid == os.getpid()

    def get(self) -> C:
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = self._factory()
                self._pid = os.getpid()
                _exit_hook()
            return self._client

    @contextmanager
    def override(self, client: C) -> Iterator[C]:
        """Hand out ``client`` (a test's capture client) instead, in this process, until the
        block ends; the client built before, if any, comes back untouched."""
        with self._lock:
            saved = self._client, self._pid
            self._client, self._pid = client, os.getpid()
        try:
            yield client
        finally:
            with self._lock:
                self._client, self._pid = saved

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop a client inherited across ``fork`` without touching it (its thread is gone)."""
        if self._client is not None and self._pid != os.getpid():
            self._client = None

    def close(self) -> bool:
        """Close this process's client within its ``shutdown_timeout``; True if drained."""
        with self._lock:
            client, self._client = self._client, None
            if client is None or self._pid != os.getpid():
                return True
        return close_client(client)


_hooked: set[int] = set()


def _exit_hook() -> None:
    """At interpreter exit, close with ``shutdown_timeout`` (a forked child inherits the
    parent's registration, hence the pid)."""
    pid = os.getpid()
    if pid not in _hooked:
        _hooked.add(pid)
        atexit.register(lambda: os.getpid() == pid and close_all())


def close_all() -> bool:
    """Close every client this process built through an integration; True if all drained."""
    drained = True
    for holder in list(_holders):
        drained = holder.close() and drained
    return drained


def build_all() -> None:
    """Build now the clients of web integrations, so that a restarted server worker starts
    delivering what a durable queue kept before its first request."""
    for holder in list(_holders):
        if holder.prebuild:
            holder.get()


def _reset_locks() -> None:
    """A lock held by another thread of the parent at ``fork`` stays held in the child."""
    for holder in list(_holders):
        holder._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks)


def forget_all() -> None:
    for holder in list(_holders):
        holder.forget()
