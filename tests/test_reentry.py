"""Signal-safe regions: a call nested in our own region on the same thread never waits on
a lock; a call from another thread still waits its turn (counts and throttles stay exact)."""

from __future__ import annotations

import threading
import time

from opencdp import reentry
from opencdp.logs import Log


def test_another_thread_waits_for_the_log_throttle() -> None:
    log = Log()
    log._lock.acquire()
    answers: list[bool] = []
    other = threading.Thread(target=lambda: answers.append(log.warning_once("key", "x")))
    other.start()
    other.join(0.1)  # it must not finish while the lock is held
    assert other.is_alive() and answers == [], "contention must wait, not skip the throttle"
    log._lock.release()
    other.join(2)
    assert answers == [True]
    assert log.warning_once("key", "x") is False  # throttled: exactly one line


def test_a_nested_call_on_the_same_thread_does_not_wait() -> None:
    log = Log()
    with reentry.region():  # as if a handler interrupted our code holding the lock
        log._lock.acquire()
        try:
            started = time.monotonic()
            assert log.warning_once("nested", "x") is True
            assert time.monotonic() - started < 0.1
        finally:
            log._lock.release()


def test_defer_runs_when_the_outermost_region_ends() -> None:
    ran: list[str] = []
    with reentry.region():
        with reentry.region():
            reentry.defer(lambda: ran.append("deferred"))
        assert ran == []
    assert ran == ["deferred"]
    reentry.defer(lambda: ran.append("now"))
    assert ran == ["deferred", "now"]
    assert not reentry.inside()
