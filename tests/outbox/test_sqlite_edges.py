"""The SQLite outbox at the edges of its storage, with real files: a full disk (a small tmpfs)
and space again, a bounded write-ahead log, the queue file deleted, replaced, corrupted or
another program's, and processes in other PID namespaces sharing the file."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencdp.errors import OutboxError, QueueFullError
from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid
from opencdp.outbox.sqlite import SQLiteOutbox
from support.stored import stored

BOTH = OPENCDP | CUSTOMERIO


def msg(n: int, destinations: int = BOTH, pad: int = 50) -> Message:
    return Message(new_ulid(), "track", f"user-{n}", "viewed", {"seq": n, "pad": "x" * pad},
                   None, destinations)


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A real filesystem of ``size`` bytes (tmpfs), unmounted afterwards."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, name: str = "filler") -> Path:
    """Take every free byte of ``disk``."""
    path = disk / name
    with open(path, "ab", buffering=0) as handle:
        for _ in range(100_000):
            try:
                handle.write(b"\1" * 4096)
            except OSError:
                return path
    raise AssertionError("the disk never filled up")


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# -- a full disk, then space again ----------------------------------------------------------


@pytest.mark.parametrize("after", ["same client", "new client"])
def test_a_full_disk_then_space_delivers_everything(tmp_path: Path, sandbox: Any,
                                                    after: str) -> None:
    """The tester's case: 4,000 calls onto a 1 MiB disk taken by a filler while Customer.io is
    down; then the filler goes and Customer.io recovers. Everything arrives, once, whether
    this client carries on or a new one opens the same file."""
    from health.support import client_options
    from opencdp import Client

    count = 4000
    with small_disk(tmp_path / "disk", "1m") as disk:
        options = client_options(sandbox, queue=f"sqlite:///{disk / 'q.db'}",
                                 spill_path=str(tmp_path / "spill" / "spill.db"))
        sandbox.set_faults({"customerio": {"down": True}})
        client = Client(**options)
        filler = disk / "filler"
        filler.write_bytes(b"\1" * (700 << 10))
        for seq in range(count):
            client.track("u1", "viewed", {"seq": seq})  # every call returns
        if after == "new client":
            client.close(timeout=1)
        os.unlink(filler)
        sandbox.clear_faults()
        if after == "new client":
            client = Client(**options)
        try:
            assert client.flush(60)
            wait_for(lambda: len(stored(sandbox, "opencdp")) == count, 30, "OpenCDP")
            wal = os.path.getsize(str(disk / "q.db") + "-wal")
        finally:
            client.close(timeout=5)
    assert sorted(stored(sandbox, "opencdp")) == list(range(count))
    customerio = stored(sandbox, "customerio")
    assert sorted(customerio) == list(range(count))
    assert set(customerio.values()) == {1}, "Customer.io got a message twice"
    assert wal <= 256 << 10


def test_the_queue_refuses_puts_before_its_own_writes_wedge_it(tmp_path: Path) -> None:
    """Puts stop (QueueFullError, for the spill) while the engine's writes still fit: after
    the refusal every message is leased and acked, and puts are taken again in the space
    the acks freed."""
    with small_disk(tmp_path / "disk", "1m") as disk:
        box = SQLiteOutbox(disk / "q.db")
        try:
            taken = 0
            with pytest.raises(QueueFullError, match="keeps"):
                for n in range(100_000):
                    box.put(msg(n))
                    taken += 1
            assert 1000 < taken < 100_000
            for destination in ("opencdp", "customerio"):
                got = 0
                for _ in range(100):
                    batch = box.lease(destination, 500, time.time(), 30)
                    if not batch:
                        break
                    box.ack(destination, [x.message.id for x in batch])
                    got += len(batch)
                assert got == taken, destination
            box.maintain(time.time())
            for n in range(taken // 2):
                box.put(msg(n))
            stats = box.stats(time.time())
            assert stats["opencdp"].delivered == taken
            assert stats["opencdp"].pending == stats["customerio"].pending == taken // 2
        finally:
            box.close()


def test_an_ack_that_cannot_be_written_is_owed_not_resent(tmp_path: Path) -> None:
    """A destination took the messages but the disk refused the ack: a retry of the same ids
    changes nothing, no lease hands them out again, and the next write records them."""
    with small_disk(tmp_path / "disk", "1m") as disk:
        box = SQLiteOutbox(disk / "q.db")
        try:
            for n in range(20):
                box.put(msg(n, OPENCDP))
            batch = box.lease("opencdp", 10, time.time(), 30)
            assert len(batch) == 10
            box._checkpoint("TRUNCATE")  # the log holds no free space to reuse
            filler = fill(disk)
            ids = [x.message.id for x in batch]
            with pytest.raises(OutboxError):
                box.ack("opencdp", ids)
            from opencdp.outbox.base import RetryItem

            with contextlib.suppress(OutboxError):
                box.retry("opencdp", [RetryItem(i, 0.0, "after a failed ack") for i in ids])
            os.unlink(filler)
            rest = box.lease("opencdp", 100, time.time(), 30)
            assert sorted(x.message.data["seq"] for x in rest) == list(range(10, 20))
            box.ack("opencdp", [x.message.id for x in rest])
            assert box.lease("opencdp", 100, time.time() + 3600, 30) == []
            assert box.stats(time.time())["opencdp"].delivered == 20
        finally:
            box.close()


def test_the_write_ahead_log_stays_small_beside_the_data(tmp_path: Path) -> None:
    """Thousands of small engine transactions (lease and ack ten at a time while puts land)
    rewrite the same pages into the log; it is checkpointed as it goes, and maintain gives
    its space back."""
    box = SQLiteOutbox(tmp_path / "q.db")
    wal = str(tmp_path / "q.db") + "-wal"
    largest = 0
    try:
        for n in range(6000):
            box.put(msg(n))
            if n % 10 == 9:
                for destination in ("opencdp", "customerio"):
                    batch = box.lease(destination, 10, time.time(), 30)
                    box.ack(destination, [x.message.id for x in batch])
                largest = max(largest, os.path.getsize(wal))
        box.maintain(time.time())
        after = os.path.getsize(wal)
        data = os.path.getsize(tmp_path / "q.db")
    finally:
        box.close()
    assert largest <= (4 << 20) * 1.25, f"the log reached {largest} bytes"
    assert after <= data, f"the log holds {after} bytes beside {data} bytes of data"


# -- processes in other PID namespaces --------------------------------------------------------

_SIDECAR = """
import json, sys, time
from opencdp.message import Message, new_ulid
from opencdp.outbox.sqlite import SQLiteOutbox
box = SQLiteOutbox(sys.argv[1])
for n in range(4):
    box.put(Message(new_ulid(), "track", "sidecar", "viewed", {"seq": 100 + n}, None, 1))
box.maintain(time.time())
held = box.lease("opencdp", 100, time.time(), float(sys.argv[2]))
print(json.dumps({"pid": __import__("os").getpid(),
                  "held": sorted(x.message.data["seq"] for x in held)}), flush=True)
sys.stdin.readline()  # hold the leases until told
"""


def _sidecar(path: Path, lease_seconds: float) -> subprocess.Popen[str]:
    import sys

    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, text=True, check=False)
    if probe.returncode:
        pytest.skip(f"cannot make a PID namespace here: {probe.stderr.strip()}")
    return subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", _SIDECAR,
         str(path), str(lease_seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_live_process_in_another_pid_namespace_keeps_its_leases(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Sidecar containers on one volume and one hostname: neither reclaims the other's
    leases or deletes its owner row while it runs, and a killed one's leases come back at
    their expiry (nobody here can prove it dead)."""
    import json

    path = tmp_path / "q.db"
    box = SQLiteOutbox(path)
    try:
        for n in range(4):
            box.put(msg(n, OPENCDP))
        mine = box.lease("opencdp", 100, time.time(), 60)
        assert len(mine) == 4
        sidecar = _sidecar(path, 3.0)
        try:
            assert sidecar.stdout is not None
            line = sidecar.stdout.readline()
            assert line, sidecar.stderr.read() if sidecar.stderr else ""
            report = json.loads(line)
            assert report["pid"] <= 5  # it really runs in a PID namespace of its own
            assert report["held"] == [100, 101, 102, 103]  # ours were not taken
            box._next_reclaim = 0.0
            box.maintain(time.time())
            assert box.lease("opencdp", 100, time.time(), 60) == []  # nor theirs by us
            owners = box._db.execute("SELECT count(*) FROM owners").fetchone()[0]
            assert owners == 2
        finally:
            sidecar.kill()
            sidecar.communicate(timeout=10)  # reaps it and closes the pipes
        box.maintain(time.time())
        assert box._db.execute("SELECT count(*) FROM owners").fetchone()[0] == 2
        assert box.lease("opencdp", 100, time.time(), 60) == []
        back: list[Any] = []
        deadline = time.monotonic() + 10
        while not back and time.monotonic() < deadline:
            time.sleep(0.2)
            back = box.lease("opencdp", 100, time.time(), 60)
        assert sorted(x.message.data["seq"] for x in back) == [100, 101, 102, 103]
        box.ack("opencdp", [x.message.id for x in mine + back])
        assert box.stats(time.time())["opencdp"].delivered == 8
    finally:
        box.close()
    assert not [r for r in caplog.records if "OCDP324" in r.getMessage()]


def test_owner_rows_of_an_earlier_schema_and_of_other_boots(tmp_path: Path) -> None:
    """Rows without a namespace are this namespace's (as the earlier version read them); a
    row from another boot is dead; a dead pid in another namespace is left alone."""
    import sqlite3

    from opencdp.outbox.owners import process_identity, process_namespace

    path = tmp_path / "q.db"
    SQLiteOutbox(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("""
        ALTER TABLE owners RENAME TO owners_new;
        CREATE TABLE owners (id INTEGER PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
                             started TEXT NOT NULL, token TEXT NOT NULL);
        DROP TABLE owners_new;
    """)
    host = process_identity()[0]
    namespace, boot = process_namespace()
    gone = 2**22 + 7  # above pid_max: no such process
    db.execute("INSERT INTO owners VALUES (1, ?, ?, '1', 'old')", (host, gone))
    db.close()
    box = SQLiteOutbox(path)
    try:
        rows = [(11, 1), (12, 2), (13, 3)]
        box._db.executemany(
            "INSERT INTO owners (id, host, pid, started, token, pidns, boot) "
            "VALUES (?, ?, ?, '1', 't', ?, ?)",
            [(2, host, gone, namespace, "another-boot"),
             (3, host, gone, namespace + "0", boot)])
        for n, (seq, owner) in enumerate(rows):
            box.put(msg(n, OPENCDP))
            box._db.execute("INSERT INTO deliveries (dest, seq, due, leased, owner) "
                            "VALUES (1, ?, ?, 1, ?)", (seq - 10, time.time() + 600, owner))
        box._db.execute("UPDATE meta SET value = 3 WHERE key = 'fanout'")
        got = box.lease("opencdp", 10, time.time(), 60)
        assert sorted(x.message.data["seq"] for x in got) == [0, 1]
        left = [r[0] for r in box._db.execute("SELECT id FROM owners ORDER BY id")]
        assert 1 not in left and 2 not in left and 3 in left
    finally:
        box.close()


# -- the queue file itself ------------------------------------------------------------------


def _unlink_queue(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(path) + suffix)


def _drain(box: Any, destination: str) -> list[int]:
    seqs: list[int] = []
    for _ in range(100):
        batch = box.lease(destination, 100, time.time(), 30)
        if not batch:
            return sorted(seqs)
        seqs.extend(x.message.data["seq"] for x in batch)
        box.ack(destination, [x.message.id for x in batch])
    raise AssertionError("the queue did not drain")


def test_a_deleted_queue_file_is_reopened_with_everything_it_held(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleted under a running process: what the old file held (pending messages, this
    process's leases, dead letters) and what was put after the deletion are in the new file
    at the path, logged once, and survive a restart."""
    from opencdp.outbox.base import DeadItem

    path = tmp_path / "q.db"
    box = SQLiteOutbox(path)
    try:
        for n in range(10):
            box.put(msg(n))
        flying = box.lease("opencdp", 2, time.time(), 30)
        gone = box.lease("customerio", 1, time.time(), 30)
        box.dead("customerio", [DeadItem(gone[0].message.id, "refused", 400)], time.time())
        box.ack("opencdp", [flying[0].message.id])
        _unlink_queue(path)
        for n in range(10, 15):
            box.put(msg(n))  # into the unlinked file, until maintain notices
        box.maintain(time.time())
        box.maintain(time.time())
        assert path.exists()
        box.ack("opencdp", [flying[1].message.id])  # the lease carried over
        assert _drain(box, "opencdp") == list(range(2, 15))
        assert _drain(box, "customerio") == list(range(1, 15))
        assert [d.message.data["seq"] for d in box.dead_letters()] == [0]
    finally:
        box.close()
    again = SQLiteOutbox(path)
    try:
        stats = again.stats(time.time())
        assert stats["opencdp"].pending == stats["customerio"].pending == 0
        assert stats["customerio"].dead == 1
    finally:
        again.close()
    logged = [r.getMessage() for r in caplog.records if "OCDP325" in r.getMessage()]
    assert len(logged) == 1 and logged[0].startswith("[CDP] OCDP325")
    assert "carried over 14 pending message(s) and 1 dead letter(s)" in logged[0]


def test_a_client_whose_queue_file_is_deleted_delivers_everything_once(
    tmp_path: Path, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """End to end: calls before and after the deletion all arrive, once, and a restart on
    the same file finds nothing left to send."""
    from health.support import client_options
    from opencdp import Client

    path = tmp_path / "q.db"
    options = client_options(sandbox, queue=f"sqlite:///{path}",
                             spill_path=str(tmp_path / "spill.db"))
    sandbox.set_faults({"customerio": {"down": True}})
    client = Client(**options)
    try:
        for seq in range(100):
            client.track("u1", "viewed", {"seq": seq})
        wait_for(lambda: len(stored(sandbox, "opencdp")) >= 50, 20, "some deliveries")
        _unlink_queue(path)
        for seq in range(100, 200):
            client.track("u1", "viewed", {"seq": seq})
        wait_for(lambda: any("OCDP325" in r.getMessage() for r in caplog.records), 10,
                 "the upkeep to notice")
        sandbox.clear_faults()
        assert client.flush(30)
    finally:
        client.close(timeout=5)
    again = Client(**options)
    try:
        assert again.flush(10)
        stats = again.engine.outbox.stats(time.time())
        assert stats["opencdp"].pending == stats["customerio"].pending == 0
    finally:
        again.close(timeout=5)
    for service in ("opencdp", "customerio"):
        seen = stored(sandbox, service)
        assert sorted(seen) == list(range(200)), service
        assert set(seen.values()) == {1}, service


def test_a_queue_file_replaced_by_another_queue_is_merged_without_duplicates(
    tmp_path: Path,
) -> None:
    """A copy restored over the file (``mv backup.db q.db``): the messages it has are kept
    once, the ones only the running process had are added."""
    import shutil

    path = tmp_path / "q.db"
    box = SQLiteOutbox(path)
    try:
        for n in range(5):
            box.put(msg(n, OPENCDP))
        box._checkpoint("TRUNCATE")
        shutil.copy(path, tmp_path / "backup.db")
        for n in range(5, 8):
            box.put(msg(n, OPENCDP))
        os.rename(tmp_path / "backup.db", path)
        box.maintain(time.time())
        assert _drain(box, "opencdp") == list(range(8))
    finally:
        box.close()


def test_a_file_replaced_while_another_process_writes_the_old_one_stays_apart(
    tmp_path: Path,
) -> None:
    """Another process still holds (and writes) the old file, so its log and index keep
    their names: the new file at the path gets its own, and what the other process writes
    afterwards goes to the old file only."""
    import sqlite3

    path = tmp_path / "q.db"
    box = SQLiteOutbox(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        for n in range(3):
            box.put(msg(n, OPENCDP))
        assert other.execute("SELECT count(*) FROM msgs").fetchone()[0] == 3  # log open
        copy = sqlite3.connect(tmp_path / "backup.db")
        box._db.backup(copy)
        copy.close()
        box.maintain(time.time())
        os.rename(tmp_path / "backup.db", path)
        box.maintain(time.time())
        other.execute("INSERT INTO msgs (dests, created, body) SELECT dests, created, body "
                      "FROM msgs")  # into the old file, through its open log
        assert box._db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert _drain(box, "opencdp") == [0, 1, 2]
    finally:
        other.close()
        box.close()


def test_a_queue_file_replaced_by_something_else_fails_loudly(tmp_path: Path) -> None:
    """Recovery impossible: every call raises OutboxError, and the old content is kept."""
    import sqlite3

    path = tmp_path / "q.db"
    box = SQLiteOutbox(path)
    try:
        for n in range(3):
            box.put(msg(n))
        _unlink_queue(path)
        other = sqlite3.connect(path)
        other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        other.close()
        with pytest.raises(OutboxError, match="not an opencdp queue"):
            box.maintain(time.time())
        with pytest.raises(OutboxError, match="not an opencdp queue"):
            box.put(msg(3))
        with pytest.raises(OutboxError, match="kept in"):
            box.lease("opencdp", 10, time.time(), 30)
        kept = [p for p in tmp_path.iterdir() if ".carried-" in p.name]
        assert len(kept) == 1
        copy = sqlite3.connect(kept[0])
        assert copy.execute("SELECT count(*) FROM msgs").fetchone()[0] == 3
        copy.close()
    finally:
        box.close()


def _corrupt_page(path: Path, page: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(page * 4096)
        handle.write(os.urandom(4096))


def test_a_corrupted_queue_file_is_refused_at_construction(tmp_path: Path) -> None:
    from opencdp.errors import ConfigurationError

    path = tmp_path / "q.db"
    box = SQLiteOutbox(path)
    for n in range(2000):
        box.put(msg(n))
    box.close()
    _corrupt_page(path, 20)
    with pytest.raises(ConfigurationError, match=r"q\.db is corrupted"):
        SQLiteOutbox(path)


def test_a_page_corrupted_while_running_raises_outbox_errors(tmp_path: Path) -> None:
    """The calls raise OutboxError saying what is wrong (the engine counts it), never a raw
    sqlite3 error, and maintain reports it instead of waiting quietly."""
    path = tmp_path / "q.db"
    box = SQLiteOutbox(path)
    try:
        for n in range(3000):
            box.put(msg(n))
        box._checkpoint("TRUNCATE")
        box._db.execute("PRAGMA cache_size=1")
        size = os.path.getsize(path) // 4096
        for page in range(2, size):
            _corrupt_page(path, page)
        for call in (lambda: box.lease("opencdp", 100, time.time(), 30),
                     lambda: box.stats(time.time()),
                     lambda: box.maintain(time.time())):
            with pytest.raises(OutboxError, match=r"is corrupted .*malformed"):
                call()
    finally:
        box.close()


@pytest.mark.parametrize("content", ["another app", "random bytes", "truncated"])
def test_a_file_that_is_not_a_queue_is_refused_and_left_unchanged(tmp_path: Path,
                                                                   content: str) -> None:
    import hashlib
    import sqlite3

    from opencdp.errors import ConfigurationError

    path = tmp_path / "app.db"
    if content == "another app":
        db = sqlite3.connect(path)
        db.executescript("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);"
                         "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL);"
                         "INSERT INTO users (email) VALUES ('a@example.com');")
        db.close()
    elif content == "random bytes":
        path.write_bytes(os.urandom(64 << 10))
    else:
        queue = SQLiteOutbox(path)
        for n in range(500):
            queue.put(msg(n))
        queue.close()
        path.write_bytes(path.read_bytes()[:3000])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    match = "is not an opencdp queue" if content == "another app" else "SQLite outbox"
    with pytest.raises(ConfigurationError, match=match) as info:
        SQLiteOutbox(path)
    assert str(path) in str(info.value)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not os.path.exists(str(path) + "-wal")
    if content == "another app":
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        db.close()


# -- time -----------------------------------------------------------------------------------


def test_not_before_times_from_another_clock_are_bounded_and_leases_are_not(
    tmp_path: Path,
) -> None:
    """A retry stored an hour ahead (a process whose clock was stepped) is due now; one
    within MAX_AHEAD waits; a lease longer than MAX_AHEAD stays another process's."""
    from opencdp.outbox.base import MAX_AHEAD, RetryItem

    box = SQLiteOutbox(tmp_path / "q.db")
    try:
        for n in range(3):
            box.put(msg(n, OPENCDP))
        now = time.time()
        first = box.lease("opencdp", 3, now, 30)
        by_seq = {x.message.data["seq"]: x.message.id for x in first}
        box.retry("opencdp", [RetryItem(by_seq[0], now + 3600, "stepped", attempt=4),
                              RetryItem(by_seq[1], now + 60, "waits")])
        assert box.next_due("opencdp", now) == now
        again = box.lease("opencdp", 10, now, MAX_AHEAD * 4)
        assert [(x.message.data["seq"], x.attempt) for x in again] == [(0, 4)]
        assert box.next_due("opencdp", now) == pytest.approx(now + 30)
        assert box.lease("opencdp", 10, now, 30) == []  # a long lease is not bounded
        later = box.lease("opencdp", 10, now + 61, 30)  # 2's lease expired, 1's retry due
        assert sorted(x.message.data["seq"] for x in later) == [1, 2]
    finally:
        box.close()


def test_ages_are_stamped_by_the_engine_clock_and_never_negative(tmp_path: Path) -> None:
    from opencdp import clock
    from opencdp.outbox.spill import SpilledOutbox, SpillFile

    start = 2_000_000_000.0
    box = SpilledOutbox(SQLiteOutbox(tmp_path / "q.db"), SpillFile(tmp_path / "spill.db"))
    try:
        with clock.use(clock.ManualClock(start)):
            box.put(msg(0))
            box.spill.put(msg(1))
            box.spill.put(msg(2, CUSTOMERIO))
        stats = box.stats(start + 30)
        assert stats["opencdp"].spilled == 1 and stats["customerio"].spilled == 2
        assert stats["opencdp"].pending == 2 and stats["customerio"].pending == 3
        assert stats["customerio"].spilled_oldest_age == pytest.approx(30, abs=1)
        assert stats["opencdp"].oldest_pending_age == pytest.approx(30, abs=1)
        back = box.stats(start - 3600)  # the clock read before the stamps
        assert back["customerio"].spilled_oldest_age == 0.0
        assert back["opencdp"].oldest_pending_age == 0.0
        assert box.stats(start)["opencdp"].to_dict()["spilled"] == 1
    finally:
        box.close()


# -- forked children ------------------------------------------------------------------------


def _child(body: Any) -> int:
    """Fork; the child runs ``body`` and exits with its result (never returns into pytest);
    the parent waits for it, bounded, and returns the exit code."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = int(body())
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("the forked child hung")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_child_forked_while_a_parent_thread_holds_the_locks_works(tmp_path: Path) -> None:
    """Batched mode: the flusher thread does not exist in the child, and the connection,
    commit and buffer locks a parent thread holds at the fork are not the child's."""
    import threading

    box = SQLiteOutbox(tmp_path / "q.db", durability="batched")
    try:
        for n in range(5):
            box.put(msg(n, OPENCDP))
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            with box._lock, box._commit_lock, box._buffer._lock:
                holding.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(5)

        def child() -> int:
            for n in range(100, 110):
                box.put(msg(n, OPENCDP))
            box.flush()
            return box.stats(time.time())["opencdp"].pending

        try:
            started = time.monotonic()
            code = _child(child)
            assert time.monotonic() - started < 5
        finally:
            release.set()
            holder.join(10)
        box.flush()
        assert code == 10  # its own: the parent's buffered five are the parent's to commit
        got = _drain(box, "opencdp")
        assert got == [*range(5), *range(100, 110)]
    finally:
        box.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_children_forked_mid_batch_lose_and_double_nothing(tmp_path: Path) -> None:
    """Forks at any instant while a parent thread puts in batched mode: every put of the
    parent and of each child is stored once."""
    import threading

    box = SQLiteOutbox(tmp_path / "q.db", durability="batched")
    stop = threading.Event()
    put: list[int] = []

    def produce() -> None:
        for n in range(1_000_000):
            if stop.is_set():
                return
            box.put(msg(n, OPENCDP))
            put.append(n)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        for k in range(8):
            time.sleep(0.02)

            def child(k: int = k) -> int:
                for n in range(5):
                    box.put(msg(10_000_000 + 10 * k + n, OPENCDP))
                box.flush()
                return 0

            assert _child(child) == 0
    finally:
        stop.set()
        producer.join(10)
    box.flush()
    try:
        got = _drain(box, "opencdp") if len(put) < 9000 else None
        if got is None:  # a fast machine: count instead of listing
            stats = box.stats(time.time())["opencdp"]
            assert stats.pending == len(put) + 40
        else:
            children = sorted(10_000_000 + 10 * k + n for k in range(8) for n in range(5))
            assert got == sorted(put + children)
    finally:
        box.close()


def test_a_put_refused_by_a_full_buffer_leaves_no_copy_behind() -> None:
    """Batched mode on a full disk: the put that finds the buffer full and cannot commit it
    raises without keeping its row, so the spill that takes it holds the only copy."""
    import logging

    from opencdp.outbox.buffer import PutBuffer

    def refuse(rows: Any) -> None:
        raise QueueFullError("the disk is full")

    buffer: PutBuffer[int] = PutBuffer(refuse, interval=60, name="t", limit=3,
                                       log=logging.getLogger("t"))
    try:
        for row in range(3):
            buffer.add(row)
        with pytest.raises(QueueFullError):
            buffer.add(3)
        assert list(buffer._rows) == [0, 1, 2]
    finally:
        buffer._stop.set()


# -- the spill file -------------------------------------------------------------------------


def test_a_deleted_spill_file_keeps_what_it_held(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The queue's disk is full, so calls spill; the spill file is deleted under the
    process. Maintain moves what the open file held into a new one at the path (logged),
    which a restart finds; once the disk has room everything reaches the queue, once, and
    the spill's log is given back."""
    from opencdp.outbox.spill import SpilledOutbox, SpillFile

    spill_path = tmp_path / "spill" / "spill.db"
    with small_disk(tmp_path / "disk", "1m") as disk:
        box = SpilledOutbox(SQLiteOutbox(disk / "q.db"), SpillFile(spill_path))
        try:
            filler = fill(disk)
            for n in range(5):
                box.put(msg(n, OPENCDP))
            assert box.spilling
            _unlink_queue(spill_path)
            for n in range(5, 8):
                box.put(msg(n, OPENCDP))
            box.maintain(time.time())
            assert spill_path.exists()
            again = SpillFile(spill_path)
            assert again.counts() == {0: 8, 1: 8, 2: 0}  # what a restart would find
            again.close()
            os.unlink(filler)
            wait_for(lambda: (box.maintain(time.time()), not box.spilling)[1], 10, "the drain")
            assert _drain(box.primary, "opencdp") == list(range(8))
            assert os.path.getsize(str(spill_path) + "-wal") == 0
        finally:
            box.close()
    assert any("moved the 8 message(s)" in r.getMessage() for r in caplog.records)


def test_a_transaction_left_open_is_rolled_back_before_the_next_put(tmp_path: Path) -> None:
    """A COMMIT that failed and whose ROLLBACK failed too leaves the connection inside a
    transaction: the next put must still be committed when it returns."""
    import sqlite3

    box = SQLiteOutbox(tmp_path / "q.db")
    try:
        box._db.execute("BEGIN IMMEDIATE")  # as a failed COMMIT leaves it
        box.put(msg(0))
        other = sqlite3.connect(tmp_path / "q.db")
        assert other.execute("SELECT count(*) FROM msgs").fetchone()[0] == 1
        other.close()
    finally:
        box.close()
