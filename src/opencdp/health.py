"""A typed snapshot of delivery health, per destination and overall, and endpoints serving it.

Built on demand from the lanes (breaker, bucket, counters), the outbox's counts and the guards'
counters; nothing is tracked twice. Failure reasons pass through ``scrub`` so a server that
echoes a credential cannot leak it into a health page.

The endpoints are a plain ASGI app and a plain WSGI app rather than Starlette or Werkzeug
objects, so any host framework can mount them; ``render`` is the one place that turns a
snapshot into a status code and a JSON body, shared by both and by hand-written views
(Django, Flask). The bodies keep the reliability guide's shape: ``{"customerio":
{"circuit_state": ..., "failure_count": ..., "last_failure": ...}}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

from .errors import ConfigurationError
from .serving import lifespan

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from .dispatch import Dispatcher

__all__ = [
    "DestinationHealth",
    "Health",
    "HealthASGIApp",
    "HealthWSGIApp",
    "health_asgi_app",
    "health_wsgi_app",
    "render",
    "scrub",
    "snapshot",
]

Status = Literal["ok", "degraded", "down"]
logger = logging.getLogger("opencdp.health")


def scrub(text: str | None, secrets: Iterable[str | None]) -> str | None:
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return text


@dataclass(frozen=True, kw_only=True)
class DestinationHealth:
    name: str
    circuit_state: str
    failure_count: int
    last_failure: str | None
    last_failure_reason: str | None
    pending: int
    in_flight: int
    oldest_pending_age: float | None
    dead_letters: int
    dropped: dict[str, int]
    rate_limit: dict[str, object]
    requests: int
    delivered: int
    retried: int
    failed: int
    avg_latency_ms: float | None
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.circuit_state == "CLOSED"

    def to_dict(self) -> dict[str, Any]:
        return {
            "circuit_state": self.circuit_state,
            "failure_count": self.failure_count,
            "last_failure": self.last_failure,
            "last_failure_reason": self.last_failure_reason,
            "queue": {
                "pending": self.pending,
                "in_flight": self.in_flight,
                "oldest_pending_age": self.oldest_pending_age,
                "dead_letters": self.dead_letters,
                "dropped": dict(self.dropped),
            },
            "rate_limit": dict(self.rate_limit),
            "counters": {
                "requests": self.requests,
                "delivered": self.delivered,
                "retried": self.retried,
                "failed": self.failed,
                "by_kind": {k: dict(v) for k, v in self.by_kind.items()},
            },
            "avg_latency_ms": self.avg_latency_ms,
        }


@dataclass(frozen=True, kw_only=True)
class Health:
    status: Status
    destinations: dict[str, DestinationHealth]
    guards: dict[str, int] = field(default_factory=dict)
    idempotency_suppressed: int = 0
    taken_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "destinations": {k: v.to_dict() for k, v in self.destinations.items()},
            "guards": dict(self.guards),
            "idempotency_suppressed": self.idempotency_suppressed,
            "taken_at": self.taken_at,
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def snapshot(
    engine: Dispatcher,
    guards: dict[str, int] | None = None,
    idempotency_suppressed: int = 0,
    secrets: Iterable[str | None] = (),
) -> Health:
    now = time.time()
    secrets = tuple(secrets)
    queue = engine.outbox.stats(now)
    out: dict[str, DestinationHealth] = {}
    for name in engine.destinations:
        lane = engine.lanes.get(name)
        stats = queue.get(name)
        counters = lane.counters if lane is not None else None
        breaker = lane.breaker if lane is not None else None
        requests = counters.requests if counters else 0
        out[name] = DestinationHealth(
            name=name,
            circuit_state=breaker.state if breaker else "CLOSED",
            failure_count=breaker.failure_count if breaker else 0,
            last_failure=_iso(breaker.last_failure) if breaker else None,
            last_failure_reason=scrub(breaker.last_failure_reason, secrets) if breaker else None,
            pending=stats.pending if stats else 0,
            in_flight=stats.in_flight if stats else 0,
            oldest_pending_age=stats.oldest_pending_age if stats else None,
            dead_letters=stats.dead if stats else 0,
            dropped=dict(stats.dropped) if stats else {},
            rate_limit=lane.bucket.to_dict() if lane is not None else {},
            requests=requests,
            delivered=counters.delivered if counters else 0,
            retried=counters.retried if counters else 0,
            failed=counters.dead if counters else 0,
            avg_latency_ms=(
                round(counters.latency_total / requests * 1000, 2)
                if counters and requests else None
            ),
            by_kind=({k: dict(v) for k, v in counters.by_kind.items() if v}
                     if counters else {}),
        )
    opencdp = out.get("opencdp")
    status: Status = "ok"
    if opencdp is not None and not opencdp.healthy:
        status = "down"
    elif any(not d.healthy for d in out.values()):
        status = "degraded"
    return Health(
        status=status,
        destinations=out,
        guards=dict(guards or {}),
        idempotency_suppressed=idempotency_suppressed,
        taken_at=now,
    )


# --- HTTP -----------------------------------------------------------------------------------

class _HasHealth(Protocol):
    def health(self) -> Health: ...


HealthSource = _HasHealth | Callable[[], Health]
"""A ``Client``/``AsyncClient`` (anything with a ``health()`` method) or a zero-argument
callable returning a ``Health``."""


def render(health: Health, destination: str | None = None) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body for ``GET /health`` (``destination=None``) or
    ``GET /health/<destination>``.

    A destination answers 200 while its breaker is CLOSED and 503 otherwise (OPEN or
    HALF_OPEN: still proving it recovered). The overall check answers 503 only when OpenCDP's
    breaker is not CLOSED: a Customer.io outage degrades the service but loses nothing, since
    its messages wait in the outbox. An unknown or unconfigured destination is a 404.
    """
    if destination is None:
        body: dict[str, Any] = {"status": health.status}
        body.update((name, d.to_dict()) for name, d in health.destinations.items())
        body["guards"] = dict(health.guards)
        body["idempotency_suppressed"] = health.idempotency_suppressed
        body["taken_at"] = _iso(health.taken_at) if health.taken_at else None
        return (503 if health.status == "down" else 200), body
    dest = health.destinations.get(destination)
    if dest is None:
        known = ", ".join(sorted(health.destinations)) or "none"
        return 404, {"error": "not_found",
                     "message": f"no destination {destination!r} (configured: {known})"}
    return (200 if dest.healthy else 503), {destination: dest.to_dict()}


def _reader(source: HealthSource) -> Callable[[], Health]:
    method = getattr(source, "health", None)
    if callable(method):
        return method  # type: ignore[no-any-return]
    if callable(source):
        return source
    raise ConfigurationError(
        "a health endpoint needs a Client, an AsyncClient or a callable returning Health, "
        f"not {type(source).__name__}"
    )


_Route = tuple[Literal["overall", "destination", "missing"], str | None]


def _route(path: str) -> _Route:
    """Match a path relative to the mount point.

    ``health`` and ``health/<destination>`` are served wherever the app is mounted; mounted at
    ``.../health`` itself, ``/`` and ``/<destination>`` are the same pages.
    """
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "health":
        parts = parts[1:]
    if not parts:
        return "overall", None
    if len(parts) == 1:
        return "destination", parts[0]
    return "missing", None


def _answer(read: Callable[[], Health], method: str, path: str) -> tuple[int, bytes, list[
        tuple[str, str]]]:
    headers = [("content-type", "application/json"), ("cache-control", "no-store")]
    if method not in ("GET", "HEAD"):
        body = orjson.dumps({"error": "method_not_allowed"})
        return 405, body, [*headers, ("allow", "GET, HEAD")]
    kind, name = _route(path)
    if kind == "missing":
        return 404, orjson.dumps({"error": "not_found"}), headers
    try:
        health = read()
        if not isinstance(health, Health):
            raise TypeError(f"the health source returned {type(health).__name__}, not Health")
    except Exception as exc:
        # The type only, here and in the log: a storage error's text can carry a credential.
        logger.error("health snapshot failed: %s", type(exc).__name__)
        body = orjson.dumps({"status": "unknown",
                             "error": f"health snapshot failed: {type(exc).__name__}"})
        return 503, body, headers
    status, payload = render(health, name)
    return status, orjson.dumps(payload), headers


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _relative(scope: Scope) -> str:
    # Starlette and most ASGI servers keep the mount prefix in ``path`` and name it in
    # ``root_path``; older routers strip it. Both end up relative here.
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "") or ""
    if root and path.startswith(root):
        path = path[len(root):]
    return path


class HealthASGIApp:
    """ASGI endpoint serving ``GET /health`` and ``GET /health/<destination>``.

    The snapshot is taken on a worker thread: a durable outbox's counts are a query, and the
    host's event loop must not wait on it.
    """

    def __init__(self, source: HealthSource) -> None:
        self._read = _reader(source)

    def __repr__(self) -> str:
        return f"HealthASGIApp({self._read!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        status, body, headers = await asyncio.to_thread(
            _answer, self._read, method, _relative(scope)
        )
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


class HealthWSGIApp:
    """WSGI endpoint serving ``GET /health`` and ``GET /health/<destination>``; paths are
    read from ``PATH_INFO``, which is already relative to the mount point (``SCRIPT_NAME``)."""

    def __init__(self, source: HealthSource) -> None:
        self._read = _reader(source)

    def __repr__(self) -> str:
        return f"HealthWSGIApp({self._read!r})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        status, body, headers = _answer(self._read, method, environ.get("PATH_INFO", "/"))
        phrase = HTTPStatus(status).phrase
        start_response(f"{status} {phrase}", [*headers, ("content-length", str(len(body)))])
        return [b"" if method == "HEAD" else body]


def health_asgi_app(source: HealthSource) -> HealthASGIApp:
    """Health endpoints as an ASGI app (FastAPI/Starlette ``mount``, or uvicorn directly).

    ``source`` is a ``Client``/``AsyncClient`` or a zero-argument callable returning
    ``Health``; it is read on every request.
    """
    return HealthASGIApp(source)


def health_wsgi_app(source: HealthSource) -> HealthWSGIApp:
    """Health endpoints as a WSGI app (mount beside Flask or Django, or serve with gunicorn)."""
    return HealthWSGIApp(source)
