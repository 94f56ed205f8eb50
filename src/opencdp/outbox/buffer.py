"""Buffered puts for ``durability="batched"``, shared by the SQLite and Redis outboxes.

Callers append rows and return at once; a daemon thread commits what arrived every
``interval`` seconds, and a caller commits at once when ``limit`` rows are waiting. In a
forked child the owner calls ``reset``: the thread is the parent's, and so are the rows. A commit
writes in chunks; when one fails, the rows not yet written go back to the front of the
buffer (so nothing is lost or written twice) and the error propagates.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from ..errors import OpenCDPError

__all__ = ["PutBuffer"]

Row = TypeVar("Row")


class PutBuffer(Generic[Row]):
    def __init__(
        self,
        write: Callable[[Sequence[Row]], None],
        *,
        interval: float,
        name: str,
        log: logging.Logger,
        limit: int = 5000,
        chunk: int | None = None,
    ) -> None:
        self._write = write
        self.interval = interval
        self._name = name
        self._log = log
        self.limit = limit
        self.chunk = chunk
        self.reset()

    def reset(self) -> None:
        """Fresh state (also in a forked child: the parent's rows are the parent's)."""
        self._rows: deque[Row] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: Row) -> None:
        """Take ``row``, or raise (the commit's error) without having taken it: a full
        buffer is committed first, so a caller that sends a refused row elsewhere (the
        spill) never leaves a copy behind here."""
        if len(self._rows) >= self.limit:
            self.commit()
        self._rows.append(row)
        if self._thread is None:
            self._start()

    def commit(self) -> None:
        rows_left = self._rows
        with self._lock:
            count = len(rows_left)
            if not count:
                return
            rows = [rows_left.popleft() for _ in range(count)]
            step = self.chunk or count
            start = 0
            try:
                for start in range(0, count, step):
                    self._write(rows[start:start + step])
            except OpenCDPError:
                rows_left.extendleft(reversed(rows[start:]))
                raise

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        try:
            self.commit()
        except OpenCDPError as exc:
            self._log.error("opencdp outbox: could not write buffered messages: %s", exc)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread = thread
        thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.commit()
            except OpenCDPError as exc:
                self._log.error("opencdp outbox: batched write failed, will retry: %s", exc)
