"""Test support for applications that use opencdp: a sandbox fixture, capture mode, no backoff.

Use as a pytest plugin (``pytest_plugins = ["opencdp.testing"]``) for the fixtures
``opencdp_sandbox`` (one sandbox per test session, reset before each test) and
``opencdp_client`` (a dual-writing client pointed at it, closed after the test). Outside
pytest, ``sandbox_client(sandbox)`` builds the same client and ``capture()`` records calls
without sending anything, so a unit test can assert on what the code under test would send.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .client import Client
from .config import BreakerConfig, CustomerIO, RetryConfig
from .message import DESTINATION_NAMES, Message

__all__ = [
    "NO_BACKOFF",
    "Capture",
    "capture",
    "opencdp_client",
    "opencdp_sandbox",
    "sandbox_client",
    "sandbox_options",
]

NO_BACKOFF: dict[str, Any] = {
    "retry": RetryConfig(base_delay=0.0, max_delay=0.0, max_attempts=5),
    "breaker": BreakerConfig(reset_timeout=0.0),
}
"""Options that remove waiting from retries and breakers, so tests never sleep."""


def sandbox_client(sandbox: Any, **options: Any) -> Client:
    """A dual-writing ``Client`` pointed at a running ``opencdp.sandbox.Sandbox``."""
    return Client(**sandbox_options(sandbox, **options))


def sandbox_options(sandbox: Any, **options: Any) -> dict[str, Any]:
    """The options of ``sandbox_client`` (for an ``AsyncClient`` or a ``ClientConfig``)."""
    settings: dict[str, Any] = {
        "cdp_api_key": "cdp-test-key",
        "cdp_endpoint": sandbox.opencdp_url,
        "cdp_fallback_endpoints": [],
        "send_to_customer_io": True,
        "customer_io": CustomerIO("sandbox-site", "sandbox-track-key",
                                  app_api_key="sandbox-app-key",
                                  track_url=sandbox.track_url, app_url=sandbox.app_url),
        "register_atexit": False,
        "tls_ca_file": getattr(sandbox, "ca_file", None),
        **NO_BACKOFF,
    }
    settings.update(options)
    return settings


@dataclass(frozen=True)
class Captured:
    kind: str
    identifier: str
    name: str | None
    data: dict[str, Any]
    timestamp: int
    destinations: tuple[str, ...]
    event_id: str


class Capture:
    """A client that validates and records calls instead of delivering them."""

    def __init__(self, **options: Any) -> None:
        settings: dict[str, Any] = {"cdp_api_key": "capture-test-key", "start_worker": False,
                                    "register_atexit": False}
        settings.update(options)
        self.client = Client(**settings)

    @property
    def messages(self) -> list[Captured]:
        outbox: Any = self.client._core.outbox
        seen: dict[int, Message] = {}
        for lane in outbox._lanes.values():
            for message in lane.fresh:
                seen.setdefault(message.id, message)
        return [
            Captured(m.kind, m.identifier, m.name, dict(m.data or {}), m.timestamp,
                     tuple(n for bit, n in DESTINATION_NAMES.items() if m.destinations & bit),
                     m.ulid)
            for m in sorted(seen.values(), key=lambda m: m.id)
        ]

    def clear(self) -> None:
        outbox: Any = self.client._core.outbox
        for lane in outbox._lanes.values():
            lane.fresh.clear()


def capture(**options: Any) -> Capture:
    """Record what would be sent: ``cap = capture(); code_under_test(cap.client);
    assert cap.messages[0].name == "signed_up"``."""
    return Capture(**options)


@pytest.fixture(scope="session")
def opencdp_sandbox() -> Iterator[Any]:
    from .sandbox import Sandbox

    with Sandbox(port=0) as sandbox:
        yield sandbox


@pytest.fixture
def opencdp_client(opencdp_sandbox: Any) -> Iterator[Client]:
    opencdp_sandbox.reset()
    client = sandbox_client(opencdp_sandbox)
    yield client
    client.close(timeout=5)
