"""Helpers for webhook tests: payloads, signed headers, recorders and loopback servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from opencdp.webhooks import sign_payload

KEY = "whsec_test_key_0123456789"


def payload(
    metric: str = "bounced",
    object_type: str = "email",
    *,
    event_id: str = "01E4C4CT6YDC7Y5M7FE1GWWPQJ",
    person: str | None = "42",
    timestamp: int = 1613063089,
    **data: Any,
) -> bytes:
    body = {
        "event_id": event_id,
        "object_type": object_type,
        "metric": metric,
        "timestamp": timestamp,
        "data": {
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "customer_id": person or "",
            "identifiers": {"id": person, "email": "ada@example.com", "cio_id": "d9c106000001"},
            "recipient": "ada@example.com",
            **data,
        },
    }
    return orjson.dumps(body)


def signed(body: bytes, *, ts: int | None = None, key: str = KEY) -> dict[str, str]:
    stamp = int(time.time()) if ts is None else ts
    return {
        "content-type": "application/json",
        "x-cio-timestamp": str(stamp),
        "x-cio-signature": sign_payload(key, stamp, body),
    }


class RecordingClient:
    """Duck-typed stand-in for ``opencdp.Client``: records suppress/identify calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._changed = threading.Condition()

    def suppress(self, person_id: str) -> None:
        self._record(("suppress", person_id))

    def identify(self, person_id: str, attributes: dict[str, Any]) -> None:
        self._record(("identify", person_id, attributes))

    def _record(self, call: tuple[Any, ...]) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[Any, ...]]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.calls) >= count, timeout):
                raise AssertionError(f"expected {count} calls, got {self.calls}")
            return list(self.calls)


class Recorder:
    """A user handler that remembers the events it saw and lets a test wait for them."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._changed = threading.Condition()

    def __call__(self, event: Any) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Any]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.events) >= count, timeout):
                raise AssertionError(f"expected {count} events, got {len(self.events)}")
            return list(self.events)


Serve = Callable[[Any], str]
"""Points a loopback server at a handler's endpoint and returns the server's URL."""
