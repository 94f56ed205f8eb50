"""Durable or loud: a put the queue cannot take goes to the local spill, comes back in order
once the queue recovers, and raises only when the spill fails too. With real SQLite files and
real redis-server processes stopped, paused (SIGSTOP) and restarted with and without
persistence under a stream of puts."""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencdp.clock import ManualClock
from opencdp.errors import OutboxError
from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid
from opencdp.outbox.spill import SpilledOutbox
from opencdp.outbox.throttle import LogThrottle
from opencdp.outbox.url import open_outbox
from support.queues import drain as drain_all
from support.waiting import wait_for

BOTH = OPENCDP | CUSTOMERIO
OPTIONS: dict[str, Any] = {"max_queue_size": 10, "queue_full": "drop_oldest",
                           "queue_full_timeout": 0.1, "durability": "durable"}


def msg(n: int, destinations: int = BOTH) -> Message:
    return Message(new_ulid(), "track", f"user-{n}", "Spilled", {"n": n}, None, destinations)


def recover(box: SpilledOutbox, timeout: float = 20.0) -> None:
    """Run maintenance as the engine would until the spill is empty and handed back."""
    def drained() -> bool:
        box.maintain(time.time())
        return not box.spilling and not box.spill.counts().get(0)

    assert wait_for(drained, timeout), f"the spill did not drain: {box.spill.counts()}"


# -- SQLite ------------------------------------------------------------------------------


def _fill_up(box: SpilledOutbox) -> list[int]:
    """Cap the file at its size and fill the free pages; returns the ids that still fit."""
    db = box.primary._db  # type: ignore[attr-defined]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages}")
    fitted: list[int] = []
    for n in range(100_000):
        m = msg(-n)
        try:
            box.primary.put(m)
        except OutboxError:
            return fitted
        fitted.append(m.id)
    raise AssertionError("the file never filled up")


def test_a_full_sqlite_disk_spills_and_drains_back_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = open_outbox(f"sqlite:///{tmp_path / 'q.db'}", **OPTIONS,
                      spill_path=str(tmp_path / "elsewhere" / "spill.db"))
    assert isinstance(box, SpilledOutbox)
    first = [msg(i) for i in range(5)]
    for m in first:
        box.put(m)
    fitted = _fill_up(box)
    with caplog.at_level(logging.WARNING, logger="opencdp.outbox"):
        spilled = [msg(i) for i in range(5, 2005)]
        for m in spilled:
            box.put(m)  # returns: durable in the spill
        assert box.spilling
        assert box.spill.counts()[0] == 2000
        stats = box.stats(time.time())
        assert stats["opencdp"].spilled == 2000
        assert stats["opencdp"].pending == 2005 + len(fitted)
        box.maintain(time.time())  # still full: nothing moves, nothing is lost
        assert box.spill.counts()[0] == 2000
        box.primary._db.execute("PRAGMA max_page_count=1073741823")  # type: ignore[attr-defined]
        recover(box)
    codes = [r.getMessage().split()[1] for r in caplog.records]
    assert codes.count("OCDP320") == 1 and codes.count("OCDP321") == 1
    assert "OCDP322" not in codes
    sent = [m.id for m in first] + fitted + [m.id for m in spilled]
    assert drain_all(box, "opencdp") == sent  # exactly once, in put order
    assert drain_all(box, "customerio") == sent
    later = msg(9999)
    box.put(later)  # handed back: straight into the primary
    assert box.spill.counts()[0] == 0
    assert drain_all(box, "opencdp") == [later.id]
    box.close()


def test_when_the_spill_fails_too_put_raises_and_queues_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    box = open_outbox(f"sqlite:///{tmp_path / 'q.db'}", **OPTIONS,
                      spill_path=str(blocker / "spill.db"))
    assert isinstance(box, SpilledOutbox)
    fitted = _fill_up(box)
    with caplog.at_level(logging.WARNING, logger="opencdp.outbox"):
        for i in range(20):
            with pytest.raises(OutboxError, match="not queued"):
                box.put(msg(i))
    errors = [r for r in caplog.records if "OCDP322" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR  # once per interval
    box.primary._db.execute("PRAGMA max_page_count=1073741823")  # type: ignore[attr-defined]
    recover(box)
    assert drain_all(box, "opencdp") == fitted  # and none of the 20 refused
    box.close()


def test_a_spill_left_by_a_dead_process_is_drained_by_the_next(tmp_path: Path) -> None:
    spill = str(tmp_path / "spill.db")
    url = f"sqlite:///{tmp_path / 'q.db'}"
    box = open_outbox(url, **OPTIONS, spill_path=spill)
    assert isinstance(box, SpilledOutbox)
    fitted = _fill_up(box)
    sent = [msg(i) for i in range(50)]
    for m in sent:
        box.put(m)
    box.spill.close()  # the process dies here: the primary is still full, the spill stays
    box.primary.close()
    again = open_outbox(url, **OPTIONS, spill_path=spill)
    assert isinstance(again, SpilledOutbox) and again.spilling  # new puts queue behind
    newer = msg(100)
    again.put(newer)
    recover(again)
    assert drain_all(again, "opencdp") == fitted + [m.id for m in sent] + [newer.id]
    again.close()
    assert not again.spill.counts().get(0)


def test_log_throttle_reports_each_cause_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("opencdp.test.throttle")
    manual = ManualClock(frozen=True)
    throttle = LogThrottle(log, interval=0.2, clock=manual.monotonic)
    with caplog.at_level(logging.WARNING, logger="opencdp.test.throttle"):
        assert throttle(logging.WARNING, "OCDP320", "a", "first")
        assert not throttle(logging.WARNING, "OCDP320", "a", "again")
        assert throttle(logging.WARNING, "OCDP320", "b", "other cause")
        manual.advance(0.25)
        assert throttle(logging.WARNING, "OCDP320", "a", "later")
        throttle.reset("OCDP320", "a")
        assert throttle(logging.WARNING, "OCDP320", "a", "after recovery")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["[CDP] OCDP320 first", "[CDP] OCDP320 other cause",
                     "[CDP] OCDP320 later (1 more since the last report)",
                     "[CDP] OCDP320 after recovery"]


# -- Redis -------------------------------------------------------------------------------


def _redis_binary() -> str:
    spec = importlib.util.spec_from_file_location(
        "opencdp_tests_redis_server", Path(__file__).resolve().parents[1] / "redis_server.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    try:
        return str(module.find_or_install_redis())
    except module.RedisUnavailable as exc:
        pytest.skip(str(exc))


class RedisProcess:
    """A redis-server of this test's own, to stop, pause and restart."""

    def __init__(self, persist: bool) -> None:
        self.binary = _redis_binary()
        self.persist = persist
        self.workdir = tempfile.mkdtemp(prefix="opencdp-redis-chaos-")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.persist
                       else ["--appendonly", "no"])
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persistence, "--dir", self.workdir, "--daemonize", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        assert wait_for(self._pong, 20), "redis-server did not start"

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def redis_process() -> Iterator[Any]:
    made: list[RedisProcess] = []

    def make(persist: bool = False) -> RedisProcess:
        server = RedisProcess(persist)
        server.start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


class Stream:
    """Puts from a thread, as a host app would, with an engine-like maintenance thread; every
    put either returns (recorded) or raises (recorded), and how long each took."""

    def __init__(self, box: SpilledOutbox, pause: float = 0.002) -> None:
        self.box = box
        self.pause = pause
        self.returned: list[int] = []
        self.raised: list[int] = []
        self.slowest = 0.0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._put), threading.Thread(target=self._tend)]

    def __enter__(self) -> Stream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _put(self) -> None:
        n = 0
        while not self._stop.is_set():
            m = msg(n)
            n += 1
            start = time.monotonic()
            try:
                self.box.put(m)
            except OutboxError:
                self.raised.append(m.id)
            else:
                self.returned.append(m.id)
            self.slowest = max(self.slowest, time.monotonic() - start)
            time.sleep(self.pause)  # the scenario: a host app's pace of puts

    def wait_for_puts(self, n: int) -> None:
        """Until ``n`` more puts have returned (or raised): the stream's own progress marks
        each phase of an outage, not a length of time."""
        target = len(self.returned) + len(self.raised) + n
        assert wait_for(lambda: len(self.returned) + len(self.raised) >= target, 30), \
            f"the stream stalled at {len(self.returned)} returned, {len(self.raised)} raised"

    def _tend(self) -> None:
        while not self._stop.wait(0.1):
            self.box.maintain(time.time())


def _open_redis(url: str, tmp_path: Path) -> SpilledOutbox:
    box = open_outbox(f"{url}?prefix=c{secrets.token_hex(4)}&timeout=2", **OPTIONS,
                      queue_timeout=0.05, spill_path=str(tmp_path / "spill.db"))
    assert isinstance(box, SpilledOutbox)
    return box


def _assert_exactly_once(box: SpilledOutbox, stream: Stream) -> None:
    recover(box)
    for destination in ("opencdp", "customerio"):
        got = drain_all(box, destination)
        assert len(got) == len(set(got)), f"{len(got) - len(set(got))} duplicates"
        assert sorted(got) == sorted(stream.returned)


@pytest.mark.redis
def test_redis_stopped_and_restarted_empty_under_a_stream_of_puts(
    redis_process: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopped, restarted without persistence (streams and groups gone): puts meanwhile spill,
    the groups are recreated and logged once, every put that returned is leased once."""
    server = redis_process(persist=False)
    box = _open_redis(server.url, tmp_path)
    with caplog.at_level(logging.WARNING, logger="opencdp.outbox"):
        server.stop()
        with Stream(box) as stream:
            stream.wait_for_puts(60)  # spilled: Redis is down
            server.start()
            stream.wait_for_puts(60)  # the stream goes on over the restart
        _assert_exactly_once(box, stream)
    assert stream.raised == [] and len(stream.returned) > 50
    assert stream.slowest < 0.5, stream.slowest
    codes = [r.getMessage().split()[1] for r in caplog.records]
    assert codes.count("OCDP323") == 1  # once per recovery
    assert codes.count("OCDP320") == 1 and codes.count("OCDP321") == 1
    box.close()


@pytest.mark.redis
def test_redis_paused_under_a_stream_of_puts(redis_process: Any, tmp_path: Path) -> None:
    """SIGSTOP for a second: no put waits much longer than the put timeout, a write that timed
    out but was stored after all is not delivered twice."""
    server = redis_process(persist=False)
    box = _open_redis(server.url, tmp_path)
    with Stream(box) as stream:
        stream.wait_for_puts(60)
        server.signal(signal.SIGSTOP)
        time.sleep(1.0)  # the scenario: a pause far longer than the 0.05 s put timeout
        server.signal(signal.SIGCONT)
        stream.wait_for_puts(60)
    assert stream.raised == [] and len(stream.returned) > 100
    assert stream.slowest < 0.5, stream.slowest
    _assert_exactly_once(box, stream)
    box.close()


@pytest.mark.redis
def test_redis_restarted_with_persistence_under_a_stream_of_puts(
    redis_process: Any, tmp_path: Path
) -> None:
    """What Redis had persisted comes back, what was put while it was down comes from the
    spill: all of it, once."""
    server = redis_process(persist=True)
    box = _open_redis(server.url, tmp_path)
    with Stream(box) as stream:
        stream.wait_for_puts(40)  # stored in Redis, and persisted
        server.stop()
        stream.wait_for_puts(40)  # spilled
        server.start()
        stream.wait_for_puts(40)
    assert stream.raised == [] and len(stream.returned) > 100
    _assert_exactly_once(box, stream)
    box.close()


@pytest.mark.redis
def test_nogroup_is_recovered_by_a_lease_without_maintenance(
    redis_process: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart without persistence: the next lease recreates the groups, logs it, and the
    queue works again; later puts are delivered."""
    server = redis_process(persist=False)
    box = _open_redis(server.url, tmp_path)
    server.stop()
    server.start()
    with caplog.at_level(logging.WARNING, logger="opencdp.outbox"):
        assert box.lease("opencdp", 10, time.time(), 30.0) == []
        later = [msg(i) for i in range(200)]
        for m in later:
            box.put(m)
        assert not box.spilling
        assert drain_all(box, "opencdp") == [m.id for m in later]
        assert drain_all(box, "customerio") == [m.id for m in later]
    assert sum("OCDP323" in r.getMessage() for r in caplog.records) == 1
    server.stop()
    server.start()
    assert box.next_due("opencdp", time.time()) is None  # recovers here too
    assert box.stats(time.time())["opencdp"].pending == 0
    box.close()
