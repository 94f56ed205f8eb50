"""The embedded durable outbox: one SQLite file, safe for several processes on one host.

Why it is shaped this way:

- ``put`` must be durable on return and cost close to one bare single-row WAL commit. Every
  page a commit touches is one more WAL frame written and later checkpointed, so ``put``
  inserts exactly one row, appended at the end of a rowid table (``msgs``), and nothing else:
  no secondary index, no per-destination rows. WAL with ``synchronous=NORMAL`` makes the
  commit survive a SIGKILL of the process without an fsync per call.
- Per-destination delivery state lives in ``deliveries`` (one row per message and
  destination, indexed by when it is next due). Rows are fanned out there from ``msgs`` in
  bulk, inside the lease's transaction, behind a high-water mark: a message can be delivered
  to OpenCDP and still pending for Customer.io.
- A lease writes ``due = now + lease_seconds``, ``leased = 1`` and the leasing instance's row
  in ``owners`` (host, pid, the process's start time and a random token, so a reused pid is
  told apart). If the leasing process dies, a process on the same host reclaims its leases at
  once (at its next lease or ``maintain``); otherwise the row is due again at the expiry (same
  attempt). ``retry`` writes the not-before
  time into the same column, so one ordered index scan answers "what is due, oldest first".
- Threads of one process share one connection behind a lock, and concurrent ``put`` calls are
  group-committed: the first caller commits everyone's rows in one transaction while the
  others wait for it, so nobody returns before their row is committed. Processes coordinate
  through SQLite's own locks (``BEGIN IMMEDIATE``, ``busy_timeout``).
- ``durability="batched"`` returns before the commit: a background thread commits the
  buffered rows every ``batch_interval`` seconds (default 5 ms), so a SIGKILL can lose the
  calls of the last interval, and nothing else.
- Checkpoints (the only fsyncs) run on the engine's threads every half second, and at once
  when the write-ahead log passes ``_WAL_LIMIT``, off the caller's path; SQLite's automatic
  checkpoint stays on as a backstop for a process that only writes. ``maintain`` truncates a
  log still larger than the limit, so it does not stay larger than the data. (Not
  ``journal_size_limit``: truncating at every reset makes the log grow again by appends,
  which cost a put-only process a fifth of its rate.)
- A full disk must not wedge the queue. A checkpoint moves pages from the log into the file,
  and the file may have to grow for it: if the log has taken the last free bytes, no
  checkpoint can finish, the log can never be reused, and every write (even an ``ack`` that
  would free rows) fails for good, even after the disk has space again. So ``put`` refuses
  (``QueueFullError``, and the message goes to the spill) before the queue's own writes leave
  less than ``_RESERVE`` bytes beyond what the pending checkpoint needs, counting the free
  pages inside the file as room.
- A write that fails leaves nothing half done in memory: leases are forgotten only once their
  ``ack``/``retry``/``dead`` committed, and an ``ack`` that could not be written is owed and
  written with the next write, so a message a destination took is not sent to it again.

- The file is checked before anything is written to it: a file that holds tables of another
  application, or that SQLite cannot read, is refused with a ConfigurationError and left
  as it was (no table added, no switch to WAL); an opencdp file also passes ``quick_check``
  (about 0.1 s for 90 MB on a warm cache; skipped above ``_CHECK_LIMIT``). A corrupted page
  found later makes every call raise ``OutboxError`` saying so, never a raw sqlite3 error.
- The file can be deleted or replaced under a running process, which would go on writing
  into the unlinked file and lose it all at the next start. ``maintain`` compares the path's
  (device, inode) with the opened file's, and if they differ reopens the path and carries
  over what the old file still holds (pending messages, its own leases, dead letters), once,
  logged as OCDP325. If the path now holds something that is not a queue, every call raises
  ``OutboxError``, and the old file's content is kept beside it.

``msgs`` uses plain rowids (not AUTOINCREMENT, which would write a second page per insert), so
the row at the high-water mark is kept until a newer one exists: otherwise SQLite could hand
its rowid to the next insert, below the mark, and that message would never be fanned out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from .. import clock, registry
from ..errors import ConfigurationError, OpenCDPError, OutboxError, QueueFullError
from ..message import Message, loads_message, parse_ulid, ulid_str
from ..message import dumps_message as _dumps
from .base import (
    HOLD_STATES,
    MAX_AHEAD,
    DeadItem,
    DeadLetter,
    HoldMark,
    Leased,
    Outbox,
    QueueStats,
    RetryItem,
)
from .base import destination_bit as _bit
from .buffer import PutBuffer
from .files import create_private
from .forking import hold_across_fork
from .owners import process_identity, process_namespace, provably_dead

__all__ = ["SQLiteOutbox"]

_log = logging.getLogger("opencdp.outbox")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS msgs (
        seq INTEGER PRIMARY KEY, dests INTEGER NOT NULL, created REAL NOT NULL,
        body BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        dest INTEGER NOT NULL, seq INTEGER NOT NULL, due REAL NOT NULL,
        leased INTEGER NOT NULL DEFAULT 0, attempt INTEGER NOT NULL DEFAULT 0, error TEXT,
        owner INTEGER, PRIMARY KEY (dest, seq)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS owners (
        id INTEGER PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
        started TEXT NOT NULL, token TEXT NOT NULL, pidns TEXT, boot TEXT)""",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (dest, due)",
    """CREATE TABLE IF NOT EXISTS dead (
        rowid INTEGER PRIMARY KEY, dest INTEGER NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL,
        reason TEXT NOT NULL, status INTEGER, attempts INTEGER NOT NULL,
        created REAL NOT NULL, dead_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS dead_at ON dead (dead_at)",
    "CREATE INDEX IF NOT EXISTS dead_id ON dead (id)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS delivered (dest INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('fanout', 0), ('schema', 1)",
)
_MINE = (
    "SELECT json_extract(CAST(body AS TEXT), '$[0]'), seq FROM main.msgs WHERE seq > ? AND "
    "json_extract(CAST(body AS TEXT), '$[0]') IN (SELECT value FROM json_each(?))"
)
_TABLES = frozenset({"msgs", "deliveries", "owners", "dead", "meta", "delivered"})
_CHECK_LIMIT = 256 << 20  # bytes; a larger file is checked by its first lease instead
_CORRUPT = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
_ADDED_COLUMNS = (("deliveries", "owner", "INTEGER"), ("owners", "pidns", "TEXT"),
                  ("owners", "boot", "TEXT"))
# What a lost file still owes: each message for the destinations it is pending for (not yet
# fanned out: all of its own), unless the open file has it already. The destinations this
# instance holds a lease for (ids in ?k for the k-th registered destination's bit) get their
# delivery row from ``_merge`` instead of the fan-out, so an ack deletes it for good.
def _carry_messages(bits: Sequence[int]) -> str:
    # only the registry's integer bits are formatted in, nothing a caller wrote
    held = " | ".join(
        f"(CASE WHEN id IN (SELECT value FROM json_each(?{k})) THEN {int(bit)} ELSE 0 END)"  # noqa: S608
        for k, bit in enumerate(bits, 1))
    return ("INSERT INTO main.msgs (dests, created, body) SELECT "
            f"dests & ~({held}), created, {_CARRY_FROM}")


_CARRY_FROM = (
    "body FROM (SELECT CASE WHEN m.seq > (SELECT value FROM carried.meta WHERE key = 'fanout') "
    "THEN m.dests ELSE (SELECT coalesce(sum(d.dest), 0) FROM carried.deliveries d "
    "WHERE d.seq = m.seq) END AS dests, m.created, m.body, m.seq, "
    "json_extract(CAST(m.body AS TEXT), '$[0]') AS id FROM carried.msgs m) "
    "WHERE dests != 0 AND id NOT IN "
    "(SELECT json_extract(CAST(body AS TEXT), '$[0]') FROM main.msgs) ORDER BY seq"
)
_LEASE_DUE = (
    "SELECT d.seq, d.attempt, d.error, m.body, m.created FROM deliveries d "
    "JOIN msgs m ON m.seq = d.seq WHERE d.dest = ? AND d.due <= ? ORDER BY d.due LIMIT ?"
)
_LEASE_AHEAD = (
    "SELECT d.seq, d.attempt, d.error, m.body, m.created FROM deliveries d "
    "JOIN msgs m ON m.seq = d.seq WHERE d.dest = ? AND d.due > ? AND d.leased = 0 "
    "ORDER BY d.due LIMIT ?"
)
_INSERT = "INSERT INTO msgs (dests, created, body) VALUES (?, ?, ?)"
# Many rows in one statement: the loop runs inside SQLite with the GIL released, so callers
# keep running while a batch commits. Each row travels as one JSON string, its destination
# bits as the first character: strings round-trip exactly, and nothing is parsed twice.
# A batch's rows share one ``created`` (its oldest), which only orders due times.
# The bits are digits before the body's opening bracket (more than one once a third
# destination's bit is 4 or more: 8 and up have two).
_INSERT_MANY = (
    "INSERT INTO msgs (dests, created, body) SELECT "
    "CAST(substr(value, 1, instr(value, '[') - 1) AS INTEGER), ?2, "
    "CAST(substr(value, instr(value, '[')) AS BLOB) FROM json_each(?1)"
)


def _drop_done(bits: Sequence[int]) -> str:
    """Delete a fanned-out message no destination still owes. The destinations are listed
    (``dest IN (...)``) so the lookup uses the ``(dest, seq)`` key instead of a scan."""
    listed = ", ".join(str(int(bit)) for bit in bits)
    return ("DELETE FROM msgs WHERE seq = ? AND seq < (SELECT value FROM meta WHERE "  # noqa: S608
            f"key = 'fanout') AND NOT EXISTS (SELECT 1 FROM deliveries WHERE dest IN ({listed}) "
            "AND seq = ?)")
_CHECKPOINT_EVERY = 0.5
_WAL_LIMIT = 4 << 20
"""Bytes of write-ahead log after which the engine checkpoints at once (and ``maintain``
truncates it); a quarter of the reserve when the disk is nearly full."""
_AUTOCHECKPOINT = 4000  # pages (16 MiB): the backstop for a process whose engine never runs
_RESERVE = 256 << 10
"""Free bytes the queue's own writes leave on its disk beyond what the pending checkpoint
needs: room for the engine's acks and leases to commit and be checkpointed."""
_ROOM_CAP = 64 << 20  # bytes written between two measurements of the free space, at most
_FAN_OUT_BYTES = 256  # a message's two delivery rows, their index entries and log frames
_FAN_OUT_STEP = 1000  # messages fanned out per lease, at most
_RECLAIM_EVERY = 1.0
_BATCH_LIMIT = 5000

_Row = tuple[int, float, bytes]  # destinations, created (Unix s), serialised message

_instances: weakref.WeakSet[SQLiteOutbox] = weakref.WeakSet()
_inherited: list[sqlite3.Connection] = []
def _after_fork() -> None:
    for outbox in list(_instances):
        outbox._reset_after_fork()


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class _CorruptError(OutboxError):
    """The file is damaged: no retry will help, and ``maintain`` says so instead of waiting."""


def _is_corrupt(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return (code & 0xFF) in _CORRUPT
    return any(text in str(exc) for text in ("malformed", "not a database"))


def _storage_error(exc: sqlite3.Error, path: str) -> OpenCDPError:
    text = str(exc)
    if _is_corrupt(exc):
        return _CorruptError(
            f"the SQLite outbox {path} is corrupted ({text}): stop the processes that use it, "
            f"move it aside with its -wal file and restart; `sqlite3 {path} .recover` "
            "salvages what it can")
    if "full" in text.lower():
        return QueueFullError(f"the SQLite outbox {path} is full: {text}")
    return OutboxError(f"the SQLite outbox {path} failed: {text}")


class _Batch:
    __slots__ = ("done", "error", "rows")

    def __init__(self) -> None:
        self.rows: list[_Row] = []
        self.done = False
        self.error: OpenCDPError | None = None


class SQLiteOutbox(Outbox):
    """Durable outbox in one SQLite file (created with mode 0600).

    ``durability`` is ``"durable"`` (the row is committed when ``put`` returns) or
    ``"batched"`` (committed within ``batch_interval`` seconds; a SIGKILL can lose that much).
    ``delete_on_close`` removes the file on ``close`` (for a scratch spill file).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: str = "durable",
        batch_interval: float = 0.005,
        busy_timeout: float = 10.0,
        delete_on_close: bool = False,
        logger: logging.Logger | None = None,
    ) -> None:
        if durability not in ("durable", "batched"):
            raise ConfigurationError(
                f"durability must be 'durable' or 'batched', got {durability!r}"
            )
        if batch_interval <= 0:
            raise ConfigurationError("batch_interval must be > 0 seconds")
        self.path = str(Path(path).expanduser())
        self.durability = durability
        self._batched = durability == "batched"
        self.durable = True
        self.batch_interval = batch_interval
        self.busy_timeout = busy_timeout
        self.delete_on_close = delete_on_close
        self._log = logger or _log
        self._closed = False
        self._broken: str | None = None  # why the file at the path cannot be used any more
        self._init_state()
        self._create_file()
        self._db = self._connect(check=True)
        _instances.add(self)

    def __repr__(self) -> str:
        return f"SQLiteOutbox({self.path!r}, durability={self.durability!r})"

    # setup -----------------------------------------------------------------------------
    def _init_state(self) -> None:
        self._lock = threading.RLock()  # guards the connection
        self._batch_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._batch = _Batch()
        self._buffer: PutBuffer[_Row] = PutBuffer(
            self._insert, interval=self.batch_interval, name="opencdp-sqlite-flush",
            log=self._log, limit=_BATCH_LIMIT)  # batched mode
        self._bits = {r.bit: r.name for r in registry.registrations()}
        self._mask = sum(self._bits)
        self._drop = _drop_done(list(self._bits))
        self._leased: dict[int, dict[int, int]] = {bit: {} for bit in self._bits}
        self._owed: dict[int, set[int]] = {bit: set() for bit in self._bits}
        self._room = 0  # bytes puts may still write before the free space is measured again
        self._wal_limit = _WAL_LIMIT
        self._last_checkpoint = clock.monotonic()
        self._pid = os.getpid()
        self._owner: int | None = None  # our row in ``owners``, written at the first lease
        self._next_reclaim = 0.0  # monotonic

    def _reset_after_fork(self) -> None:
        # The parent's connection, locks and flusher thread are not ours to use in the child;
        # the parent's unflushed batched rows are the parent's to commit. The inherited
        # connection is kept, never closed: closing it here could checkpoint or unlink the
        # WAL under the parent's feet.
        _inherited.append(self._db)
        self._init_state()
        if not self._closed:
            self._db = self._connect()

    def _create_file(self) -> None:
        try:
            create_private(self.path)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the SQLite outbox file {self.path}: {exc.strerror}"
            ) from None

    def _connect(self, check: bool = False) -> sqlite3.Connection:
        """A configured connection; with ``check``, the file is vetted first (and the schema
        created or brought up to date), as at construction."""
        try:
            db = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open the SQLite outbox {self.path}: {exc}") from None
        try:
            if check:
                self._check_file(db)
            self._configure(db)
            if check:
                self._create_schema(db)
        except BaseException:
            db.close()
            raise
        self._file = _file_identity(self.path)
        self._wal_file = _file_identity(self.path + "-wal")
        return db

    def _check_file(self, db: sqlite3.Connection) -> None:
        """Refuse, before anything is written, a file that is not an opencdp queue or is
        damaged (read-only queries: the file is left exactly as it was)."""
        try:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")}
            if tables and ("msgs" not in tables or tables - _TABLES):
                raise ConfigurationError(
                    f"{self.path} is not an opencdp queue: it holds the table(s) "
                    f"{', '.join(sorted(tables - _TABLES)[:5])} of another application. It was "
                    "left unchanged; point the queue at a file of its own")
            if tables and os.path.getsize(self.path) <= _CHECK_LIMIT:
                found = db.execute("PRAGMA quick_check(1)").fetchone()
                if found is None or found[0] != "ok":
                    raise ConfigurationError(
                        f"the SQLite outbox {self.path} is corrupted ({found and found[0]}): "
                        f"move it aside with its -wal file; `sqlite3 {self.path} .recover` "
                        "salvages what it can")
        except (sqlite3.Error, OSError) as exc:
            raise ConfigurationError(
                f"cannot open the SQLite outbox {self.path}: {exc} (is it an SQLite file?)"
            ) from None

    def _create_schema(self, db: sqlite3.Connection) -> None:
        try:
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                db.execute(statement)
            for table, column, kind in _ADDED_COLUMNS:  # a file written by an earlier version
                columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise ConfigurationError(f"cannot open the SQLite outbox {self.path}: {exc}") from None

    def _configure(self, db: sqlite3.Connection) -> None:
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigurationError(f"{self.path}: SQLite refused WAL mode ({mode})")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            db.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT}")
            self._page = int(db.execute("PRAGMA page_size").fetchone()[0])
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open the SQLite outbox {self.path}: {exc}") from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the shared connection."""
        with self._lock:
            self._usable()
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None
            try:
                yield db
                paid = self._pay_owed(db)
                db.execute("COMMIT")
                for bit, seqs in paid:
                    self._owed[bit].difference_update(seqs)
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _storage_error(exc, self.path) from None
                raise

    def _usable(self) -> None:
        """Raise unless the connection can be used now (the lock is held). A transaction
        left open (a COMMIT that failed, and its ROLLBACK too) is rolled back first: a put
        would land in it uncommitted, and its snapshot would hold every checkpoint back."""
        if self._closed:
            raise OutboxError(f"the SQLite outbox {self.path} is closed")
        if self._broken is not None:
            raise OutboxError(self._broken)
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None

    # the file under the path -------------------------------------------------------------
    def _watch_file(self) -> None:
        """Reopen the path if the file under it is not the one this process writes to."""
        if self._broken is not None or self._closed:
            return
        found = _file_identity(self.path)
        if found is not None and found == self._file:
            self._wal_file = _file_identity(self.path + "-wal")
            return
        with self._lock:
            if not self._closed and _file_identity(self.path) != self._file:
                self._recover("deleted" if found is None else "replaced")

    def _recover(self, how: str) -> None:
        """Carry what the old file holds into the file now at the path (the lock is held)."""
        old = self._db
        carry = f"{self.path}.carried-{os.getpid()}-{secrets.token_hex(4)}"
        mine = {bit: {ulid_str(i) for i in leased} for bit, leased in self._leased.items()}
        with contextlib.suppress(OpenCDPError), self._write():
            pass  # writes the acks still owed, into the old file: its rows are what is copied
        for owed in self._owed.values():
            owed.clear()  # rows of the old file
        try:
            with contextlib.suppress(sqlite3.Error):
                old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            Path(carry).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            copy = sqlite3.connect(carry)
            try:
                old.backup(copy)
            finally:
                copy.close()
        except (OSError, sqlite3.Error) as exc:
            self._fail(f"the SQLite outbox {self.path} was {how} while in use, and what the old "
                       f"file holds could not be copied out ({exc}); restart to reopen it")
            return
        old.close()
        # A log still at its name (another process holds the old file) is the old file's,
        # and so is the index beside it: never the new file's. Unlinking the names leaves
        # that process its open handles.
        if how == "deleted" or _file_identity(self.path + "-wal") == self._wal_file:
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)
        try:
            self._create_file()
            self._db = self._connect(check=True)
            carried = self._merge(carry, mine)
        except (OpenCDPError, sqlite3.Error) as exc:
            self._fail(f"the SQLite outbox {self.path} was {how} while in use and cannot be "
                       f"reopened ({exc}); what the old file held is kept in {carry}")
            return
        for suffix in ("", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(carry + suffix)
        self._log.warning(
            "[CDP] OCDP325 the SQLite outbox %s was %s while in use; reopened it at its path "
            "and carried over %d pending message(s) and %d dead letter(s) from the old file",
            self.path, how, *carried)

    def _fail(self, reason: str) -> None:
        self._broken = reason
        self._log.error("[CDP] OCDP325 %s", reason)

    def _merge(self, carry: str, mine: dict[int, set[str]]) -> tuple[int, int]:
        """Copy what ``carry`` (the lost file) still owes into the open file, skipping
        messages it already has; this instance's leases stay its own. Returns the counts of
        messages and dead letters carried."""
        db = self._db
        db.execute("ATTACH DATABASE ? AS carried", (carry,))
        try:
            self._owner = None
            with self._write() as db:
                self._owner = self._register(db)
                before = db.execute("SELECT coalesce(max(seq), 0) FROM main.msgs").fetchone()[0]
                held = [orjson.dumps(sorted(mine.get(bit, ()))).decode() for bit in self._bits]
                messages = db.execute(_carry_messages(list(self._bits)), held).rowcount
                until = db.execute(
                    "SELECT max(due) FROM carried.deliveries WHERE leased = 1").fetchone()[0]
                for bit, ids in mine.items():
                    if not ids:
                        continue
                    packed = orjson.dumps(sorted(ids)).decode()
                    db.execute(
                        "INSERT OR IGNORE INTO deliveries (dest, seq, due, leased, owner) "
                        "SELECT ?, seq, ?, 1, ? FROM main.msgs WHERE seq > ? AND "
                        "json_extract(CAST(body AS TEXT), '$[0]') IN "
                        "(SELECT value FROM json_each(?))",
                        (bit, until or clock.wall(), self._owner, before, packed))
                    self._leased[bit] = {
                        parse_ulid(ulid): seq
                        for ulid, seq in db.execute(_MINE, (before, packed))}
                dead = db.execute(
                    "INSERT INTO main.dead (dest, id, body, reason, status, attempts, created, "
                    "dead_at) SELECT dest, id, body, reason, status, attempts, created, dead_at "
                    "FROM carried.dead c WHERE NOT EXISTS "
                    "(SELECT 1 FROM main.dead d WHERE d.id = c.id AND d.dest = c.dest) "
                    "ORDER BY rowid").rowcount
                db.execute(
                    "INSERT INTO main.delivered (dest, n) SELECT dest, n FROM carried.delivered "
                    "WHERE NOT EXISTS (SELECT 1 FROM main.delivered)")
        finally:
            with contextlib.suppress(sqlite3.Error):
                db.execute("DETACH DATABASE carried")
        return messages, dead

    # caller's thread -------------------------------------------------------------------
    def put(self, message: Message) -> None:
        dests = message.destinations & self._mask
        if not dests:
            return
        row = (dests, clock.wall(), _dumps(message))
        if self._batched:
            self._buffer.add(row)
            return
        commit = self._commit_lock
        if commit.acquire(blocking=False):
            # Nobody is committing: write this row now, with the rows of any caller that
            # queued while the last commit ran (they are waiting for the lock).
            try:
                waiting = self._batch
                if not waiting.rows:
                    self._insert_one(row)
                    return
                self._commit(waiting, row)
            finally:
                commit.release()
            if waiting.error is not None:
                raise waiting.error
            return
        # Group commit: queue the row; whoever holds the commit lock next commits every
        # queued row at once, and the callers whose rows it committed just return.
        with self._batch_lock:
            batch = self._batch
            batch.rows.append(row)
        with commit:
            if not batch.done:
                self._commit(batch)
        if batch.error is not None:
            raise batch.error

    def _commit(self, batch: _Batch, extra: _Row | None = None) -> None:
        """Commit a batch of queued rows (the commit lock is held)."""
        with self._batch_lock:
            self._batch = _Batch()
            if extra is not None:
                batch.rows.append(extra)
        try:
            self._insert(batch.rows)
        except OpenCDPError as exc:
            batch.error = exc
        batch.done = True

    def _insert_one(self, row: _Row) -> None:
        with self._lock:  # one statement is its own transaction: no BEGIN/COMMIT round trips
            self._usable()
            self._charge(self._page + len(row[2]) + _FAN_OUT_BYTES)
            try:
                self._db.execute(_INSERT, row)
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None

    def _insert(self, rows: Sequence[_Row]) -> None:
        if len(rows) == 1:
            self._insert_one(rows[0])
            return
        packed = orjson.dumps([f"{d}{body.decode()}" for d, _, body in rows])
        oldest = min(created for _, created, _ in rows)
        with self._write() as db:
            # the rows, in the file and the log, and the delivery rows they will fan out to
            self._charge(2 * len(packed) + _FAN_OUT_BYTES * len(rows) + 4 * self._page)
            db.execute(_INSERT_MANY, (packed, oldest))

    def _charge(self, cost: int) -> None:
        """Count a put's bytes against the disk's room (see the module docstring); raises
        QueueFullError, before anything is written, when they do not fit. The lock is held."""
        self._room -= cost
        if self._room >= 0:
            return
        room = self._measure_room()
        if room < cost and self._wal_size():
            self._checkpoint("TRUNCATE")  # the log's space back to the disk before refusing
            room = self._measure_room()
        self._room = min(room, _ROOM_CAP) - cost
        if self._room < 0:
            self._room = 0  # measured again at the next put
            raise QueueFullError(
                f"the SQLite outbox {self.path} is full: its disk has {max(room, 0) + _RESERVE} "
                f"bytes left for it, and it keeps {_RESERVE} free to checkpoint"
            )

    def _measure_room(self) -> int:
        """Bytes the queue can still write: free space on the disk (the log grows there),
        less the reserve and the growth of the file that is not covered by its free pages:
        what the pending checkpoint needs, and the delivery rows of the messages not fanned
        out yet (rowids above the mark are dense)."""
        db = self._db
        try:
            disk = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
            size = os.stat(self.path).st_size
            pages = int(db.execute("PRAGMA page_count").fetchone()[0])
            free_pages = int(db.execute("PRAGMA freelist_count").fetchone()[0])
            unfanned = int(db.execute(
                "SELECT coalesce(max(seq), 0) - (SELECT value FROM meta WHERE key = 'fanout') "
                "FROM msgs").fetchone()[0])
        except (OSError, sqlite3.Error):
            return _ROOM_CAP  # not measurable here: SQLite reports a full disk itself
        if not disk.f_blocks:
            return _ROOM_CAP  # a filesystem that reports no sizes
        growth = max(0, pages * self._page - size) + max(0, unfanned) * _FAN_OUT_BYTES
        free = disk.f_bavail * disk.f_frsize
        # Many small transactions rewrite the same pages into the log: on a nearly full disk
        # it is checkpointed long before it could eat the reserve.
        self._wal_limit = _WAL_LIMIT if free > 16 * _WAL_LIMIT else _RESERVE // 4
        return free - max(0, growth - free_pages * self._page) - _RESERVE

    def put_many(self, messages: Sequence[Message]) -> None:
        now = clock.wall()
        mask = self._mask
        rows = [(m.destinations & mask, now, _dumps(m)) for m in messages
                if m.destinations & mask]
        if rows:
            # The spill moving back, on the engine's thread, batch after batch: each one
            # measures the disk's room afresh, with the log of the last one checkpointed.
            self._checkpoint("PASSIVE")
            self._insert(rows)

    def flush(self) -> None:
        """Commit buffered rows now (batched mode); a no-op in durable mode."""
        self._buffer.commit()

    # dispatcher's thread -----------------------------------------------------------------
    def _fan_out(self, db: sqlite3.Connection, now: float) -> None:
        # A new message is due from its creation, and no later than this lease's ``now``
        # (a lane may read its clock just before a put lands).
        # A bounded step: one transaction's growth (and log) stays small next to the reserve.
        mark = db.execute("SELECT value FROM meta WHERE key = 'fanout'").fetchone()[0]
        top = db.execute(
            "SELECT coalesce((SELECT seq FROM msgs WHERE seq > ?1 ORDER BY seq LIMIT 1 "
            "OFFSET ?2), (SELECT max(seq) FROM msgs))", (mark, _FAN_OUT_STEP - 1),
        ).fetchone()[0]
        if top is None or top <= mark:
            return
        for bit in self._bits:
            db.execute(
                "INSERT OR IGNORE INTO deliveries (dest, seq, due) SELECT ?, seq, "
                "min(created, ?) FROM msgs WHERE seq > ? AND seq <= ? AND dests & ?",
                (bit, now, mark, top, bit),
            )
        db.execute("UPDATE meta SET value = ? WHERE key = 'fanout'", (top,))
        db.execute(self._drop, (mark, mark))

    def _wal_size(self) -> int:
        try:
            return os.stat(self.path + "-wal").st_size
        except OSError:
            return 0

    def _maybe_checkpoint(self) -> None:
        """Checkpoint on the engine's thread every half second, or now if the log is large."""
        if (clock.monotonic() - self._last_checkpoint < _CHECKPOINT_EVERY
                and self._wal_size() <= self._wal_limit):
            return
        self._checkpoint("PASSIVE")

    def _checkpoint(self, mode: str) -> None:
        """``PASSIVE`` copies what it can without waiting; ``TRUNCATE`` (in ``maintain``,
        for a log left large by a full disk or an earlier version) waits briefly for other
        processes' writers and gives the log's space back to the disk."""
        self._last_checkpoint = clock.monotonic()
        with self._lock:
            if self._closed:
                return
            db = self._db
            try:
                if mode == "TRUNCATE":
                    db.execute("PRAGMA busy_timeout=200")
                db.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
            except sqlite3.Error as exc:
                self._log.debug("opencdp outbox: checkpoint of %s failed: %s", self.path, exc)
            finally:
                if mode == "TRUNCATE":
                    with contextlib.suppress(sqlite3.Error):
                        db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            self._room = 0  # the free space changed: measure it again

    def _register(self, db: sqlite3.Connection) -> int:
        host, pid, started, token = process_identity()
        cursor = db.execute(
            "INSERT INTO owners (host, pid, started, token, pidns, boot) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (host, pid, started, token, *process_namespace()),
        )
        return int(cursor.lastrowid or 0)

    def _reclaim(self, db: sqlite3.Connection, now: float) -> int:
        """Hand back at once the leases of processes on this host that are provably gone (a
        crash or kill -9 in this PID namespace, or any before a reboot), instead of waiting
        for the leases to expire. An owner it cannot prove gone keeps its row and leases."""
        host = process_identity()[0]
        dead_owners = [
            owner for owner, pid, started, namespace, boot in db.execute(
                "SELECT id, pid, started, pidns, boot FROM owners WHERE host = ? AND id IS NOT ?",
                (host, self._owner),
            ).fetchall()
            if provably_dead(pid, started, namespace, boot)
        ]
        freed = 0
        for owner in dead_owners:
            freed += db.execute(
                "UPDATE deliveries SET due = min(due, ?), leased = 0, owner = NULL "
                "WHERE owner = ? AND leased = 1",
                (now, owner),
            ).rowcount
            db.execute("DELETE FROM owners WHERE id = ?", (owner,))
        if freed:
            self._log.warning(
                "[CDP] OCDP324 reclaimed %d in-flight message(s) leased by %d process(es) that "
                "are no longer running on this host; delivering them now", freed, len(dead_owners),
            )
        return freed

    def lease(self, destination: str, limit: int, now: float, lease_seconds: float) -> list[Leased]:
        bit = _bit(destination)
        if self._buffer:
            self._buffer.commit()
        out: list[Leased] = []
        with self._write() as db:
            if self._owner is None:
                self._owner = self._register(db)
            if clock.monotonic() >= self._next_reclaim:
                self._next_reclaim = clock.monotonic() + _RECLAIM_EVERY
                self._reclaim(db, now)
            self._fan_out(db, now)
            rows = db.execute(_LEASE_DUE, (bit, now, limit)).fetchall()
            if len(rows) < limit:
                # Not-before times written under another clock (see ``bound_due``), after the
                # due ones: two index range scans, never a scan of the waiting retries.
                rows += db.execute(
                    _LEASE_AHEAD, (bit, now + MAX_AHEAD, limit - len(rows))).fetchall()
            if rows:
                until = now + lease_seconds
                owner = self._owner
                db.executemany(
                    "UPDATE deliveries SET due = ?, leased = 1, owner = ? "
                    "WHERE dest = ? AND seq = ?",
                    [(until, owner, bit, row[0]) for row in rows],
                )
        leased = self._leased[bit]
        for seq, attempt, error, body, created in rows:
            message = loads_message(body)
            leased[message.id] = seq
            out.append(Leased(message, attempt, error, float(created)))
        self._maybe_checkpoint()
        return out

    def maintain(self, now: float) -> None:
        """Follow the file at the path, reclaim dead processes' leases and checkpoint; a
        failure waits for the next call, but a damaged or lost file raises, to be counted."""
        self._watch_file()
        try:
            with self._write() as db:
                self._reclaim(db, now)
        except _CorruptError:
            raise
        except OpenCDPError as exc:
            if self._broken is not None:
                raise
            self._log.debug("opencdp outbox: maintenance skipped: %s", exc)
        self._next_reclaim = clock.monotonic() + _RECLAIM_EVERY
        self._checkpoint("TRUNCATE" if self._wal_size() > self._wal_limit else "PASSIVE")
        with self._lock:
            if not self._closed:
                self._measure_room()  # the log's limit follows the disk

    def after_fork(self) -> None:
        if self._pid != os.getpid():
            self._reset_after_fork()

    def pending_messages(self) -> int:
        return len(self._buffer)

    def _resolve(self, bit: int, ids: Sequence[int]) -> dict[int, int]:
        """Message id -> row of the messages this instance leased; other ids are ignored (as
        the memory outbox does), so acking or retrying twice is harmless. They stay leased
        here until ``_forget``, after the write committed, so a failed write can be redone."""
        leased = self._leased[bit]
        return {i: seq for i in ids if (seq := leased.get(i)) is not None}

    def _forget(self, bit: int, ids: Sequence[int]) -> None:
        leased = self._leased[bit]
        for i in ids:
            leased.pop(i, None)

    def _delete_delivered(self, db: sqlite3.Connection, bit: int, seqs: Sequence[int]) -> None:
        done = 0
        for seq in seqs:
            done += db.execute(
                "DELETE FROM deliveries WHERE dest = ? AND seq = ?", (bit, seq)
            ).rowcount
        if done:
            db.execute(
                "INSERT INTO delivered (dest, n) VALUES (?, ?) "
                "ON CONFLICT (dest) DO UPDATE SET n = n + excluded.n",
                (bit, done),
            )
        db.executemany(self._drop, [(seq, seq) for seq in seqs])

    def _pay_owed(self, db: sqlite3.Connection) -> list[tuple[int, list[int]]]:
        """Write the acks that failed earlier into the current transaction; returns them, to
        be forgotten once it committed."""
        paid = [(bit, sorted(owed)) for bit, owed in self._owed.items() if owed]
        for bit, seqs in paid:
            self._delete_delivered(db, bit, seqs)
        return paid

    def ack(self, destination: str, ids: Sequence[int]) -> None:
        bit = _bit(destination)
        if not ids:
            return
        resolved = self._resolve(bit, ids)
        try:
            with self._write() as db:
                self._delete_delivered(db, bit, list(resolved.values()))
        except OpenCDPError:
            # Delivered all the same: owed, so neither a retry of these ids nor a lease of
            # ours sends them again before the delete is written.
            self._owed[bit].update(resolved.values())
            self._forget(bit, list(resolved))
            raise
        self._forget(bit, list(resolved))
        self._maybe_checkpoint()

    def retry(self, destination: str, items: Sequence[RetryItem]) -> None:
        bit = _bit(destination)
        if not items:
            return
        seqs = self._resolve(bit, [item.id for item in items])
        with self._write() as db:
            db.executemany(
                "UPDATE deliveries SET due = ?, leased = 0, attempt = coalesce(?, attempt + 1), "
                "error = ? WHERE dest = ? AND seq = ?",
                [(it.not_before, it.attempt, it.error, bit, seqs[it.id])
                 for it in items if it.id in seqs],
            )
        self._forget(bit, list(seqs))
        self._maybe_checkpoint()

    def dead(self, destination: str, items: Sequence[DeadItem], now: float) -> None:
        bit = _bit(destination)
        if not items:
            return
        seqs = self._resolve(bit, [item.id for item in items])
        with self._write() as db:
            for item in items:
                seq = seqs.get(item.id)
                if seq is None:
                    continue
                db.execute(
                    "INSERT INTO dead (dest, id, body, reason, status, attempts, created, dead_at) "
                    "SELECT d.dest, ?, m.body, ?, ?, d.attempt + 1, m.created, ? "
                    "FROM deliveries d JOIN msgs m ON m.seq = d.seq "
                    "WHERE d.dest = ? AND d.seq = ?",
                    (ulid_str(item.id), item.reason, item.status, now, bit, seq),
                )
                db.execute("DELETE FROM deliveries WHERE dest = ? AND seq = ?", (bit, seq))
            db.executemany(self._drop, [(seq, seq) for seq in seqs.values()])
        self._forget(bit, list(seqs))
        self._maybe_checkpoint()

    def next_due(self, destination: str, now: float) -> float | None:
        bit = _bit(destination)
        if self._buffer:
            return now
        with self._lock:
            self._usable()
            db = self._db
            try:
                fresh = db.execute(
                    "SELECT 1 FROM msgs WHERE seq > (SELECT value FROM meta WHERE key = 'fanout') "
                    "AND dests & ? LIMIT 1",
                    (bit,),
                ).fetchone()
                if fresh is not None:
                    return now
                due, ahead = db.execute(
                    "SELECT min(due), EXISTS (SELECT 1 FROM deliveries WHERE dest = ?1 "
                    "AND due > ?2 AND leased = 0) FROM deliveries WHERE dest = ?1",
                    (bit, now + MAX_AHEAD),
                ).fetchone()
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None
        if due is None:
            return None
        return now if ahead or due <= now else float(due)

    # inspection and dead letters ---------------------------------------------------------
    def stats(self, now: float) -> dict[str, QueueStats]:
        if self._buffer:
            self._buffer.commit()
        out: dict[str, QueueStats] = {}
        with self._lock:
            self._usable()
            db = self._db
            try:
                mark = db.execute("SELECT value FROM meta WHERE key = 'fanout'").fetchone()[0]
                for bit, name in self._bits.items():
                    fresh, fresh_oldest = db.execute(
                        "SELECT count(*), min(created) FROM msgs WHERE seq > ? AND dests & ?",
                        (mark, bit),
                    ).fetchone()
                    waiting, oldest = db.execute(
                        "SELECT count(*), min(m.created) FROM deliveries d "
                        "JOIN msgs m ON m.seq = d.seq "
                        "WHERE d.dest = ? AND (d.leased = 0 OR d.due <= ?)",
                        (bit, now),
                    ).fetchone()
                    in_flight = db.execute(
                        "SELECT count(*) FROM deliveries WHERE dest = ? AND leased = 1 "
                        "AND due > ?",
                        (bit, now),
                    ).fetchone()[0]
                    dead = db.execute(
                        "SELECT count(*) FROM dead WHERE dest = ?", (bit,)
                    ).fetchone()[0]
                    row = db.execute("SELECT n FROM delivered WHERE dest = ?", (bit,)).fetchone()
                    created = [c for c in (fresh_oldest, oldest) if c is not None]
                    out[name] = QueueStats(
                        pending=fresh + waiting,
                        in_flight=in_flight,
                        dead=dead,
                        delivered=row[0] if row else 0,
                        oldest_pending_age=max(0.0, now - min(created)) if created else None,
                        in_flight_here=len(self._leased[bit]),
                    )
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None
        return out

    @staticmethod
    def _where(destination: str | None, since: float | None) -> tuple[int | None, float | None]:
        return (None if destination is None else _bit(destination)), since

    @staticmethod
    def _letter(row: tuple[Any, ...]) -> DeadLetter:
        dest, body, reason, status, attempts, dead_at = row
        return DeadLetter(
            message=loads_message(body),
            destination=registry.name(dest),
            reason=reason,
            status=status,
            attempts=attempts,
            dead_at=dead_at,
        )

    def dead_letters(
        self, destination: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        args = self._where(destination, since)
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT dest, body, reason, status, attempts, dead_at FROM dead "
                    "WHERE (?1 IS NULL OR dest = ?1) AND (?2 IS NULL OR dead_at >= ?2) "
                    "ORDER BY dead_at DESC, rowid DESC LIMIT ?3",
                    (*args, limit),
                ).fetchall()
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None
        return [self._letter(row) for row in rows]

    def dead_letter(self, message_id: int) -> list[DeadLetter]:
        """The dead letters of one message (one per destination that gave up on it)."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT dest, body, reason, status, attempts, dead_at FROM dead WHERE id = ? "
                    "ORDER BY dead_at DESC",
                    (ulid_str(message_id),),
                ).fetchall()
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None
        return [self._letter(row) for row in rows]

    def replay(self, destination: str | None = None, since: float | None = None) -> int:
        args = self._where(destination, since)
        with self._write() as db:
            rows = db.execute(
                "SELECT rowid, dest, id, created, body FROM dead "
                "WHERE (?1 IS NULL OR dest = ?1) AND (?2 IS NULL OR dead_at >= ?2) ORDER BY rowid",
                args,
            ).fetchall()
            now = clock.wall()
            db.executemany(_INSERT, [(dest, now, body) for _, dest, _id, _created, body in rows])
            db.executemany("DELETE FROM dead WHERE rowid = ?", [(row[0],) for row in rows])
        return len(rows)

    def purge(self, destination: str | None = None, since: float | None = None,
              before: float | None = None) -> int:
        args = (*self._where(destination, since), before)
        with self._write() as db:
            return int(
                db.execute(
                    "DELETE FROM dead WHERE (?1 IS NULL OR dest = ?1) AND "
                    "(?2 IS NULL OR dead_at >= ?2) AND (?3 IS NULL OR dead_at < ?3)",
                    args,
                ).rowcount
            )

    # the hold mark ------------------------------------------------------------------------
    # Three rows of ``meta`` per destination (state, since and changed, in milliseconds):
    # no new table, so a file with a hold mark still opens in a version without holds.
    @staticmethod
    def _read_mark(db: sqlite3.Connection, destination: str) -> HoldMark | None:
        key = f"hold:{destination}"
        rows = dict(db.execute("SELECT key, value FROM meta WHERE key IN (?, ?, ?)",
                               (key, f"{key}:since", f"{key}:changed")).fetchall())
        state = rows.get(key)
        if not isinstance(state, int) or not 0 <= state < len(HOLD_STATES):
            return None
        return HoldMark(HOLD_STATES[state], rows.get(f"{key}:since", 0) / 1000,
                        rows.get(f"{key}:changed", 0) / 1000)

    def hold_mark(self, destination: str) -> HoldMark | None:
        _bit(destination)
        with self._lock:
            self._usable()
            try:
                return self._read_mark(self._db, destination)
            except sqlite3.Error as exc:
                raise _storage_error(exc, self.path) from None

    def set_hold_mark(self, destination: str, state: str, now: float,
                      expect: tuple[str | None, ...]) -> HoldMark | None:
        _bit(destination)
        index = HOLD_STATES.index(state)
        key = f"hold:{destination}"
        with self._write() as db:
            mark = self._read_mark(db, destination)
            if (None if mark is None else mark.state) not in expect:
                return mark
            since = now if mark is None else mark.since
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [
                (key, index), (f"{key}:since", int(since * 1000)),
                (f"{key}:changed", int(now * 1000))])
        return HoldMark(state, int(since * 1000) / 1000, int(now * 1000) / 1000)

    def purge_pending(self, destination: str, before: float | None, now: float) -> int:
        bit = _bit(destination)
        if self._buffer:
            self._buffer.commit()
        with self._write() as db:
            while True:  # every message fanned out first, so none escapes as not yet a row
                mark = db.execute("SELECT value FROM meta WHERE key = 'fanout'").fetchone()[0]
                self._fan_out(db, now)
                if db.execute("SELECT value FROM meta WHERE key = 'fanout'").fetchone()[0] == mark:
                    break
            seqs = [row[0] for row in db.execute(
                "SELECT d.seq FROM deliveries d JOIN msgs m ON m.seq = d.seq WHERE d.dest = ? "
                "AND (d.leased = 0 OR d.due <= ?) AND (? IS NULL OR m.created < ?)",
                (bit, now, before, before))]
            db.executemany("DELETE FROM deliveries WHERE dest = ? AND seq = ?",
                           [(bit, seq) for seq in seqs])
            db.executemany(self._drop, [(seq, seq) for seq in seqs])
        self._maybe_checkpoint()
        return len(seqs)

    def close(self) -> None:
        if self._closed:
            return
        self._buffer.close()
        with self._lock:
            if self._owner is not None and self._pid == os.getpid():
                # Leases still held (a close that timed out) keep their owner row, so the next
                # process on this host reclaims them as soon as this one has exited.
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute(
                        "DELETE FROM owners WHERE id = ?1 AND NOT EXISTS "
                        "(SELECT 1 FROM deliveries WHERE owner = ?1 AND leased = 1)",
                        (self._owner,))
            self._closed = True
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
        _instances.discard(self)
        if self.delete_on_close:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)

    def __enter__(self) -> SQLiteOutbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


hold_across_fork(lambda: [outbox._lock for outbox in list(_instances)], _after_fork)
