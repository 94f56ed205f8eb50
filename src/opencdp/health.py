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
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

from . import clock, registry
from .errors import ConfigurationError
from .holding import HOLDING
from .outbox.base import QueueStats
from .serving import lifespan

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from .snapshot import EngineSnapshot, LaneSnapshot

__all__ = [
    "DestinationHealth",
    "Health",
    "HealthASGIApp",
    "HealthWSGIApp",
    "health_asgi_app",
    "health_wsgi_app",
    "render",
    "snapshot",
    "stall_reason",
]

Status = Literal["ok", "degraded", "down"]
logger = logging.getLogger("opencdp.health")

STALL_AFTER = 30.0
"""Seconds without progress, while messages wait at least as long, after which a destination
is ``stalled`` whatever the cause (retries that never succeed, a queue that cannot lease)."""
STALL_ERRORS = 3
"""Failed lane turns in a row (queue errors, internal errors) that make it ``stalled`` at once."""


def stall_reason(lane: LaneSnapshot, stats: QueueStats) -> str | None:
    """Why a destination makes no progress, or None: the one progress rule (see the module
    docstring). Each cause names itself; the text is already scrubbed. A held destination
    sends nothing on purpose: its waiting copies are not a stall."""
    if lane.hold in HOLDING:
        return None
    if lane.errors_since_progress >= STALL_ERRORS:
        return (f"{lane.errors_since_progress} failed turns in a row since the last delivery: "
                f"{lane.last_error or 'internal error'}")
    if stats.spilled and (stats.spilled_oldest_age or 0.0) >= STALL_AFTER:
        return (f"{stats.spilled} message(s) spilled {stats.spilled_oldest_age:.0f} s ago "
                "are not taken back by the queue")
    waited = stats.oldest_pending_age or 0.0
    if stats.pending and waited >= STALL_AFTER and lane.since_progress >= STALL_AFTER:
        last = f"; last failure: {lane.last_failure_reason}" if lane.last_failure_reason else ""
        return (f"nothing delivered for {lane.since_progress:.0f} s while {stats.pending} "
                f"message(s) wait (oldest {waited:.0f} s){last}")
    return None


@dataclass(frozen=True, kw_only=True)
class DestinationHealth:
    """One destination's state (``ok``, ``degraded``, ``failing``, ``stalled``, ``held``,
    ``disabled``), with the breaker, the queue and the counters behind it."""

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
    failing: bool = False
    """Every recent request was refused (credentials, region) or all its messages
    dead-lettered: nothing gets through until the configuration changes."""
    disabled: bool = False
    """Configured but switched off (Customer.io given without dual-write)."""
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    stalled: str | None = None
    """Why nothing moves (``stall_reason``), or None while the destination makes progress."""
    spilled: int = 0
    spilled_oldest_age: float | None = None
    held: bool = False
    """In hold mode and held: copies queue and nothing is sent (``pending`` and
    ``in_flight`` are the held copies; ``held_count`` sums them)."""
    held_since: float | None = None
    """Wall-clock seconds when the hold began (of a held or finished hold)."""
    held_purged: int = 0
    """Held copies this client purged: older than ``hold_retention``, or after finish."""

    @property
    def held_count(self) -> int:
        return self.pending + self.in_flight if self.held else 0

    @property
    def state(self) -> str:
        """``ok``, ``disabled``, ``held``, ``failing``, ``stalled``, or the breaker's state
        in lower case."""
        if self.disabled:
            return "disabled"
        if self.held:
            return "held"
        if self.failing:
            return "failing"
        if self.stalled is not None:
            return "stalled"
        return "ok" if self.circuit_state == "CLOSED" else self.circuit_state.lower()

    @property
    def healthy(self) -> bool:
        return self.disabled or self.held or (self.circuit_state == "CLOSED"
                                              and not self.failing and self.stalled is None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, as ``/health/<destination>`` serves it."""
        return {
            "state": self.state,
            "circuit_state": self.circuit_state,
            "failure_count": self.failure_count,
            "last_failure": self.last_failure,
            "last_failure_reason": self.last_failure_reason,
            "stalled": self.stalled,
            "queue": {
                "pending": self.pending,
                "in_flight": self.in_flight,
                "spilled": self.spilled,
                "spilled_oldest_age": self.spilled_oldest_age,
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
            "held": None if not self.held else {
                "count": self.held_count,
                "oldest_age": self.oldest_pending_age,
                "since": _iso(self.held_since),
                "purged": self.held_purged,
            },
        }


@dataclass(frozen=True, kw_only=True)
class Health:
    """The client's health: an overall ``status`` and each destination's, as ``health()``
    returns it and ``/health`` serves it (``to_dict``)."""

    status: Status
    destinations: dict[str, DestinationHealth]
    guards: dict[str, int] = field(default_factory=dict)
    idempotency_suppressed: int = 0
    taken_at: float = 0.0
    internal_errors: dict[str, int] = field(default_factory=dict)
    """Errors the engine contained, by code (each logged once per cause per minute)."""
    restarts: int = 0
    intake_failures: int = 0
    """Calls whose message could not be queued anywhere (raised or logged OCDP307)."""
    queue_error: str | None = None
    """Why the queue's counts could not be read (they show as 0), if they could not."""
    not_sent: int = 0
    """Calls and sends accepted and checked but not delivered, because ``send=False``."""
    dropped_by_hook: dict[str, int] = field(default_factory=dict)
    """Messages ``before_send`` dropped, never queued: ``returned_none`` (its decision),
    ``raised`` and ``invalid`` (OCDP344)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, as ``/health`` serves it."""
        return {
            "status": self.status,
            "destinations": {k: v.to_dict() for k, v in self.destinations.items()},
            "guards": dict(self.guards),
            "idempotency_suppressed": self.idempotency_suppressed,
            "internal_errors": dict(self.internal_errors),
            "restarts": self.restarts,
            "intake_failures": self.intake_failures,
            "queue_error": self.queue_error,
            "not_sent": self.not_sent,
            "dropped_by_hook": dict(self.dropped_by_hook),
            "taken_at": self.taken_at,
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def snapshot(
    engine: EngineSnapshot,
    queue: Mapping[str, QueueStats],
    *,
    disabled: Iterable[str] = (),
    guards: dict[str, int] | None = None,
    idempotency_suppressed: int = 0,
    intake_failures: int = 0,
    queue_error: str | None = None,
    not_sent: int = 0,
    scrub_text: Callable[[str], str] = lambda text: text,
) -> Health:
    """Health from the engine's snapshot and the queue's counts; ``disabled`` lists the
    destinations that are configured but switched off."""
    now = clock.wall()
    out: dict[str, DestinationHealth] = {}
    for name, lane in engine.lanes.items():
        stats = queue.get(name) or QueueStats()
        counters = lane.counters
        requests = counters.requests
        holding = lane.hold in HOLDING
        out[name] = DestinationHealth(
            name=name,
            circuit_state=lane.circuit_state,
            failure_count=lane.failure_count,
            last_failure=_iso(lane.last_failure),
            last_failure_reason=(scrub_text(lane.last_failure_reason)
                                 if lane.last_failure_reason else None),
            pending=stats.pending,
            in_flight=stats.in_flight,
            oldest_pending_age=stats.oldest_pending_age,
            dead_letters=stats.dead,
            dropped=dict(stats.dropped),
            rate_limit=dict(lane.rate_limit),
            requests=requests,
            delivered=counters.delivered,
            retried=counters.retried,
            failed=counters.dead,
            avg_latency_ms=(round(counters.latency_total / requests * 1000, 2)
                            if requests else None),
            failing=lane.failing and not holding,
            by_kind={k: dict(v) for k, v in counters.by_kind.items() if v},
            stalled=(f"the queue cannot be read: {queue_error}" if queue_error is not None
                     else stall_reason(lane, stats)),
            spilled=stats.spilled,
            spilled_oldest_age=stats.spilled_oldest_age,
            held=holding and lane.hold != "finished",
            disabled=lane.hold == "finished",
            held_since=lane.hold_since if holding else None,
            held_purged=lane.hold_purged,
        )
    for name in disabled:
        out[name] = DestinationHealth(
            name=name, circuit_state="CLOSED", failure_count=0, last_failure=None,
            last_failure_reason=None, pending=0, in_flight=0, oldest_pending_age=None,
            dead_letters=0, dropped={}, rate_limit={}, requests=0, delivered=0, retried=0,
            failed=0, avg_latency_ms=None, disabled=True,
        )
    active = [d for d in out.values() if not d.disabled]
    primary = out.get(registry.primary())
    status: Status = "ok"
    if primary is not None and not primary.healthy:
        status = "down"
    elif queue_error is not None or any(not d.healthy for d in active):
        status = "degraded"
    return Health(
        status=status,
        destinations=out,
        guards=dict(guards or {}),
        idempotency_suppressed=idempotency_suppressed,
        taken_at=now,
        internal_errors=dict(engine.internal_errors),
        restarts=engine.restarts,
        intake_failures=intake_failures,
        queue_error=queue_error,
        not_sent=not_sent,
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

    A destination answers 200 while its breaker is CLOSED and it makes progress, and 503
    otherwise (OPEN or HALF_OPEN: still proving it recovered; ``stalled``; ``failing``). The
    overall check answers 503 only when OpenCDP is not healthy, or when any destination is
    ``failing`` or ``stalled`` (nothing moves until someone acts): a Customer.io outage
    degrades the service but loses nothing, since its messages wait in the outbox, while a
    destination refusing everything (wrong key, wrong region) dead-letters every message
    until someone acts. A held destination (hold mode) answers 200: sending nothing is what
    it was asked to do. An unknown or unconfigured destination is a 404.
    """
    if destination is None:
        body: dict[str, Any] = {"status": health.status}
        body.update((name, d.to_dict()) for name, d in health.destinations.items())
        body["guards"] = dict(health.guards)
        body["idempotency_suppressed"] = health.idempotency_suppressed
        body["taken_at"] = _iso(health.taken_at) if health.taken_at else None
        stuck = any(d.failing or d.stalled for d in health.destinations.values())
        return (503 if health.status == "down" or stuck else 200), body
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
