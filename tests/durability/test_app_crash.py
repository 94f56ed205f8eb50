"""SIGKILL mid-stream: whatever track() returned for is delivered after a restart, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from opencdp.testing import sandbox_client

PRODUCER = Path(__file__).with_name("producer.py")


def acknowledged(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split("\n") if line.strip()]


def stored(sandbox: Any, service: str) -> Counter[int]:
    seen: Counter[int] = Counter()
    for person in sandbox.people(service):
        for event in person.get("events", []):
            seen[event["data"]["seq"]] += 1
    return seen


def kill_after(args: list[str], acks: Path, at_least: int, timeout: float = 60) -> None:
    child = subprocess.Popen([sys.executable, str(PRODUCER), *args])
    deadline = time.monotonic() + timeout
    try:
        while len(acknowledged(acks)) < at_least:
            if time.monotonic() > deadline or child.poll() is not None:
                pytest.fail("the producer did not get far enough before the kill")
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)


@pytest.mark.timeout(180)
def test_sqlite_outbox_survives_sigkill_of_the_app(sandbox: Any, tmp_path: Path) -> None:
    queue = f"sqlite:///{tmp_path / 'outbox.db'}"
    acks = tmp_path / "acks.txt"
    args = [queue, sandbox.opencdp_url, sandbox.track_url, sandbox.app_url, str(acks), "100000",
            "deliver"]
    kill_after(args, acks, at_least=1500)
    promised = set(acknowledged(acks))
    assert len(promised) >= 1500
    # Restart: a new client on the same outbox delivers what the killed one left behind.
    client = sandbox_client(sandbox, queue=queue, timeout=1.0)
    assert client.flush(timeout=120)
    client.close(timeout=5)
    for service in ("opencdp", "customerio"):
        seen = stored(sandbox, service)
        missing = promised - set(seen)
        assert not missing, f"{service}: lost {len(missing)} acknowledged events"
    cio = stored(sandbox, "customerio")
    assert all(n == 1 for n in cio.values()), "Customer.io de-duplicates by event id"
    twice = sum(n - 1 for n in stored(sandbox, "opencdp").values() if n > 1)
    assert twice <= 10 * 2, "at most the requests in flight at the kill are resent"
    assert twice == sandbox.stats()["opencdp"]["duplicates"], "every resend carries its key"
