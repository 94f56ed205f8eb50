"""Client options for the test apps, from the environment the tests set (sandbox URLs,
queue, shutdown timeout): what a deployment's settings would hold."""

from __future__ import annotations

import os
from typing import Any


def options() -> dict[str, Any]:
    env = os.environ
    return {
        "cdp_api_key": "cdp-test-key",
        "cdp_endpoint": env["APP_OPENCDP_URL"],
        "cdp_fallback_endpoints": [],
        "send_to_customer_io": True,
        "customer_io": {"site_id": "sandbox-site", "api_key": "sandbox-track-key",
                        "track_url": env["APP_TRACK_URL"], "app_url": env["APP_APP_URL"]},
        "queue": env.get("APP_QUEUE", "memory"),
        "shutdown_timeout": float(env.get("APP_SHUTDOWN_TIMEOUT", "1")),
        "timeout": 1.5,
        "retry": {"base_delay": 0.05, "max_delay": 0.2},
        "breaker": {"failure_threshold": 1000},
    }


def client_options() -> dict[str, Any]:
    """``options()`` with the nested values built, for ``Client(**...)`` directly (a factory
    of one's own gets none of the integrations' defaults, hence ``silence``)."""
    from opencdp import CustomerIO
    from opencdp.config import BreakerConfig, RetryConfig

    built = options()
    built["customer_io"] = CustomerIO(**built["customer_io"])
    built["retry"] = RetryConfig(**built["retry"])
    built["breaker"] = BreakerConfig(**built["breaker"])
    built["silence"] = {"OCDP115"}
    return built
