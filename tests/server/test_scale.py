"""`opencdp serve --workers N` and `--ingest-only` as real processes on one port."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from .support import RELAY_KEY

TRACK = "/gateway/data-gateway/v1/persons/track"


def _env() -> dict[str, str]:
    env = dict(os.environ, OPENCDP_RELAY_KEYS=RELAY_KEY, CDP_API_KEY="cdp-test-key",
               CUSTOMERIO_SITE_ID="sandbox-site", CUSTOMERIO_TRACK_API_KEY="sandbox-track-key")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def _upstream(sandbox: Any) -> list[str]:
    return ["--cdp-endpoint", sandbox.opencdp_url, "--track-url", sandbox.track_url,
            "--app-url", sandbox.app_url]


class Relay:
    def __init__(self, sandbox: Any, queue: str, log: IO[str], *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "opencdp", "serve", "--queue", queue, "--port", "0",
             "--workers", "2", "--drain-timeout", "10", "--log-level", "warning",
             *_upstream(sandbox), *extra],
            env=_env(), stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the relay exited before it started"
        self.urls = json.loads(line)
        assert self.urls["workers"] == 2
        self.url = self.urls["url"]

    def processes(self, connections: int = 40) -> Counter[str]:
        """Which process answered ``/health`` on each of ``connections`` fresh connections."""
        seen: Counter[str] = Counter()
        for _ in range(connections):
            with httpx.Client(trust_env=False, timeout=10) as fresh:
                answer = fresh.get(self.url + "/health")
            seen[answer.headers["x-opencdp-relay-process"]] += 1
        return seen

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0
        last: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return last

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _seqs(sandbox: Any, service: str) -> Counter[int]:
    seen: Counter[int] = Counter()
    for person in sandbox.people(service):
        for event in person.get("events", []):
            seen[event["data"]["seq"]] += 1
    return seen


def _post(base: str, seqs: range, accepted: list[int], lock: threading.Lock,
          stop: threading.Event | None = None) -> None:
    """One keep-alive connection posting ``seqs`` in order; records what was answered 2xx.
    A connection the relay dropped (its process killed) is opened again."""
    client = httpx.Client(base_url=base, trust_env=False, timeout=10,
                          headers={"Authorization": RELAY_KEY})
    try:
        for seq in seqs:
            if stop is not None and stop.is_set():
                return
            body = {"identifier": f"user_{seq % 50}", "eventName": "scaled",
                    "properties": {"seq": seq}}
            try:
                answer = client.post(TRACK, json=body)
            except httpx.TransportError:
                client.close()
                client = httpx.Client(base_url=base, trust_env=False, timeout=10,
                                      headers={"Authorization": RELAY_KEY})
                continue
            if answer.status_code == 202:
                with lock:
                    accepted.append(seq)
    finally:
        client.close()


def _load(base: str, count: int, connections: int,
          stop: threading.Event | None = None) -> tuple[list[int], list[threading.Thread]]:
    accepted: list[int] = []
    lock = threading.Lock()
    per = count // connections
    threads = [threading.Thread(target=_post, daemon=True,
                                args=(base, range(i * per, (i + 1) * per), accepted, lock, stop))
               for i in range(connections)]
    for thread in threads:
        thread.start()
    return accepted, threads


def _join(threads: list[threading.Thread], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "the load did not finish in time"


def _wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[IO[str]]:
    with open(tmp_path / "relay.log", "w+") as file:
        yield file


def _start_worker(queue: str, sandbox: Any, log: IO[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "opencdp", "worker", "--queue", queue, "--timeout", "2",
         "--cdp-endpoint", sandbox.opencdp_url, "--track-url", sandbox.track_url,
         "--app-url", sandbox.app_url], env=_env(), stdout=subprocess.PIPE, stderr=log,
        text=True)
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["worker"] == "started"
    return proc


def _stop_worker(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
    elif proc.stdout is not None:
        proc.stdout.close()


@pytest.mark.timeout(90)
def test_two_processes_share_the_port_and_store_each_call_once(
        sandbox: Any, tmp_path: Path, log: IO[str]) -> None:
    """SQLite, one file for both processes: connections reach both; SIGTERM drains both."""
    relay = Relay(sandbox, f"sqlite:///{tmp_path / 'relay.db'}", log)
    try:
        processes = relay.processes()
        assert len(processes) == 2, processes
        assert all(label.split("/")[1].startswith("2 ") for label in processes)
        health = httpx.get(relay.url + "/health", trust_env=False).json()
        assert health["relay"]["mode"] == "deliver" and health["relay"]["processes"] == 2
        accepted, threads = _load(relay.url, 600, 12)
        _join(threads, 40)
        assert sorted(accepted) == list(range(600))
        metrics = httpx.get(relay.url + "/metrics", trust_env=False).text
        assert 'opencdp_relay_requests_total{endpoint="track",status="202"} 600.0' in metrics
        assert relay.stop() == {"relay": "stopped", "drained": True}
    finally:
        relay.kill()
    assert _seqs(sandbox, "customerio") == Counter(range(600))
    assert _seqs(sandbox, "opencdp") == Counter(range(600))


@pytest.mark.redis
@pytest.mark.timeout(90)
def test_ingest_only_relays_and_a_killed_process_lose_nothing_answered(
        sandbox: Any, redis_url: str, log: IO[str]) -> None:
    """--ingest-only on Redis, delivered by an `opencdp worker`; one relay process is
    SIGKILLed under load: every call answered 202 is delivered, none twice at Customer.io."""
    queue = f"{redis_url.rstrip('/')}?prefix=scale{secrets.token_hex(4)}"
    relay = Relay(sandbox, queue, log, "--ingest-only")
    worker: subprocess.Popen[str] | None = None
    try:
        health = httpx.get(relay.url + "/health", trust_env=False).json()
        assert health["relay"]["mode"] == "ingest-only"
        assert health["relay"]["delivers"] is False
        labels = relay.processes(30)
        assert len(labels) == 2, labels
        victim = int(sorted(labels)[0].split("pid=")[1])
        accepted, threads = _load(relay.url, 1600, 16)
        _wait_for(lambda: len(accepted) >= 300, 30, "the relay did not take calls")
        os.kill(victim, signal.SIGKILL)
        _join(threads, 50)
        assert len(accepted) >= 800, len(accepted)  # most calls were answered
        # Nothing delivered yet: the relays only store.
        assert sandbox.stats()["opencdp"]["events"] == 0
        # The supervisor replaced the killed process: both serve again.
        _wait_for(lambda: len(relay.processes(20)) == 2, 20, "no process replaced the dead one")
        worker = _start_worker(queue, sandbox, log)
        want = set(accepted)
        _wait_for(lambda: want <= set(_seqs(sandbox, "customerio"))
                  and want <= set(_seqs(sandbox, "opencdp")), 40, "not everything was delivered")
        assert relay.stop()["relay"] == "stopped"
    finally:
        relay.kill()
        if worker is not None:
            _stop_worker(worker)
    cio = _seqs(sandbox, "customerio")
    assert max(cio.values()) == 1, [s for s, n in cio.items() if n > 1][:10]
    log.seek(0)
    assert "OCDP395" in log.read()


def test_a_memory_queue_is_refused_for_several_processes_and_for_ingest_only(
        sandbox: Any, tmp_path: Path) -> None:
    """Both need a queue other processes share: a memory queue would lose what it holds."""
    from opencdp.errors import ConfigurationError
    from opencdp.server.scale import Supervisor

    from .support import server_config

    with pytest.raises(ConfigurationError, match="share"):
        server_config(sandbox, tmp_path, queue="memory", ingest_only=True)
    with pytest.raises(ConfigurationError, match="one per process"):
        Supervisor(server_config(sandbox, tmp_path, queue="memory"), 2)
