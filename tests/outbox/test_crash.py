"""Crash proofs with real processes and SIGKILL: what ``put`` acknowledged survives, and what a
killed consumer held comes back to another one."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import IO, Any

import pytest

from opencdp.message import OPENCDP, Message, new_ulid, parse_ulid
from opencdp.outbox.sqlite import SQLiteOutbox

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

_OPEN = """
import sys, threading, time, json
from opencdp.message import Message, new_ulid
def open_outbox(kind, where, **options):
    if kind == "sqlite":
        from opencdp.outbox.sqlite import SQLiteOutbox
        return SQLiteOutbox(where, **options)
    from opencdp.outbox.redis import RedisOutbox
    url, prefix = where.split(" ")
    return RedisOutbox(url, prefix=prefix, **options)
"""

_PRODUCER = _OPEN + """
box = open_outbox(sys.argv[1], sys.argv[2], durability=sys.argv[3])
lock = threading.Lock()
def work(k):
    for i in range(1_000_000):
        m = Message(new_ulid(), "track", f"user-{k}", "Crash", {"i": i}, None, 3)
        box.put(m)
        with lock:  # only after put returned
            sys.stdout.write(m.ulid + "\\n")
            sys.stdout.flush()
threads = [threading.Thread(target=work, args=(k,)) for k in range(int(sys.argv[4]))]
for t in threads: t.start()
for t in threads: t.join()
"""

_CONSUMER = _OPEN + """
box = open_outbox(sys.argv[1], sys.argv[2])
hold_after = int(sys.argv[3])  # lease this many batches, then stop acking and wait to be killed
lease_seconds = float(sys.argv[4])
batches = 0
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    batch = box.lease("opencdp", 25, time.time(), lease_seconds)
    if not batch:
        stats = box.stats(time.time())["opencdp"]
        if stats.pending == 0 and stats.in_flight == 0:
            break
        time.sleep(0.02)
        continue
    ids = [x.message.id for x in batch]
    batches += 1
    if hold_after and batches >= hold_after:
        print(json.dumps({"held": [x.message.ulid for x in batch]}), flush=True)
        sys.stdin.read()
        sys.exit(3)
    box.ack("opencdp", ids)
    print(json.dumps({"acked": [x.message.ulid for x in batch]}), flush=True)
print(json.dumps({"done": True}), flush=True)
box.close()
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _read_lines(stream: IO[str], count: int, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while len(lines) < count and time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line.strip())
    return lines


def _kill(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGKILL, then read what is left through the same buffered readers (``communicate``
    would bypass lines already buffered by ``readline``)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    if proc.stdin is not None:
        proc.stdin.close()
    assert proc.returncode == -signal.SIGKILL, err
    return out, err


def _where(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return str(tmp_path / "crash.db")
    return request.getfixturevalue("redis_url") + " c" + secrets.token_hex(5)


def _reopen(kind: str, where: str) -> Any:
    if kind == "sqlite":
        return SQLiteOutbox(where)
    from opencdp.outbox.redis import RedisOutbox

    url, prefix = where.split(" ")
    return RedisOutbox(url, prefix=prefix)


def _stored_ids(box: Any) -> list[int]:
    ids: list[int] = []
    for _ in range(10_000):
        batch = box.lease("opencdp", 1000, time.time(), 60.0)
        if not batch:
            return ids
        ids.extend(x.message.id for x in batch)
        box.ack("opencdp", [x.message.id for x in batch])
    raise AssertionError("too many batches")


@pytest.mark.parametrize("threads", [1, 4])
def test_sigkill_while_putting_loses_nothing_acknowledged(
    durable_kind: str, threads: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Every id the child printed after ``put`` returned is in the outbox after a SIGKILL."""
    where = _where(durable_kind, tmp_path, request)
    child = _spawn(_PRODUCER, durable_kind, where, "durable", str(threads))
    assert child.stdout is not None
    seen = _read_lines(child.stdout, 400, timeout=60)
    assert len(seen) == 400, child.stderr.read() if child.stderr else ""
    rest, _ = _kill(child)
    acknowledged = {parse_ulid(line) for line in seen + rest.split() if len(line) == 26}
    box = _reopen(durable_kind, where)
    try:
        stored = _stored_ids(box)
    finally:
        box.close()
    assert len(stored) == len(set(stored))
    assert acknowledged <= set(stored)
    # at most the puts in flight at the kill were stored without being printed
    assert len(set(stored) - acknowledged) <= threads


def test_sigkill_in_batched_mode_loses_at_most_the_last_interval(
    durable_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Batched durability may lose only the calls of the last few milliseconds."""
    where = _where(durable_kind, tmp_path, request)
    child = _spawn(_PRODUCER, durable_kind, where, "batched", "1")
    assert child.stdout is not None
    seen = _read_lines(child.stdout, 5000, timeout=60)
    time.sleep(0.1)  # let the child run on, so the kill lands mid-stream
    rest, _ = _kill(child)
    printed = [parse_ulid(line) for line in seen + rest.split() if len(line) == 26]
    box = _reopen(durable_kind, where)
    try:
        stored = set(_stored_ids(box))
    finally:
        box.close()
    lost = [i for i in printed if i not in stored]
    # what was lost is a tail: nothing stored after the first loss
    if lost:
        first_lost = printed.index(lost[0])
        assert all(i not in stored for i in printed[first_lost:])
        window_ms = (lost[-1] >> 80) - (lost[0] >> 80)
        assert window_ms <= 500, f"{len(lost)} calls over {window_ms} ms lost"


def test_killed_consumer_lease_is_redelivered(
    durable_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two consumer processes share a queue; one is killed holding a batch; the other
    delivers everything, the held batch included, and nothing is counted twice."""
    where = _where(durable_kind, tmp_path, request)
    box = _reopen(durable_kind, where)
    sent = []
    for i in range(300):
        m = Message(new_ulid(), "track", "u", "Lease", {"i": i}, None, OPENCDP)
        box.put(m)
        sent.append(m.id)
    doomed = _spawn(_CONSUMER, durable_kind, where, "2", "0.5")
    assert doomed.stdout is not None
    lines = _read_lines(doomed.stdout, 2, timeout=60)
    held = {parse_ulid(u) for line in lines for u in json.loads(line).get("held", [])}
    acked_by_doomed = {
        parse_ulid(u) for line in lines for u in json.loads(line).get("acked", [])
    }
    assert len(held) == 25, lines
    _kill(doomed)

    survivor = _spawn(_CONSUMER, durable_kind, where, "0", "0.5")
    out, err = survivor.communicate(timeout=90)
    assert survivor.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1] == {"done": True}
    acked = [parse_ulid(u) for e in events for u in e.get("acked", [])]
    assert held <= set(acked)
    assert set(acked) | acked_by_doomed == set(sent)
    assert len(acked) + len(acked_by_doomed) == len(sent)  # nothing delivered twice
    stats = box.stats(time.time())["opencdp"]
    assert (stats.delivered, stats.pending, stats.in_flight) == (300, 0, 0)
    box.close()
    if durable_kind == "sqlite":
        assert os.path.exists(where)


def test_sqlite_reclaims_a_killed_processs_leases_at_once(tmp_path: Path) -> None:
    """kill -9 while holding a batch leased for 60 s: the next process on this host leases
    that batch at its first lease, not a minute later, and says so (OCDP324)."""
    where = str(tmp_path / "reclaim.db")
    box = SQLiteOutbox(where)
    sent = []
    for i in range(100):
        m = Message(new_ulid(), "track", "u", "Reclaim", {"i": i}, None, OPENCDP)
        box.put(m)
        sent.append(m.id)
    box.close()
    doomed = _spawn(_CONSUMER, "sqlite", where, "1", "60")
    assert doomed.stdout is not None
    lines = _read_lines(doomed.stdout, 1, timeout=60)
    held = [parse_ulid(u) for u in json.loads(lines[0])["held"]]
    assert len(held) == 25
    _kill(doomed)

    restarted = SQLiteOutbox(where)
    try:
        start = time.monotonic()
        first = restarted.lease("opencdp", 1000, time.time(), 60.0)
        assert time.monotonic() - start < 5
        got = [x.message.id for x in first]
        assert sorted(got) == sorted(sent)  # the held 25 included, each once
        assert [x.attempt for x in first if x.message.id in held] == [0] * 25
        restarted.ack("opencdp", got)
        stats = restarted.stats(time.time())["opencdp"]
        assert (stats.pending, stats.in_flight, stats.delivered) == (0, 0, 100)
    finally:
        restarted.close()


def test_a_live_process_keeps_its_leases(tmp_path: Path) -> None:
    """Another live process's leases are not touched; a recorded pid whose start time no
    longer matches (the pid was reused) counts as dead."""
    from opencdp.outbox.owners import process_alive, process_identity

    host, pid, started, _ = process_identity()
    assert process_alive(pid, started)
    if started:  # Linux: the start time tells a reused pid apart
        assert not process_alive(pid, str(int(started) + 1))
    assert not process_alive(0, "")

    where = str(tmp_path / "live.db")
    box = SQLiteOutbox(where)
    for i in range(10):
        box.put(Message(new_ulid(), "track", "u", "Live", {"i": i}, None, OPENCDP))
    holder = _spawn(_CONSUMER, "sqlite", where, "1", "60")
    assert holder.stdout is not None
    lines = _read_lines(holder.stdout, 1, timeout=60)
    assert len(json.loads(lines[0])["held"]) == 10
    try:
        box.maintain(time.time())
        assert box.lease("opencdp", 100, time.time(), 60.0) == []
        assert box.stats(time.time())["opencdp"].in_flight == 10
        assert box.stats(time.time())["opencdp"].in_flight_here == 0
    finally:
        _kill(holder)
    box.maintain(time.time())
    assert len(box.lease("opencdp", 100, time.time(), 60.0)) == 10
    assert host
    box.close()
