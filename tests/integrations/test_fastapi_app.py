"""FastAPI under uvicorn with 2 worker processes: the lifespan owns one AsyncClient each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import scenario
from support_apps import BIN


def uvicorn(port: int) -> list[str]:
    return [str(BIN / "uvicorn"), "fastapi_app:app", "--workers", "2", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--timeout-graceful-shutdown", "20"]


def test_durable_queue_delivers_every_accepted_call_once(sandbox: Any, tmp_path: Path) -> None:
    scenario.durable(sandbox, tmp_path, uvicorn)


def test_memory_queue_loss_is_logged(sandbox: Any, tmp_path: Path) -> None:
    assert scenario.memory(sandbox, tmp_path, uvicorn, APP_SHUTDOWN_TIMEOUT="0.3") > 0
