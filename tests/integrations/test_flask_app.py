"""Flask under gunicorn (2 workers): the extension's client is per process, closed at exit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import scenario
from support_apps import BIN


def gunicorn(port: int) -> list[str]:
    return [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-w", "2",
            "-b", f"127.0.0.1:{port}", "flask_app:app"]


def test_durable_queue_delivers_every_accepted_call_once(sandbox: Any, tmp_path: Path) -> None:
    scenario.durable(sandbox, tmp_path, gunicorn)


def test_memory_queue_loss_is_logged(sandbox: Any, tmp_path: Path) -> None:
    assert scenario.memory(sandbox, tmp_path, gunicorn, APP_SHUTDOWN_TIMEOUT="0.3") > 0
