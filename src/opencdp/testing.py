"""Test support for applications that use opencdp: a mock transport, capture, the sandbox.

Nothing here imports pytest, so it works under any test runner. The pytest fixtures live in
``opencdp.integrations.pytest_plugin``, which pytest loads on its own when opencdp is
installed (``opencdp_sandbox``, ``opencdp_client``, ``opencdp_capture``,
``opencdp_async_capture``).

Capture is a real client whose transport answers instead of the network: every check that
production runs still runs (the call-time guards, and the deep inspection that dead-letters
what the platforms would refuse), with any queue, dual-writing by default, and what the
engine actually puts on the wire is decoded back into one ``Captured`` record per call.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .client import AsyncClient, Client
from .config import BreakerConfig, CustomerIO, RetryConfig
from .destinations.opencdp import SUPPORTED_KINDS
from .outbox.base import DeadLetter
from .wire import Failure, Request, Response, Transport

__all__ = [
    "NO_BACKOFF",
    "AsyncCapture",
    "Capture",
    "Captured",
    "Failure",
    "MockTransport",
    "Request",
    "Response",
    "Transport",
    "capture",
    "capture_options",
    "sandbox_client",
    "sandbox_options",
]

NO_BACKOFF: dict[str, Any] = {
    "retry": RetryConfig(base_delay=0.0, max_delay=0.0, max_attempts=5),
    "breaker": BreakerConfig(reset_timeout=0.0),
}
"""Options that remove waiting from retries and breakers, so tests never sleep."""

Handler = Callable[[Request], "Response | Failure | Awaitable[Response | Failure]"]


class MockTransport:
    """A transport that hands every request to ``handler`` instead of the network.

    Pass it as ``Client(transport=MockTransport(handler))``. ``handler`` takes a ``Request``
    and returns (or, if it is async, resolves to) a ``Response`` or a ``Failure``, as httpx's
    ``MockTransport`` does. A handler that raises becomes a ``Failure`` the engine retries,
    so a bug in a test's handler shows up as undelivered messages, never as a dead engine.
    """

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError("MockTransport needs a callable handler(request) -> Response")
        self.handler = handler
        self.closed = False

    def __repr__(self) -> str:
        return f"MockTransport({self.handler!r})"

    async def send(self, request: Request, **kwargs: Any) -> Response | Failure:
        """Hand ``request`` to the handler (sync or async) and return its ``Response`` or
        ``Failure``; a handler that raises, or returns anything else, fails the request with
        the reason ``internal``."""
        try:
            result = self.handler(request)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            return Failure(f"MockTransport handler raised {type(exc).__name__}: {exc}",
                           "internal")
        if not isinstance(result, (Response, Failure)):
            return Failure(f"MockTransport handler returned {type(result).__name__}, "
                           "not a Response or Failure", "internal")
        return result

    async def aclose(self) -> None:
        """Mark the transport closed (``closed`` becomes True); nothing else to release."""
        self.closed = True


@dataclass(frozen=True)
class Captured:
    """One call as the platforms received it.

    ``kind`` is the client method's message kind (``identify``, ``track``,
    ``track_anonymous``, ``add_device``, ``delete_device``, ``suppress``, ``unsuppress``,
    ``delete``, ``merge``); ``destinations`` names where it arrived (``opencdp``,
    ``customerio``); ``wire`` holds each destination's decoded request body for it.
    """

    kind: str
    identifier: str
    name: str | None
    data: dict[str, Any]
    timestamp: int | None
    event_id: str
    destinations: tuple[str, ...]
    wire: dict[str, dict[str, Any]] = field(repr=False, compare=False)


_CIO_ACTIONS = {"event": "track"}


def _gateway(request: Request, body: dict[str, Any]) -> dict[str, Any] | None:
    """A gateway call read from its body; which calls the gateway takes is its module's say
    (``SUPPORTED_KINDS``), and a view arrives as the track it is sent as."""
    if len(request.items) != 1 or request.items[0].message.kind not in SUPPORTED_KINDS:
        return None
    if "deviceId" in body:
        kind = "add_device"
        data = {k: v for k, v in body.items() if k not in ("identifier", "deviceId")}
        name = body.get("deviceId")
    else:
        kind = "track" if "eventName" in body else "identify"
        data = dict(body.get("properties") or {})
        name = body.get("eventName")
    return {"kind": kind, "identifier": body.get("identifier"), "name": name, "data": data,
            "timestamp": None}


def _cio_operation(op: dict[str, Any]) -> dict[str, Any]:
    kind = _CIO_ACTIONS.get(op.get("action", ""), op.get("action", ""))
    who = op.get("identifiers") or {}
    identifier = who.get("id") or (f"cio_{who['cio_id']}" if "cio_id" in who else None)
    name: Any = op.get("name")
    data: dict[str, Any] = dict(op.get("attributes") or {})
    if kind == "merge":
        identifier = next(iter((op.get("primary") or {}).values()), None)
        data = {"primary": op.get("primary"), "secondary": op.get("secondary")}
    elif kind in ("add_device", "delete_device"):
        device = op.get("device") or {}
        name = device.get("token")
        data = {k: v for k, v in device.items() if k != "token"}
    return {"kind": kind, "identifier": identifier, "name": name, "data": data,
            "timestamp": op.get("timestamp")}


def _decode(request: Request) -> list[dict[str, Any]]:
    """The calls in one request, in the order of ``request.items``."""
    try:
        body = orjson.loads(request.body or b"null")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(body, dict):
        return []
    if request.service == "gateway":
        one = _gateway(request, body)
        return [one] if one else []
    if request.path == "/api/v2/batch":
        return [_cio_operation(op) for op in body.get("batch") or [] if isinstance(op, dict)]
    if request.path == "/api/v1/events":
        return [{"kind": "track_anonymous", "identifier": body.get("anonymous_id"),
                 "name": body.get("name"), "data": dict(body.get("data") or {}),
                 "timestamp": body.get("timestamp")}]
    # One message per request elsewhere (metrics, unsubscribes, segments): the body as sent.
    return [{"kind": None, "identifier": None, "name": None, "data": body, "timestamp": None}
            for _ in request.items]


class _Recorder:
    """Decodes what reaches the transport and answers as the platforms would on success."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[int, dict[str, Any]] = {}
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        decoded = _decode(request)
        with self._lock:
            self.requests.append(request)
            for item, call in zip(request.items, decoded, strict=False):
                message = item.message
                destination = "opencdp" if request.service == "gateway" else "customerio"
                entry = self._calls.setdefault(message.id, {
                    "kind": message.kind, "identifier": call["identifier"] or message.identifier,
                    "name": call["name"], "data": call["data"], "timestamp": message.timestamp,
                    "event_id": message.ulid, "wire": {}})
                entry["wire"].setdefault(destination, call)
        return Response(200, b"{}", {"content-type": "application/json"})

    def messages(self) -> list[Captured]:
        with self._lock:
            ordered = sorted(self._calls.items())
        return [
            Captured(c["kind"], c["identifier"], c["name"], c["data"], c["timestamp"],
                     c["event_id"], tuple(d for d in ("opencdp", "customerio") if d in c["wire"]),
                     dict(c["wire"]))
            for _, c in ordered
        ]

    def clear(self) -> None:
        """Forget what was recorded so far."""
        with self._lock:
            self._calls.clear()
            self.requests.clear()


def capture_options(**options: Any) -> dict[str, Any]:
    """The options a capturing client is built from: test credentials, dual-write on, no
    atexit hook, no backoff; ``options`` win (``queue=``, ``strict=``, ``transport=`` ...)."""
    settings: dict[str, Any] = {
        "cdp_api_key": "capture-test-key",
        "send_to_customer_io": True,
        "customer_io": CustomerIO("capture-site", "capture-track-key",
                                  app_api_key="capture-app-key"),
        "register_atexit": False,
        **NO_BACKOFF,
    }
    settings.update(options)
    return settings


class Capture:
    """A ``Client`` that delivers into memory: ``cap.client`` is what the code under test
    gets, ``cap.messages`` what the platforms would have stored, one record per call.

    ``messages`` flushes first, so it is complete for every call made before it. What
    production would dead-letter (NaN, objects the encoder refuses, ...) is not in
    ``messages``; it is in ``cap.dead_letters()`` with its reason.
    """

    def __init__(self, **options: Any) -> None:
        self._recorder = _Recorder()
        options.setdefault("transport", MockTransport(self._recorder))
        self.client = Client(**capture_options(**options))

    def __repr__(self) -> str:
        return f"Capture({self.client!r})"

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every call made so far is delivered or dead-lettered; False on timeout."""
        return self.client.flush(timeout)

    @property
    def messages(self) -> list[Captured]:
        """Flush, then one ``Captured`` per call, in call order."""
        self.client.flush(10.0)
        return self._recorder.messages()

    @property
    def requests(self) -> list[Request]:
        """The raw requests, for assertions on paths, headers or bodies."""
        return list(self._recorder.requests)

    def dead_letters(self, destination: str | None = None) -> list[DeadLetter]:
        """What production would have dead-lettered, with its reason (all destinations, or
        ``destination``'s: ``"opencdp"``, ``"customerio"``)."""
        self.client.flush(10.0)
        return self.client.dead_letters(destination)

    def clear(self) -> None:
        """Forget the messages and requests recorded so far (the client goes on)."""
        self.client.flush(10.0)
        self._recorder.clear()

    def close(self) -> None:
        """Close the client, delivering what is queued (also the context manager's exit)."""
        self.client.close(timeout=10.0)

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCapture:
    """``Capture`` for code that takes an ``AsyncClient``: ``await cap.flush()``, then read
    ``cap.messages`` (it does not flush, since a property cannot await)."""

    def __init__(self, **options: Any) -> None:
        self._recorder = _Recorder()
        options.setdefault("transport", MockTransport(self._recorder))
        self.client = AsyncClient(**capture_options(**options))

    def __repr__(self) -> str:
        return f"AsyncCapture({self.client!r})"

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every call made so far is delivered or dead-lettered; False on timeout."""
        return await self.client.flush(timeout)

    @property
    def messages(self) -> list[Captured]:
        """One ``Captured`` per call, in call order (``await cap.flush()`` first)."""
        return self._recorder.messages()

    @property
    def requests(self) -> list[Request]:
        """The raw requests the client made, each platform's, in order."""
        return list(self._recorder.requests)

    def dead_letters(self, destination: str | None = None) -> list[DeadLetter]:
        """What production would have dead-lettered, with its reason."""
        return self.client.dead_letters(destination)

    def clear(self) -> None:
        """Forget the messages and requests recorded so far (the client goes on)."""
        self._recorder.clear()

    async def aclose(self) -> None:
        """Close the client, delivering what is queued (also ``async with``'s exit)."""
        await self.client.close(timeout=10.0)

    def close(self) -> None:
        """Close from synchronous code (a fixture's teardown), even inside a running loop."""
        worker = threading.Thread(target=asyncio.run, args=(self.aclose(),))
        worker.start()
        worker.join()

    async def __aenter__(self) -> AsyncCapture:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def capture(**options: Any) -> Capture:
    """Record what would be sent: ``cap = capture(); code_under_test(cap.client);
    assert cap.messages[0].name == "signed_up"``."""
    return Capture(**options)


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
