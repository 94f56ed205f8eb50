"""``opencdp dashboard --queue`` on loopback, and ``opencdp worker --http-port``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from opencdp import Client
from opencdp.sandbox.command import environment
from opencdp.sandbox.config import SandboxConfig
from opencdp.testing import sandbox_options
from support.waiting import wait_for

from .conftest import RELAY_KEY


@contextmanager
def _running(args: list[str], env: dict[str, str]) -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, "-m", "opencdp", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "no output"
        yield json.loads(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENCDP_", "CDP_", "CUSTOMERIO_"))}
    env.update(extra)
    return env


def test_the_local_dashboard_serves_a_queue_on_loopback(sandbox: Any, tmp_path: Path) -> None:
    queue = f"sqlite:///{tmp_path / 'app.db'}"
    with Client(**sandbox_options(sandbox, queue=queue)) as client:
        client.identify("ada", {"plan": "pro"})
        assert client.flush(10)
    with _running(["dashboard", "--queue", queue, "--port", "0"], _env()) as started:
        url = started["dashboard"]
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(trust_env=False, timeout=10) as http:
            page = http.get(url)
            assert page.status_code == 200 and "Destinations" in page.text
            # the sampler starts with the first request; its first reading follows shortly
            assert wait_for(lambda: http.get(url + "api/state").json()["status"] == "queue",
                            10)
            assert http.get(url + "api/state",
                            headers={"host": "evil.example"}).status_code == 403
            assert http.post(url + "api/purge", json={}).status_code == 403
            csrf = http.get(url + "api/session").json()["csrf"]
            assert http.post(url + "api/purge", json={},
                             headers={"x-csrf-token": csrf}).json() == {"purged": 0}


def test_the_worker_serves_health_and_the_dashboard_behind_the_key(sandbox: Any,
                                                                    tmp_path: Path) -> None:
    env = _env(**environment(sandbox.urls, SandboxConfig()), OPENCDP_RELAY_KEYS=RELAY_KEY)
    queue = f"sqlite:///{tmp_path / 'shared.db'}"
    with _running(["worker", "--queue", queue, "--http-port", "0"], env) as started:
        url = started["dashboard"]
        base = url.removesuffix("/dashboard/")
        with httpx.Client(trust_env=False, timeout=10) as http:
            assert http.get(base + "/health").status_code == 200
            assert http.get(url + "api/state").status_code == 401
            assert 'name="key"' in http.get(url).text
            state = http.get(url + "api/state", headers={"Authorization": RELAY_KEY})
            assert state.status_code == 200 and state.json()["label"] == "worker"
