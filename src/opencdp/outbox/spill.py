"""Durable means durable or loud: a local spill file behind every durable queue.

When a ``put`` cannot be made durable in the primary queue (Redis down, paused or slower than
its put timeout; SQLite full or locked), the message goes into a small SQLite file on this
host and ``put`` returns normally: it is durable there. Only when the spill fails too does
``put`` raise ``OutboxError``, and the caller logs, counts and raises.

From the first spilled message until the spill is empty again, every ``put`` goes to the spill,
so messages reach the primary in the order they were put. ``maintain`` (called by the engine
about once a second) drains the spill into the primary, oldest first, in batches, and hands
the primary back the caller's path once the file is empty. A message moved into the primary
is deleted from the spill in the same step; a crash between the two can deliver it twice,
never lose it.

The spill file is created on the first spill (a process whose queue never fails writes
nothing), and one left by an earlier process is drained when the next one opens the queue.
Its write-ahead log is truncated back to ``_WAL_LIMIT`` after each checkpoint and to nothing
once the file is empty. A spill file deleted or replaced while open would take what it holds
with it at the next start, so ``maintain`` follows the path (device and inode) and moves the
open file's messages into the file now there (OCDP325).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import clock, registry
from ..errors import OpenCDPError, OutboxError
from ..message import Message, dumps_message, loads_message
from ..threads import DaemonExecutor
from .base import (
    DeadItem,
    DeadLetter,
    Done,
    HoldMark,
    Leased,
    MaybeStoredError,
    Outbox,
    QueueStats,
    RetryItem,
)
from .files import create_private
from .forking import hold_across_fork
from .throttle import LogThrottle

__all__ = ["SpillFile", "SpilledOutbox"]

_files: weakref.WeakSet[SpillFile] = weakref.WeakSet()
_wrappers: weakref.WeakSet[SpilledOutbox] = weakref.WeakSet()
_DRAIN_BATCH = 200  # one write into the queue: a put waits for at most that
_WAL_LIMIT = 1 << 20


class SpillFile:
    """A first-in first-out file of messages (WAL, ``synchronous=NORMAL``, mode 0600): an
    insert survives a kill -9 of the process once it returned, as the SQLite outbox does."""

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = 2.0) -> None:
        self.path = str(Path(path).expanduser())
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None  # (device, inode) of the open file
        self._pid = os.getpid()
        self._closed = False
        _files.add(self)

    def exists(self) -> bool:
        return self._db is not None or (not self._closed and os.path.exists(self.path))

    def _open(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked, and nobody called after_fork
            self._db = None
            self._pid = os.getpid()
        if self._db is not None:
            return self._db
        if self._closed:
            raise OutboxError(f"the spill file {self.path} is closed")
        create_private(self.path)
        db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
            db.execute(
                "CREATE TABLE IF NOT EXISTS spill (seq INTEGER PRIMARY KEY, "
                "dests INTEGER NOT NULL, body BLOB NOT NULL, since REAL, created REAL)"
            )
            columns = {row[1] for row in db.execute("PRAGMA table_info(spill)")}
            if "created" not in columns:  # a file written by an earlier version
                db.execute("ALTER TABLE spill ADD COLUMN created REAL")
        except sqlite3.Error:
            db.close()
            raise
        self._db = db
        self._file = _identity(self.path)
        return db

    def follow(self) -> int:
        """If the file at the path is not the open one (deleted or replaced), move what the
        open one holds into the file at the path; returns how many messages moved. A copy
        is written beside it first, and kept (named in the error) if the move fails."""
        with self._lock:
            old = self._db
            if old is None or self._pid != os.getpid() or _identity(self.path) == self._file:
                return 0
            carry = f"{self.path}.carried-{os.getpid()}-{secrets.token_hex(4)}"
            try:
                rows = old.execute(
                    "SELECT dests, body, since, created FROM spill ORDER BY seq").fetchall()
                copy = sqlite3.connect(carry)
                try:
                    old.backup(copy)
                finally:
                    copy.close()
            except (OSError, sqlite3.Error) as exc:
                raise OutboxError(f"the spill file {self.path} was deleted or replaced, and "
                                  f"what it held cannot be copied out: {exc}") from None
            old.close()  # before the path is opened again: its log and index are the old file's
            self._db = None
            if not os.path.exists(self.path):
                for suffix in ("-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path + suffix)
            try:
                new = self._open()
                new.execute("BEGIN IMMEDIATE")
                new.executemany("INSERT INTO spill (dests, body, since, created) "
                                "VALUES (?, ?, ?, ?)", rows)
                new.execute("COMMIT")
            except (OSError, sqlite3.Error) as exc:
                if self._db is not None:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise OutboxError(f"the spill file {self.path} was deleted or replaced, and "
                                  f"what it held is kept in {carry}: {exc}") from None
            for suffix in ("", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(carry + suffix)
            return len(rows)

    def put(self, message: Message, since: float | None = None) -> None:
        """Insert one message; raises OutboxError when the file cannot take it. ``since``:
        the time of a timed-out attempt that may have stored it in the primary already."""
        try:
            body = dumps_message(message)
            with self._lock:
                self._open().execute(
                    "INSERT INTO spill (dests, body, since, created) VALUES (?, ?, ?, ?)",
                    (message.destinations & registry.mask(), body, since, clock.wall()))
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"the spill file {self.path} failed: {exc}") from None

    def counts(self) -> dict[int, int]:
        """Messages waiting, per destination bit (empty when no file exists)."""
        return {bit: count for bit, (count, _) in self.census().items()}

    def census(self) -> dict[int, tuple[int, float | None]]:
        """Messages waiting and when the oldest of them was spilled (None for rows of an
        earlier version, which did not record it), per destination bit; 0 is all of them."""
        if not self.exists():
            return {}
        bits = [r.bit for r in registry.registrations()]
        columns = "".join(f", sum(dests & {bit} != 0), min(CASE WHEN dests & {bit} THEN "
                          "created END)" for bit in bits)
        try:
            with self._lock:
                row = self._open().execute(
                    # the columns hold the registry's integer bits, nothing a caller wrote
                    f"SELECT count(*), min(created){columns} FROM spill").fetchone()  # noqa: S608
        except (OSError, sqlite3.Error):
            return {}
        return {bit: (int(row[2 * k] or 0), row[2 * k + 1]) for k, bit in enumerate([0, *bits])}

    def drain(self, into: Outbox, limit: int = _DRAIN_BATCH) -> tuple[int, int]:
        """Move up to ``limit`` of the oldest messages into ``into``, in order, deleting each
        one it took. Returns ``(moved, left)``; stops at the first message ``into`` refuses
        (its error propagates once the moved ones are deleted)."""
        if not self.exists():
            return 0, 0
        with self._lock:
            db = self._open()
            db.execute("BEGIN IMMEDIATE")  # one drainer at a time, across processes too
            moved: list[int] = []
            try:
                rows = db.execute("SELECT seq, body, since FROM spill ORDER BY seq LIMIT ?",
                                  (limit,)).fetchall()
                failure: OpenCDPError | None = None
                for run in _runs(rows):
                    try:
                        if run[0][2] is None:  # plain rows: one write for the run
                            into.put_many([loads_message(body) for _, body, _ in run])
                        else:
                            into.put_unless_stored(loads_message(run[0][1]), run[0][2])
                    except OpenCDPError as exc:
                        if isinstance(exc, MaybeStoredError) and run[0][2] is None:
                            db.executemany("UPDATE spill SET since = ? WHERE seq = ?",
                                           [(clock.wall(), seq) for seq, _, _ in run])
                        failure = exc
                        break
                    moved.extend(seq for seq, _, _ in run)
                if moved:
                    db.execute("DELETE FROM spill WHERE seq <= ?", (moved[-1],))
                left = int(db.execute("SELECT count(*) FROM spill").fetchone()[0])
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            if moved and not left:  # empty: give the log's space back to the disk
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if failure is not None:
            raise failure
        return len(moved), left

    def after_fork(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._db = None  # the parent's handle is left alone, never used or closed here

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._db.close()
            self._db = None
            self._closed = True


def _identity(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _runs(rows: Sequence[tuple[int, bytes, float | None]]
          ) -> list[list[tuple[int, bytes, float | None]]]:
    """Consecutive plain rows together; each row that may be stored already on its own."""
    runs: list[list[tuple[int, bytes, float | None]]] = []
    for row in rows:
        if row[2] is None and runs and runs[-1][0][2] is None:
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _after_fork_in_child() -> None:
    for spill in list(_files):
        spill.after_fork()
    for wrapper in list(_wrappers):
        wrapper._lock = threading.Lock()
        wrapper._drain_lock = threading.Lock()


hold_across_fork(lambda: [spill._lock for spill in list(_files)], _after_fork_in_child)


class SpilledOutbox(Outbox):
    """A durable primary queue with a local spill in front of its ``put``; everything else is
    the primary's."""

    durable = True

    def __init__(self, primary: Outbox, spill: SpillFile,
                 logger: logging.Logger | None = None, log_interval: float = 60.0) -> None:
        self.primary = primary
        self.spill = spill
        self._log = LogThrottle(logger or logging.getLogger("opencdp.outbox"), log_interval)
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._spilled_since = 0  # messages spilled in the current episode
        self._spilling = bool(spill.exists() and spill.counts().get(0))
        self._fallback = DaemonExecutor(4, "opencdp-spill")
        _wrappers.add(self)

    def __repr__(self) -> str:
        return f"SpilledOutbox({self.primary!r}, spill={self.spill.path!r})"

    @property
    def spilling(self) -> bool:
        """Whether puts currently go to the spill file."""
        return self._spilling

    # caller's thread -------------------------------------------------------------------
    def put(self, message: Message) -> None:
        since: float | None = None
        if not self._spilling:
            since = self._try_primary(message)
            if since is None:
                return
        self._spill(message, since)

    def put_soon(self, message: Message, done: Done) -> bool:
        """The primary's asynchronous put; when it fails, the spill's write runs on a thread
        of ours (never on the thread that answered the primary's round trip, which is
        another caller's or the committer)."""
        if self._spilling:
            return False

        def answered(error: BaseException | None) -> None:
            if isinstance(error, OpenCDPError):
                self._fallback.submit(self._spill_after, message, error, done)
            else:
                done(error)

        return self.primary.put_soon(message, answered)

    def _spill_after(self, message: Message, exc: OpenCDPError, done: Done) -> None:
        try:
            self._spill(message, self._failed(exc))
        except BaseException as error:
            done(error)
        else:
            done(None)

    def _spill(self, message: Message, since: float | None) -> None:
        with self._lock:
            if not self._spilling:  # drained and handed back meanwhile
                since = self._try_primary(message)
                if since is None:
                    return
            try:
                self.spill.put(message, since or None)
            except OutboxError as exc:
                # The queue may be back already: better out of order than not queued.
                with contextlib.suppress(OpenCDPError):
                    self.primary.put(message)
                    return
                self._log(logging.ERROR, "OCDP322", "lost",
                          f"neither the queue nor the spill file took a message: {exc}")
                raise OutboxError(
                    f"the message was not queued: the queue is unavailable and {exc}"
                ) from None
            self._spilled_since += 1

    def flush(self) -> None:
        """Commit the primary's buffered puts now (``durability="batched"``), raising what
        the commit raises; the spill is durable at each put already. A producer that records
        what is durable (``opencdp import``'s checkpoint) calls this first."""
        flush = getattr(self.primary, "flush", None)
        if flush is not None:
            flush()

    def _try_primary(self, message: Message) -> float | None:
        """None when the primary took the message; otherwise switch to spilling and return
        the time of a write that may have been stored after all (0.0 when surely not)."""
        try:
            self.primary.put(message)
            return None
        except OpenCDPError as exc:
            return self._failed(exc)

    def _failed(self, exc: OpenCDPError) -> float:
        self._log(logging.WARNING, "OCDP320", "spill",
                  f"the queue did not take a message ({exc}); spilling to "
                  f"{self.spill.path} until it recovers")
        self._spilling = True
        return clock.wall() if isinstance(exc, MaybeStoredError) else 0.0

    # engine's thread ---------------------------------------------------------------------
    def maintain(self, now: float) -> None:
        try:
            self.primary.maintain(now)
        except OpenCDPError as exc:
            self._log(logging.WARNING, "OCDP325", "maintain", f"queue maintenance failed: {exc}")
        try:
            followed = self.spill.follow()
        except OutboxError as exc:
            self._log(logging.ERROR, "OCDP325", "spill-file", str(exc))
        else:
            if followed:
                self._log(logging.WARNING, "OCDP325", "spill-file",
                          f"the spill file {self.spill.path} was deleted or replaced while in "
                          f"use; moved the {followed} message(s) it held into a new one")
        self.drain()

    def drain(self, deadline: float = 0.5) -> int:
        """Move spilled messages back into the primary for up to ``deadline`` seconds;
        returns how many moved. Hands ``put`` back to the primary once the spill is empty."""
        if not self._spilling and not self.spill.exists():
            return 0
        if not self._drain_lock.acquire(blocking=False):
            return 0
        total = 0
        try:
            stop = clock.monotonic() + deadline
            while True:
                moved, left = self._drain_step()
                total += moved
                if left == 0:
                    # Last step under the put lock, so no put lands in the spill after it.
                    with self._lock:
                        moved, left = self._drain_step()
                        total += moved
                        if left == 0:
                            episode, self._spilled_since = self._spilled_since, 0
                            self._spilling = False
                    if left == 0:
                        if total or episode:
                            self._log.reset("OCDP320", "spill")
                            self._log(logging.WARNING, "OCDP321", "recovered",
                                      f"the queue takes writes again; moved {total} spilled "
                                      f"message(s) back into it")
                            self._log.reset("OCDP321", "recovered")
                        return total
                if left < 0 or not moved or clock.monotonic() >= stop:
                    return total
        finally:
            self._drain_lock.release()

    def _drain_step(self) -> tuple[int, int]:
        """One batch; ``(moved, left)``, with ``left = -1`` when the primary or the file
        failed (logged per cause per interval)."""
        try:
            return self.spill.drain(self.primary)
        except OpenCDPError as exc:
            self._log(logging.WARNING, "OCDP325", "drain",
                      f"the spill file {self.spill.path} waits for the queue to recover: {exc}")
        except (OSError, sqlite3.Error) as exc:
            self._log(logging.ERROR, "OCDP325", "spill-read",
                      f"cannot read the spill file {self.spill.path}: {exc}")
        return 0, -1

    def lease(self, destination: str, limit: int, now: float, lease_seconds: float) -> list[Leased]:
        return self.primary.lease(destination, limit, now, lease_seconds)

    def ack(self, destination: str, ids: Sequence[int]) -> None:
        self.primary.ack(destination, ids)

    def retry(self, destination: str, items: Sequence[RetryItem]) -> None:
        self.primary.retry(destination, items)

    def dead(self, destination: str, items: Sequence[DeadItem], now: float) -> None:
        self.primary.dead(destination, items, now)

    def next_due(self, destination: str, now: float) -> float | None:
        return self.primary.next_due(destination, now)

    def stats(self, now: float) -> dict[str, QueueStats]:
        out = self.primary.stats(now)
        waiting = self.spill.census()
        for r in registry.registrations():
            bit, name = r.bit, r.name
            spilled, oldest = waiting.get(bit, (0, None))
            stats = out.get(name)
            if not spilled or stats is None:
                continue
            stats.pending += spilled
            stats.spilled = spilled
            if oldest is not None:
                age = max(0.0, now - oldest)
                stats.spilled_oldest_age = age
                stats.oldest_pending_age = max(age, stats.oldest_pending_age or 0.0)
        return out

    def dead_letters(
        self, destination: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        return self.primary.dead_letters(destination, since, limit)

    def replay(self, destination: str | None = None, since: float | None = None) -> int:
        return self.primary.replay(destination, since)

    def purge(self, destination: str | None = None, since: float | None = None,
              before: float | None = None) -> int:
        return self.primary.purge(destination, since, before)

    def shared_state(self) -> tuple[Any, str] | None:
        return self.primary.shared_state()

    def hold_mark(self, destination: str) -> HoldMark | None:
        return self.primary.hold_mark(destination)

    def set_hold_mark(self, destination: str, state: str, now: float,
                      expect: tuple[str | None, ...]) -> HoldMark | None:
        return self.primary.set_hold_mark(destination, state, now, expect)

    def purge_pending(self, destination: str, before: float | None, now: float) -> int:
        # Spilled copies are purged once moved back into the queue, at a later pass.
        return self.primary.purge_pending(destination, before, now)

    def after_fork(self) -> None:
        self.primary.after_fork()
        self.spill.after_fork()
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()

    def pending_messages(self) -> int:
        return self.primary.pending_messages()

    def close(self) -> None:
        """Close both; a last drain first, so a clean shutdown leaves no spill behind when
        the primary is back."""
        with contextlib.suppress(OpenCDPError):
            self.drain(deadline=1.0)
        self.primary.close()
        self.spill.close()
