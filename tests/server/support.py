"""Helpers for relay tests: configurations pointed at the sandbox, and bounded polling."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opencdp import CustomerIO
from opencdp.config import BreakerConfig, ClientConfig, RetryConfig
from opencdp.server import ServerConfig

RELAY_KEY = "relay-key-0123456789"
OTHER_KEY = "relay-key-second-one"
SIGNING_KEY = "whsec_relay_test_key_0123"


def client_config(sandbox: Any, **extra: Any) -> ClientConfig:
    """The delivering client: dual-write into the sandbox, quick retries, no atexit hook."""
    options: dict[str, Any] = {
        "cdp_api_key": "cdp-test-key",
        "cdp_endpoint": sandbox.opencdp_url,
        "cdp_fallback_endpoints": [],
        "send_to_customer_io": True,
        "customer_io": CustomerIO("sandbox-site", "sandbox-track-key",
                                  app_api_key="sandbox-app-key",
                                  track_url=sandbox.track_url, app_url=sandbox.app_url),
        "retry": RetryConfig(base_delay=0.01, max_delay=0.05, max_attempts=8),
        "breaker": BreakerConfig(reset_timeout=0.2),
        "timeout": 5.0,
        "register_atexit": False,
    }
    options.update(extra)
    return ClientConfig(**options)


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


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
