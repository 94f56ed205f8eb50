"""Loopback servers for the endpoints under test, and clients wired to the sandbox."""

from __future__ import annotations

from typing import Any

from opencdp.config import BreakerConfig, RetryConfig
from opencdp.testing import sandbox_options


def client_options(sandbox: Any, **extra: Any) -> dict[str, Any]:
    return sandbox_options(sandbox, **{"retry": RetryConfig(base_delay=0.01, max_delay=0.05),
                                       "breaker": BreakerConfig(reset_timeout=0.2),
                                       "timeout": 5.0, **extra})
