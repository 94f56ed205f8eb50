"""Helpers for relay tests: configurations pointed at the sandbox, and bounded polling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opencdp.config import BreakerConfig, ClientConfig, RetryConfig
from opencdp.server import ServerConfig
from opencdp.testing import sandbox_options

RELAY_KEY = "relay-key-0123456789"
OTHER_KEY = "relay-key-second-one"
SIGNING_KEY = "whsec_relay_test_key_0123"


def client_config(sandbox: Any, **extra: Any) -> ClientConfig:
    """The delivering client: dual-write into the sandbox, quick retries, no atexit hook."""
    return ClientConfig(**sandbox_options(sandbox, **{
        "retry": RetryConfig(base_delay=0.01, max_delay=0.05, max_attempts=8),
        "breaker": BreakerConfig(reset_timeout=0.2), "timeout": 5.0, **extra}))


def server_config(sandbox: Any, tmp_path: Path, *, client: dict[str, Any] | None = None,
                  **extra: Any) -> ServerConfig:
    options: dict[str, Any] = {
        "api_keys": (RELAY_KEY, OTHER_KEY),
        "client": client_config(sandbox, **(client or {})),
        "queue": f"sqlite:///{tmp_path / 'relay.db'}",
        "port": 0,
        "drain_timeout": 5.0,
    }
    options.update(extra)
    return ServerConfig(**options)


