"""``opencdp serve`` as a process: its first line, its signals, its drain, its errors."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from opencdp.cli import main

from .support import RELAY_KEY

OPENCDP = str(Path(sys.executable).parent / "opencdp")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CDP_", "CUSTOMERIO_", "OPENCDP_"))}
    env.update({"OPENCDP_RELAY_KEYS": f"{RELAY_KEY},second-key", "CDP_API_KEY": "cdp-test-key",
                "CUSTOMERIO_SITE_ID": "sandbox-site",
                "CUSTOMERIO_TRACK_API_KEY": "sandbox-track-key"})
    env.update(extra)
    return env


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no line within {timeout} s (got {line!r})")
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            raise AssertionError(f"stdout closed (got {line!r})")
        line += chunk
    return line


@pytest.fixture
def serve(sandbox: Any, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    args = [OPENCDP, "serve", "--port", "0", "--queue", f"sqlite:///{tmp_path / 'relay.db'}",
            "--cdp-endpoint", sandbox.opencdp_url, "--track-url", sandbox.track_url,
            "--drain-timeout", "10", "--log-level", "warning"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def test_serve_prints_its_urls_first_then_drains_on_sigterm(
    serve: subprocess.Popen[bytes], sandbox: Any
) -> None:
    first = json.loads(_read_line(serve, timeout=30))
    assert list(first) == ["url", "gateway", "health", "metrics", "webhooks", "dashboard"]
    url = first["url"]
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    assert first["gateway"] == url + "/gateway/data-gateway"
    assert first["webhooks"] is None  # no signing key in the environment

    sandbox.set_faults({"customerio": {"latency_ms": 300}})
    with httpx.Client(base_url=first["gateway"], trust_env=False, timeout=10,
                      headers={"Authorization": RELAY_KEY}) as http:
        assert http.get("/v1/health/ping").status_code == 200
        for i in range(3):
            answer = http.post("/v1/persons/track", json={"identifier": "cli-user",
                                                          "eventName": "step",
                                                          "properties": {"i": i}})
            assert answer.status_code == 202
    health = httpx.get(first["health"] + "/customerio", trust_env=False)
    queue = health.json()["customerio"]["queue"]
    assert queue["pending"] + queue["in_flight"] > 0  # Customer.io is still answering

    serve.send_signal(signal.SIGTERM)
    assert serve.wait(30) == 0
    assert serve.stdout is not None
    rest = serve.stdout.read().decode().splitlines()
    assert json.loads(rest[-1]) == {"relay": "stopped", "drained": True}
    cio = sandbox.person("customerio", "cli-user")
    assert sorted(e["data"]["i"] for e in cio["events"]) == [0, 1, 2]
    assert len(sandbox.person("opencdp", "cli-user")["events"]) == 3


def test_serve_stops_cleanly_on_sigint(serve: subprocess.Popen[bytes]) -> None:
    json.loads(_read_line(serve, timeout=30))
    serve.send_signal(signal.SIGINT)
    assert serve.wait(30) == 0
    assert serve.stdout is not None
    assert json.loads(serve.stdout.read().decode().splitlines()[-1])["relay"] == "stopped"


def test_serve_without_relay_keys_is_a_usage_error() -> None:
    env = _env()
    env.pop("OPENCDP_RELAY_KEYS")
    result = CliRunner().invoke(main, ["serve", "--port", "0"], env={
        **{k: None for k in os.environ if k.startswith(("CDP_", "CUSTOMERIO_", "OPENCDP_"))},
        **env})
    assert result.exit_code == 2
    assert "OPENCDP_RELAY_KEYS" in result.output


def test_serve_on_a_taken_port_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main, ["serve", "--port", str(port), "--queue", f"sqlite:///{tmp_path / 'q.db'}"],
            env=_env())
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--queue", "ftp://127.0.0.1/x"], "is not supported"),
    (["--queue", "sqlite:///"], "names no database file"),
    (["--tls-cert", "/does/not/exist.pem"], "is not a readable file"),
    (["--port", "70000"], "70000"),
])
def test_configuration_problems_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "0", *args], env=_env())
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_serve_without_the_gateway_key_is_a_usage_error() -> None:
    env = _env()
    env.pop("CDP_API_KEY")
    result = CliRunner().invoke(main, ["serve", "--port", "0"], env={
        **{k: None for k in os.environ if k.startswith(("CDP_", "CUSTOMERIO_", "OPENCDP_"))},
        **env})
    assert result.exit_code == 2 and "CDP_API_KEY" in result.output
