"""The shared proof: traffic under injected gateway latency, SIGTERM mid-stream, counts."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support_apps import (
    Server,
    app_env,
    assert_once_per_call,
    drive,
    event_ids,
    free_port,
    logged_losses,
    stored,
    wait_stored,
)

GATEWAY_LATENCY = {"opencdp": {"latency_ms": 600}}
COUNT = 40
STOP_AFTER = 16


def _run(argv: list[str], env: dict[str, str], log: Path,
         base: str) -> tuple[set[int], str]:
    server = Server(argv, env, log)
    try:
        server.wait_http(f"{base}/health/opencdp")
        accepted = drive(base, COUNT, STOP_AFTER, server.term)
        server.term()
        assert server.wait(40) == 0, server.output()[-3000:]
    finally:
        server.kill()
    return accepted, server.output()


def durable(sandbox: Any, tmp_path: Path, argv: Callable[[int], list[str]],
            **env: str) -> None:
    """With a SQLite queue, every accepted call is stored exactly once on both platforms
    once the app has been restarted."""
    queue = f"sqlite:///{tmp_path / 'outbox.db'}"
    sandbox.set_faults(GATEWAY_LATENCY)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = app_env(sandbox, APP_QUEUE=queue, **{"APP_SHUTDOWN_TIMEOUT": "0.3", **env})
    accepted, first = _run(argv(port), environ, tmp_path / "first.log", base)
    assert STOP_AFTER <= len(accepted) <= COUNT, (len(accepted), first[-3000:])
    left = accepted - set(stored(sandbox, "opencdp"))
    assert left, "the stop left nothing for the restart to deliver"
    sandbox.clear_faults()
    server = Server(argv(port), environ, tmp_path / "second.log")
    try:
        server.wait_http(f"{base}/ping")  # no call: the workers drain at start
        wait_stored(sandbox, accepted, timeout=30)
        time.sleep(0.3)
        server.term()
        assert server.wait(40) == 0, server.output()[-3000:]
    finally:
        server.kill()
    assert_once_per_call(sandbox, collections.Counter(accepted))


def memory(sandbox: Any, tmp_path: Path, argv: Callable[[int], list[str]],
           **env: str) -> int:
    """With the memory queue, whatever was not delivered is counted in an OCDP302 line."""
    sandbox.set_faults(GATEWAY_LATENCY)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environ = app_env(sandbox, APP_QUEUE="memory", **env)
    accepted, output = _run(argv(port), environ, tmp_path / "server.log", base)
    assert STOP_AFTER <= len(accepted) <= COUNT, output[-3000:]
    time.sleep(1.2)  # requests the server had in flight when it stopped
    lost = logged_losses(output)
    for service in ("opencdp", "customerio"):
        ids = event_ids(sandbox, service)
        assert set(ids) <= accepted, (service, ids)
        assert all(len(set(copies)) == 1 for copies in ids.values()), (service, ids)
        missing = accepted - set(ids)
        assert len(missing) <= lost, (service, sorted(missing), lost, output[-3000:])
    assert max(map(len, event_ids(sandbox, "customerio").values()), default=1) == 1
    return lost
