"""``opencdp worker`` as a process: clean usage errors, and a drain bar only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from opencdp.cli import main
from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid
from opencdp.outbox.url import open_outbox

CREDENTIALS = {"CDP_API_KEY": "cdp-test-key", "CUSTOMERIO_SITE_ID": "sandbox-site",
               "CUSTOMERIO_TRACK_API_KEY": "sandbox-track-key"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CDP_", "CUSTOMERIO_", "OPENCDP_"))}
    env.update(extra)
    return env


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--queue", "sqlite:///w.db"], {}, "CDP_API_KEY is missing"),
    (["--queue", "memory"], CREDENTIALS, "memory queue lives inside one process"),
    (["--queue", "memory?x=1"], CREDENTIALS, "memory queue"),
    (["--queue", " "], CREDENTIALS, "is empty"),
    ([], CREDENTIALS, "Missing option '--queue'"),
    (["--queue", "ftp://host/x"], CREDENTIALS, "ftp"),
    (["--queue", "sqlite:///w.db", "--timeout", "0"], CREDENTIALS, "--timeout"),
])
def test_usage_problems_exit_2_without_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str],
        message: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["worker", *args], env=_env(**env) | {
        k: "" for k in ("CDP_API_KEY", "OPENCDP_QUEUE_URL") if k not in env})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output and result.exception is not None


def test_help_names_the_environment_and_no_default() -> None:
    text = CliRunner().invoke(main, ["worker", "--help"], terminal_width=200).output
    line = next(x for x in text.splitlines() if x.strip().startswith("--queue"))
    assert "[env var: OPENCDP_QUEUE_URL; required]" in line
    assert "default" not in line


def _seed(url: str, count: int) -> None:
    box = open_outbox(url, max_queue_size=count + 1, queue_full="drop_oldest",
                      queue_full_timeout=0, durability="durable")
    for i in range(count):
        box.put(Message(new_ulid(), "track", f"user-{i % 5}", "Paid", {"n": i}, None,
                        OPENCDP | CUSTOMERIO))
    box.close()


def _worker(sandbox: Any, queue: str, stderr: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "opencdp", "worker", "--queue", queue, "--cdp-endpoint",
         sandbox.opencdp_url, "--track-url", sandbox.track_url, "--app-url", sandbox.app_url,
         "--drain-timeout", "20"],
        env=_env(**CREDENTIALS, COLUMNS="100"), stdout=subprocess.PIPE, stderr=stderr)


def _stop_and_collect(proc: subprocess.Popen[bytes], read_fd: int | None) -> bytes:
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["worker"] == "started"
    proc.send_signal(signal.SIGTERM)
    seen = b""
    deadline = time.monotonic() + 40
    while proc.poll() is None and read_fd is not None:
        assert time.monotonic() < deadline, "the worker did not stop"
        ready, _, _ = select.select([read_fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(read_fd, 65536)
            except OSError:
                break
    proc.wait(40)
    return seen


@pytest.mark.timeout(90)
def test_drain_shows_progress_on_a_terminal(sandbox: Any, tmp_path: Path) -> None:
    queue = f"sqlite:///{tmp_path / 'q.db'}"
    _seed(queue, 40)
    sandbox.set_faults({"opencdp": {"latency_ms": 300}, "customerio": {"latency_ms": 300}})
    master, slave = pty.openpty()
    try:
        proc = _worker(sandbox, queue, slave)
        os.close(slave)
        seen = _stop_and_collect(proc, master)
    finally:
        os.close(master)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b"draining" in seen, seen[-500:]
    assert json.loads(out.decode().strip().splitlines()[-1]) == {"worker": "stopped",
                                                                  "drained": True}


@pytest.mark.timeout(90)
def test_no_progress_into_a_pipe(sandbox: Any, tmp_path: Path) -> None:
    queue = f"sqlite:///{tmp_path / 'q.db'}"
    _seed(queue, 10)
    sandbox.set_faults({"opencdp": {"latency_ms": 200}})
    proc = _worker(sandbox, queue, subprocess.PIPE)
    _stop_and_collect(proc, None)
    out, err = proc.communicate(timeout=10)
    assert b"draining" not in err and b"Traceback" not in err
    assert json.loads(out.decode().strip().splitlines()[-1])["drained"] is True
