"""A Celery prefork worker with a real Redis broker and --max-tasks-per-child: the pool
children's clients are drained when they are recycled and at warm shutdown."""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import scenario
from support_apps import BIN, Server, app_env, assert_once_per_call, logged_losses, wait_stored

pytestmark = pytest.mark.redis


def runs(path: Path) -> collections.Counter[int]:
    """How many times each task ran to the end (Celery may run a task twice)."""
    if not path.exists():
        return collections.Counter()
    return collections.Counter(int(line) for line in path.read_text().split())


def accepted(path: Path) -> set[int]:
    return set(runs(path))


@pytest.fixture
def publisher(redis_url: str) -> Iterator[Any]:
    from celery import Celery

    app = Celery("publisher", broker=redis_url)
    yield app
    app.close()


def worker(sandbox: Any, tmp_path: Path, redis_url: str, queue: str, name: str,
           log: str, **env: str) -> Server:
    environ = app_env(sandbox, APP_QUEUE=queue, APP_BROKER=redis_url, APP_CELERY_QUEUE=name,
                      APP_ACCEPTED=str(tmp_path / "accepted"), **env)
    server = Server([str(BIN / "celery"), "-A", "celery_app", "worker", "--pool", "prefork",
                     "--concurrency", "2", "--max-tasks-per-child", "5", "--loglevel", "info",
                     "--without-gossip", "--without-mingle", "--without-heartbeat",
                     "--hostname", f"{name}@%h"], environ, tmp_path / log)
    deadline = time.monotonic() + 30
    while "ready." not in server.output():
        assert server.proc.poll() is None and time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    return server


def publish_until_stopped(publisher: Any, name: str, server: Server, tmp_path: Path) -> None:
    """Publish at 20 tasks/s; SIGTERM the worker once ``STOP_AFTER`` tasks have run."""
    deadline = time.monotonic() + 30
    published = 0
    while len(accepted(tmp_path / "accepted")) < scenario.STOP_AFTER:
        assert time.monotonic() < deadline, server.output()[-3000:]
        if published < scenario.COUNT:
            publisher.send_task("celery_app.track", args=[published], queue=name)
            published += 1
        time.sleep(0.05)
    server.term()
    for i in range(published, scenario.COUNT):
        publisher.send_task("celery_app.track", args=[i], queue=name)


def run(sandbox: Any, tmp_path: Path, redis_url: str, publisher: Any, queue: str,
        **env: str) -> tuple[set[int], str]:
    name = f"q{uuid.uuid4().hex[:8]}"
    sandbox.set_faults(scenario.GATEWAY_LATENCY)
    server = worker(sandbox, tmp_path, redis_url, queue, name, "first.log", **env)
    try:
        publish_until_stopped(publisher, name, server, tmp_path)
        assert server.wait(40) == 0, server.output()[-3000:]
    finally:
        server.kill()
    done = accepted(tmp_path / "accepted")
    assert len(done) >= scenario.STOP_AFTER, server.output()[-3000:]
    if queue == "memory":
        return done, server.output()
    sandbox.clear_faults()
    server = worker(sandbox, tmp_path, redis_url, queue, name, "second.log", **env)
    try:
        for i in range(100, 103):  # later traffic: the new children build their clients
            publisher.send_task("celery_app.track", args=[i], queue=name)
        wait_stored(sandbox, {100, 101, 102}, timeout=30)
        wait_stored(sandbox, accepted(tmp_path / "accepted"), timeout=30)
        server.term()
        assert server.wait(40) == 0, server.output()[-3000:]
    finally:
        server.kill()
    return accepted(tmp_path / "accepted"), server.output()


def test_durable_queue_delivers_every_accepted_task_once(
        sandbox: Any, tmp_path: Path, redis_url: str, publisher: Any) -> None:
    done, _ = run(sandbox, tmp_path, redis_url, publisher, f"sqlite:///{tmp_path / 'q.db'}",
                  APP_SHUTDOWN_TIMEOUT="0.3")
    calls = runs(tmp_path / "accepted")
    assert set(calls) == done
    assert_once_per_call(sandbox, calls)


def test_memory_queue_children_drain_when_recycled_and_at_shutdown(
        sandbox: Any, tmp_path: Path, redis_url: str, publisher: Any) -> None:
    done, output = run(sandbox, tmp_path, redis_url, publisher, "memory",
                       APP_SHUTDOWN_TIMEOUT="5")
    calls = runs(tmp_path / "accepted")
    assert set(calls) == done
    assert logged_losses(output) == 0, output[-3000:]
    assert_once_per_call(sandbox, calls)
