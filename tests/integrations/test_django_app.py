"""Django under gunicorn (2 workers, with and without --preload), and its management
commands with the configured Redis down."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import scenario
from support_apps import APPS, BIN, Server, app_env, free_port, post, stored, wait_stored


def gunicorn(preload: bool) -> Any:
    def argv(port: int) -> list[str]:
        return [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-w", "2",
                "-b", f"127.0.0.1:{port}", *(["--preload"] if preload else []),
                "djangoapp.wsgi"]
    return argv


@pytest.mark.parametrize("preload", [False, True], ids=["fork", "preload"])
def test_durable_queue_delivers_every_accepted_call_once(sandbox: Any, tmp_path: Path,
                                                         preload: bool) -> None:
    scenario.durable(sandbox, tmp_path, gunicorn(preload), APP_DB=str(tmp_path / "db"))


def test_memory_queue_loss_is_logged(sandbox: Any, tmp_path: Path) -> None:
    lost = scenario.memory(sandbox, tmp_path, gunicorn(True), APP_DB=str(tmp_path / "db"),
                           APP_SHUTDOWN_TIMEOUT="0.3")
    assert lost > 0


def manage(sandbox: Any, tmp_path: Path, *args: str,
           **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "python"), "manage.py", *args], cwd=APPS,
                          env=app_env(sandbox, APP_DB=str(tmp_path / "db"), **env),
                          capture_output=True, text=True, timeout=60, check=False)


def test_check_and_migrate_work_with_redis_down(sandbox: Any, tmp_path: Path) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    for command in (("check",), ("migrate", "--noinput")):
        result = manage(sandbox, tmp_path, *command, APP_QUEUE=down)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "db").exists()


def test_check_reports_missing_credentials(sandbox: Any, tmp_path: Path) -> None:
    result = manage(sandbox, tmp_path, "check", APP_NO_SETTINGS="1")
    assert result.returncode == 1
    assert "opencdp.E001" in result.stderr and "CDP_API_KEY" in result.stderr
    result = manage(sandbox, tmp_path, "check", APP_NO_SETTINGS="1", CDP_API_KEY="k",
                    CUSTOMERIO_SITE_ID="site")
    assert result.returncode == 1
    assert "opencdp.E002" in result.stderr and "CUSTOMERIO_TRACK_API_KEY" in result.stderr
    result = manage(sandbox, tmp_path, "check", APP_NO_SETTINGS="1", CDP_API_KEY="k")
    assert result.returncode == 0, result.stderr


def test_runserver_reloader_parent_builds_no_client(sandbox: Any, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.db"
    port = free_port()
    env = app_env(sandbox, APP_DB=str(tmp_path / "db"), APP_QUEUE=f"sqlite:///{outbox}")
    server = Server([str(BIN / "python"), "manage.py", "runserver", f"127.0.0.1:{port}"],
                    env, tmp_path / "runserver.log")
    try:
        server.wait_http(f"http://127.0.0.1:{port}/ping")
        children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
        assert children.read_text().split(), "runserver is expected to run its reloader"
        assert not outbox.exists(), "a client was built before any view used it"
        assert post(f"http://127.0.0.1:{port}/track/1")
        assert outbox.exists()
        wait_stored(sandbox, {1})
    finally:
        server.kill()
    assert stored(sandbox, "customerio") == {1: 1}


def test_override_client_hands_views_a_capture(sandbox: Any, tmp_path: Path) -> None:
    driver = """
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "djangoapp.settings"
import django
django.setup()
from django.test import Client
from opencdp.integrations.django import get_client, override_client
from opencdp.testing import capture
with capture() as cap, override_client(cap.client):
    assert Client().post("/track/7").status_code == 200
    print([(m.kind, m.data["i"], m.destinations) for m in cap.messages])
print(get_client() is not cap.client)
"""
    result = subprocess.run([str(BIN / "python"), "-c", driver], cwd=APPS,
                            env=app_env(sandbox, APP_DB=str(tmp_path / "db")),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == [
        "[('track', 7, ('opencdp', 'customerio'))]", "True"]
    assert stored(sandbox, "opencdp") == {}
