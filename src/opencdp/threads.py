"""Worker threads that the interpreter's exit and ``fork`` do not take away.

Why not ``concurrent.futures.ThreadPoolExecutor``: Python marks every such executor shut
down before atexit hooks run (``submit`` then raises "cannot schedule new futures after
interpreter shutdown"), and asyncio's default executor is one of them, so an engine that
hands its queue I/O, DNS look-ups or callbacks to one cannot drain at exit; a forked child
inherits an executor whose threads are gone. ``DaemonExecutor`` is the same small idea
without either hazard: daemon threads started on first use (again in a forked child), a
lock-free ``SimpleQueue`` of work, and a ``shutdown`` that only the engine calls.

``lookups(executor)`` gives aiohttp's resolver a ``getaddrinfo`` that runs on such an executor
too, instead of the loop's default executor (gone at exit) or libuv's thread pool under
uvloop (not fork-safe).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import queue
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["DaemonExecutor", "Lookups"]

T = TypeVar("T")
_STOP = object()


class DaemonExecutor(concurrent.futures.Executor):
    """Up to ``workers`` daemon threads named ``name``, started lazily."""

    def __init__(self, workers: int = 1, name: str = "opencdp-worker") -> None:
        self._workers = max(1, workers)
        self._name = name
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._stopped = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
               ) -> concurrent.futures.Future[T]:
        if self._pid != os.getpid():  # forked: the parent's threads are not here
            self._reset()
        if self._stopped:
            raise RuntimeError(f"{self._name} is shut down")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self._idle <= 0 and len(self._threads) < self._workers:
            thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            try:
                thread.start()
            except RuntimeError:
                # Python 3.12+ starts no thread once the interpreter is exiting: with none of
                # ours alive, the work runs here rather than never.
                if not any(t.is_alive() for t in self._threads):
                    self._call(future, fn, args, kwargs)
                    return future
            else:
                self._threads.append(thread)
        self._work.put((future, fn, args, kwargs))
        return future

    def prestart(self) -> None:
        """Start the first thread now (the engine does at its start, while it still can)."""
        if not self._threads:
            self.submit(int).result()

    @staticmethod
    def _call(future: concurrent.futures.Future[Any], fn: Callable[..., Any],
              args: Any, kwargs: Any) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def _run(self) -> None:
        work = self._work
        while True:
            self._idle += 1
            item = work.get()
            self._idle -= 1
            if item is _STOP:
                return
            self._call(*item)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._stopped = True
        if cancel_futures:
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    item[0].cancel()
        for _ in self._threads:
            self._work.put(_STOP)
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()


class Lookups:
    """The two look-ups aiohttp's ``ThreadedResolver`` asks its loop for, on ``executor``."""

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self._executor = executor

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(fn, *args))

    async def getaddrinfo(self, host: Any, port: Any, *, family: int = 0, type: int = 0,
                          proto: int = 0, flags: int = 0) -> list[Any]:
        return await self._run(socket.getaddrinfo, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        return await self._run(socket.getnameinfo, sockaddr, flags)
