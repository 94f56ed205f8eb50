"""Run a test app under its real server as a child process, drive traffic at it, stop it
with SIGTERM mid-stream, and read what reached the sandbox."""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

APPS = Path(__file__).resolve().parent / "apps"
BIN = Path(sys.executable).parent
LOST = re.compile(r"OCDP302 closed with (\d+) undelivered")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_env(sandbox: Any, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CDP_", "CUSTOMERIO_", "OPENCDP_"))}
    env.update(PYTHONPATH=str(APPS), APP_OPENCDP_URL=sandbox.opencdp_url,
               APP_TRACK_URL=sandbox.track_url, APP_APP_URL=sandbox.app_url,
               PYTHONUNBUFFERED="1", **extra)
    return env


class Server:
    """A server process; its output goes to a file so a full pipe never blocks it."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path,
                 cwd: Path = APPS) -> None:
        self.log = log
        self._termed = False
        self._out = log.open("ab")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"{url} not ready in {timeout} s:\n{self.output()[-3000:]}")

    def term(self) -> None:
        """One SIGTERM, as a process manager sends it: a second one makes some servers
        (uvicorn's supervisor) skip the graceful shutdown."""
        if self.proc.poll() is None and not self._termed:
            self._termed = True
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 40.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._out.close()


def post(url: str) -> bool:
    request = urllib.request.Request(url, method="POST", data=b"")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def drive(base: str, count: int, stop_after: int, stop: Callable[[], None],
          workers: int = 4) -> set[int]:
    """POST ``/track/<i>`` for ``i < count`` from ``workers`` threads; after ``stop_after``
    answers, call ``stop`` (SIGTERM) and keep sending. Returns the ``i`` answered 200."""
    accepted: set[int] = set()
    lock = threading.Lock()
    numbers = iter(range(count))
    stopped = threading.Event()

    def run() -> None:
        while True:
            with lock:
                i = next(numbers, None)
            if i is None:
                return
            ok = post(f"{base}/track/{i}")
            with lock:
                if ok:
                    accepted.add(i)
                if len(accepted) >= stop_after and not stopped.is_set():
                    stopped.set()
                    stop()
            time.sleep(0.01)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return accepted


def stored(sandbox: Any, service: str) -> collections.Counter[int]:
    """How many times each ``i`` was stored as a ``signed_up`` event."""
    counts: collections.Counter[int] = collections.Counter()
    for person in sandbox.people(service):
        for event in person["events"]:
            if event["name"] == "signed_up":
                counts[int(event["data"]["i"])] += 1
    return counts


def event_ids(sandbox: Any, service: str) -> dict[int, list[str]]:
    """The event ids stored for each ``i``: a resend of one call repeats its id."""
    ids: dict[int, list[str]] = collections.defaultdict(list)
    for person in sandbox.people(service):
        for event in person["events"]:
            if event["name"] == "signed_up":
                ids[int(event["data"]["i"])].append(str(event["id"]))
    return dict(ids)


def assert_once_per_call(sandbox: Any, calls: collections.Counter[int]) -> None:
    """Customer.io stored each call exactly once (it de-duplicates by event id). OpenCDP
    stored each call, and any extra copy is a resend of that same call (same
    ``Idempotency-Key``, counted by the sandbox as a duplicate): the gateway's at-least-once
    for a request whose answer was lost when the process stopped."""
    assert stored(sandbox, "customerio") == calls
    ids = event_ids(sandbox, "opencdp")
    assert set(ids) == set(calls), sorted(set(ids) ^ set(calls))
    for i, copies in ids.items():
        assert len(set(copies)) == calls[i], (i, copies)
    resent = sum(len(copies) - calls[i] for i, copies in ids.items())
    assert resent <= sandbox.stats()["opencdp"]["duplicates"], ids


def logged_losses(text: str) -> int:
    return sum(int(n) for n in LOST.findall(text))


def wait_stored(sandbox: Any, want: set[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(set(stored(sandbox, s)) >= want for s in ("opencdp", "customerio")):
            return
        time.sleep(0.1)
