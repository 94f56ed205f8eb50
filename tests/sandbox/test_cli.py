"""The ``opencdp sandbox`` command, ``process=True``, and TLS."""

from __future__ import annotations

import json
import os
import select
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from opencdp.cli import main
from opencdp.sandbox import Sandbox

from .conftest import SITE, TRACK_KEY

KEYS = {"opencdp", "customerio_track", "customerio_app", "admin", "ca_file"}


def _first_line(proc: subprocess.Popen[bytes], timeout: float = 20) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no start-up line"
    line = proc.stdout.readline()
    result: dict[str, Any] = json.loads(line)
    return result


@contextmanager
def _command(*args: str, env: dict[str, str] | None = None
             ) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    proc = subprocess.Popen([str(Path(sys.executable).parent / "opencdp"), "sandbox", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    try:
        yield proc, _first_line(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_command_prints_urls_and_stops_cleanly_on_sigterm() -> None:
    with _command("--port", "0") as (proc, urls):
        assert set(urls) >= KEYS
        assert urls["ca_file"] is None
        assert urls["opencdp"].endswith("/gateway/data-gateway")
        r = httpx.put(f"{urls['customerio_track']}/api/v1/customers/1", json={},
                      auth=(SITE, TRACK_KEY))
        assert r.status_code == 200
        assert httpx.get(f"{urls['admin']}/stats").json()["customerio"]["people"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_command_sigint_is_a_clean_exit() -> None:
    with _command("--port", "0") as (proc, _):
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0


def test_command_options_and_env_credentials() -> None:
    faults = json.dumps({"opencdp": {"down": True}})
    with _command("--port", "0", "--site-id", "s2", "--rate-limit-rps", "0", "--faults", faults,
                  env={"OPENCDP_SANDBOX_TRACK_KEY": "k2", "OPENCDP_SANDBOX_CDP_KEY": "c2"}
                  ) as (proc, urls):
        ok = httpx.put(f"{urls['customerio_track']}/api/v1/customers/1", json={},
                       auth=("s2", "k2"))
        assert ok.status_code == 200
        down = httpx.get(f"{urls['opencdp']}/v1/health/ping", headers={"Authorization": "c2"})
        assert down.status_code == 503
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_command_with_tls_serves_https_and_removes_its_files() -> None:
    with _command("--port", "0", "--tls", "--host", "127.0.0.1") as (proc, urls):
        ca = urls["ca_file"]
        assert urls["customerio_track"].startswith("https://127.0.0.1:")
        assert Path(ca).read_text().startswith("-----BEGIN CERTIFICATE-----")
        with httpx.Client(verify=ssl.create_default_context(cafile=ca)) as c:
            assert c.get(f"{urls['opencdp']}/v1/health/ping",
                         headers={"Authorization": "cdp-test-key"}).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{urls['admin']}/stats")  # not trusted without the CA
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not Path(ca).exists()


def test_bad_options_exit_with_usage_errors() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["sandbox", "--faults", "{nope"]).exit_code == 2
    assert runner.invoke(main, ["sandbox", "--faults", "[1]"]).exit_code == 2
    bad = runner.invoke(main, ["sandbox", "--faults", '{"x": {}}'])
    assert bad.exit_code == 2
    assert "unknown service" in bad.output
    assert runner.invoke(main, ["sandbox", "--port", "70000"]).exit_code == 2
    help_text = runner.invoke(main, ["sandbox", "--help"]).output
    for option in ("--tls", "--cdp-key", "--site-id", "--track-key", "--app-key", "--faults"):
        assert option in help_text


def test_faults_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"customerio": {"error_rate": 1.0, "statuses": [504]}}))
    with _command("--port", "0", "--faults", f"@{path}") as (proc, urls):
        r = httpx.put(f"{urls['customerio_track']}/api/v1/customers/1", json={},
                      auth=(SITE, TRACK_KEY))
        assert r.status_code == 504
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_busy_port_is_a_clear_error() -> None:
    with Sandbox(port=0) as sb:
        port = sb.track_url.rsplit(":", 1)[1]
        result = CliRunner().invoke(main, ["sandbox", "--port", port])
    assert result.exit_code == 1
    assert "cannot listen" in result.output


def test_process_mode_with_tls() -> None:
    with Sandbox(port=0, process=True, tls=True, app_key="app-2",
                 faults={"opencdp": {"latency_ms": 1}}) as sb:
        assert sb.ca_file is not None
        with httpx.Client(verify=ssl.create_default_context(cafile=sb.ca_file)) as c:
            r = c.post(f"{sb.app_url}/v1/send/sms", headers={"Authorization": "Bearer app-2"},
                       json={"transactional_message_id": 1, "identifiers": {"id": "1"},
                             "to": "+15551234567"})
        assert r.status_code == 200
        assert len(sb.sends("customerio")) == 1
        assert sb.faults()["opencdp"]["latency_ms"] == 1
        ca = sb.ca_file
    assert not Path(ca).exists()


def test_thread_mode_with_tls() -> None:
    with Sandbox(port=0, tls=True) as sb:
        assert sb.ca_file is not None
        assert sb.stats()["opencdp"]["requests"] == 0
        with httpx.Client(verify=ssl.create_default_context(cafile=sb.ca_file)) as c:
            assert c.get(sb.opencdp_url.replace("127.0.0.1", "localhost") + "/v1/health/ping",
                         headers={"Authorization": "cdp-test-key"}).status_code == 200


def _ms_event(track_url: str, auth: tuple[str, str] = (SITE, TRACK_KEY)) -> int:
    r = httpx.post(f"{track_url}/api/v1/customers/1/events", auth=auth,
                   json={"name": "x", "timestamp": 1_700_000_000_000})
    return r.status_code


def test_strict_flag_on_the_command_and_in_process_mode() -> None:
    with _command("--port", "0") as (proc, urls):
        assert _ms_event(urls["customerio_track"]) == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    with _command("--port", "0", "--strict", "--read-timeout", "5") as (proc, urls):
        assert _ms_event(urls["customerio_track"]) == 400
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    with Sandbox(port=0, process=True, strict=True) as sb:
        assert _ms_event(sb.track_url) == 400
    runner = CliRunner()
    assert runner.invoke(main, ["sandbox", "--read-timeout", "0"]).exit_code == 2
    help_text = runner.invoke(main, ["sandbox", "--help"]).output
    assert "--strict" in help_text and "--read-timeout" in help_text


def test_print_env_points_an_app_at_the_sandbox() -> None:
    """The printed export lines are all an app needs: Client.from_env in a process started
    with them dual-writes into this sandbox."""
    with _command("--port", "0", "--print-env") as (proc, urls):
        assert proc.stdout is not None
        env: dict[str, str] = {}
        for _ in range(7):
            line = proc.stdout.readline().decode().strip()
            assert line.startswith("export "), line
            name, _, value = line[len("export "):].partition("=")
            env[name] = value
        assert env["OPENCDP_ENDPOINT"] == urls["opencdp"]
        assert env["CUSTOMERIO_TRACK_URL"] == urls["customerio_track"]
        script = ("from opencdp import Client\n"
                  "c = Client.from_env(register_atexit=False)\n"
                  "c.identify('env-user', {'plan': 'pro'})\n"
                  "assert c.flush(10)\n"
                  "c.close(5)\n")
        done = subprocess.run([sys.executable, "-c", script], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        stats = httpx.get(f"{urls['admin']}/stats").json()
        assert stats["opencdp"]["people"] == 1 and stats["customerio"]["people"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
