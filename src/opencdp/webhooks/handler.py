"""Receive Customer.io reporting webhooks: verify, refuse replays, then dispatch.

Receiving and dispatching are two steps on purpose. Customer.io waits 4 s for an answer and
retries anything else for seven days, holding back every later event meanwhile, so the endpoints
answer as soon as a request is verified, parsed and de-duplicated (:meth:`receive`), and run the
built-ins and user handlers afterwards (:meth:`dispatch`). Nothing a handler does can change the
answer: its exceptions are logged, because a 5xx would only bring the same event back.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import orjson

from ..errors import ConfigurationError, ValidationError
from .events import METRICS, WebhookEvent, parse_event
from .replay import MemoryReplayStore, ReplayStore
from .signature import _key_bytes, check_signature

__all__ = [
    "BOUNCE_ATTRIBUTES",
    "SPAM_ATTRIBUTES",
    "SuppressionClient",
    "WebhookHandler",
    "WebhookResponse",
]

logger = logging.getLogger("opencdp.webhooks")

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MAX_BODY = 1 << 20
DEFAULT_REPLAY_TTL = 7 * 24 * 3600.0
SLOW_DISPATCH = 2.0
SIGNING_KEY_ENV = "CUSTOMERIO_WEBHOOK_SIGNING_KEY"

BOUNCE_ATTRIBUTES = ("email_bounced", "email_bounced_at")
"""Attributes set on a person through ``identify`` when their email hard-bounced."""
SPAM_ATTRIBUTES = ("email_spam_complaint", "email_spam_complaint_at")
"""Attributes set on a person through ``identify`` when they marked an email as spam."""


class SuppressionClient(Protocol):
    """What the built-ins need from a client, e.g. ``opencdp.Client``; results may be awaitable."""

    def suppress(self, person_id: str, /) -> object:
        """Suppress the person (a spam complaint or a hard bounce)."""
        ...

    def identify(self, person_id: str, attributes: dict[str, Any], /) -> object:
        """Set attributes on the person (an unsubscribe)."""
        ...


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """The HTTP answer to one webhook request.

    ``event`` is set only when the event was accepted and still has to be dispatched.
    """

    status: int
    payload: Mapping[str, object]
    event: WebhookEvent | None = None
    headers: tuple[tuple[str, str], ...] = field(
        default=(("content-type", "application/json"),)
    )

    @property
    def body(self) -> bytes:
        return orjson.dumps(self.payload)


_Action = tuple[str, Callable[..., object], tuple[object, ...]]


class WebhookHandler:
    """Verifies, de-duplicates and dispatches Customer.io reporting webhooks.

    Built-ins (they need ``client``; each can be switched off):

    - ``email_bounced``: when ``mark_on_bounce``,
      ``client.identify(person, {"email_bounced": True, "email_bounced_at": ts})``, then
      ``client.suppress(person)`` when ``suppress_on_bounce``;
    - ``email_spammed`` (a spam complaint): the same with ``email_spam_complaint`` /
      ``email_spam_complaint_at``, switched by ``mark_on_spam`` and ``suppress_on_spam``;
    - ``alert(event)`` for every event whose name is in ``alert_on``.

    The person is ``resolve_person(event)``, by default ``event.person_id``; events without one
    are logged and skipped by the built-ins. User handlers registered with :meth:`on` run after
    the built-ins, in registration order; sync or async, exceptions logged and contained.
    """

    def __init__(
        self,
        signing_key: str,
        *,
        client: SuppressionClient | None = None,
        suppress_on_bounce: bool = True,
        suppress_on_spam: bool = True,
        mark_on_bounce: bool = True,
        mark_on_spam: bool = True,
        alert: Callable[[WebhookEvent], object] | None = None,
        alert_on: Iterable[str] = ("email_bounced", "email_spammed"),
        resolve_person: Callable[[WebhookEvent], str | None] | None = None,
        tolerance: float | None = 300,
        replay_store: ReplayStore | None = None,
        replay_ttl: float = DEFAULT_REPLAY_TTL,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = _key_bytes(signing_key)
        if tolerance is not None and tolerance < 0:
            raise ConfigurationError("tolerance must be None or >= 0 seconds")
        if replay_ttl <= 0:
            raise ConfigurationError("replay_ttl must be > 0 seconds")
        if max_body_bytes < 1:
            raise ConfigurationError("max_body_bytes must be >= 1")
        if isinstance(alert_on, str):
            raise ConfigurationError("alert_on must be a collection of event names")
        self.client = client
        self.suppress_on_bounce = suppress_on_bounce
        self.suppress_on_spam = suppress_on_spam
        self.mark_on_bounce = mark_on_bounce
        self.mark_on_spam = mark_on_spam
        self.alert = alert
        self.alert_on = frozenset(alert_on)
        self.resolve_person = resolve_person
        self.tolerance = tolerance
        self.replay_store: ReplayStore = (
            MemoryReplayStore() if replay_store is None else replay_store
        )
        self.replay_ttl = replay_ttl
        self.max_body_bytes = max_body_bytes
        self._clock = clock
        self._handlers: list[tuple[str | None, str | None, Callable[[WebhookEvent], object]]] = []
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **options: Any
    ) -> WebhookHandler:
        """Build a handler with the key from ``CUSTOMERIO_WEBHOOK_SIGNING_KEY``."""
        env = os.environ if environ is None else environ
        key = env.get(SIGNING_KEY_ENV, "").strip()
        if not key:
            raise ConfigurationError(f"environment variable {SIGNING_KEY_ENV} is missing or empty")
        return cls(key, **options)

    def __repr__(self) -> str:
        client = type(self.client).__name__ if self.client is not None else None
        return (
            f"WebhookHandler(client={client}, handlers={len(self._handlers)}, "
            f"tolerance={self.tolerance}, replay_store={type(self.replay_store).__name__})"
        )

    # -- registration ------------------------------------------------------------------------

    def on(self, object_type_or_metric: str, metric: str | None = None) -> Callable[[F], F]:
        """Register a handler: ``on("email", "bounced")``, ``on("bounced")`` (any channel),
        ``on("email", "*")`` or ``on("*")`` (every event).

        Names are checked against the metrics Customer.io documents, so a typo (or the
        non-existent ``complained``: spam complaints are ``spammed``) fails here, not silently.
        """
        if metric is None:
            object_type, metric = None, object_type_or_metric
        else:
            object_type = object_type_or_metric
        if object_type == "*":
            object_type = None
        if metric == "*":
            metric = None
        _check_names(object_type, metric)

        def register(fn: F) -> F:
            if not callable(fn):
                raise ValidationError("a webhook handler must be callable", field="handler")
            with self._lock:
                self._handlers.append((object_type, metric, fn))
            return fn

        return register

    # -- receiving ---------------------------------------------------------------------------

    def receive(
        self, headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes
    ) -> WebhookResponse:
        """Verify and parse one request and refuse replays; run no handler.

        ``headers`` may be any mapping or list of pairs (names in any case); ``body`` is the raw
        request body. Answers 413 (too large), 401 (signature), 400 (payload), 200 ``duplicate``
        or 200 ``accepted`` with ``event`` set for :meth:`dispatch`.
        """
        if len(body) > self.max_body_bytes:
            return self.too_large()
        found = _lower_headers(headers)
        failure = check_signature(
            self._key,
            found.get("x-cio-timestamp"),
            body,
            found.get("x-cio-signature"),
            tolerance=self.tolerance,
            now=self._clock(),
        )
        if failure is not None:
            logger.warning("customer.io webhook refused: %s", failure.value)
            self._count(f"rejected_{failure.value}")
            return WebhookResponse(401, {"error": "invalid_signature", "reason": failure.value})
        try:
            event = parse_event(body)
        except ValidationError as exc:
            logger.warning("customer.io webhook refused: bad payload (%s)", exc)
            self._count("rejected_payload")
            return WebhookResponse(
                400, {"error": "invalid_payload", "field": exc.field or "", "message": str(exc)}
            )
        try:
            first = self.replay_store.add(event.event_id, self.replay_ttl)
        except Exception:
            # Failing open: the signature window still bounds replays, and a 5xx would stall
            # every later event behind this one for up to seven days.
            logger.exception("webhook replay store failed; accepting event %s", event.event_id)
            first = True
        if not first:
            logger.info("customer.io webhook %s is a duplicate", event.event_id)
            self._count("duplicate")
            return WebhookResponse(200, {"status": "duplicate", "event_id": event.event_id})
        self._count("accepted")
        return WebhookResponse(200, {"status": "accepted", "event_id": event.event_id}, event)

    def too_large(self) -> WebhookResponse:
        """The 413 answer, for endpoints that refuse a body before reading all of it."""
        self._count("rejected_too_large")
        return WebhookResponse(413, {"error": "payload_too_large", "limit": self.max_body_bytes})

    def handle(
        self, headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes
    ) -> WebhookResponse:
        """:meth:`receive`, then :meth:`dispatch` before returning (for framework views)."""
        response = self.receive(headers, body)
        if response.event is not None:
            self.dispatch(response.event)
        return response

    async def handle_async(
        self, headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes
    ) -> WebhookResponse:
        """:meth:`receive` in a worker thread, then :meth:`dispatch_async`."""
        response = await asyncio.to_thread(self.receive, headers, body)
        if response.event is not None:
            await self.dispatch_async(response.event)
        return response

    # -- dispatching -------------------------------------------------------------------------

    def dispatch(self, event: WebhookEvent) -> None:
        """Run the built-ins and matching handlers in this thread; never raises.

        Awaitable results (an async handler or client) are run to completion with
        ``asyncio.run``, so call this only from a thread without a running event loop.
        """
        started = time.monotonic()
        for label, fn, args in self._plan(event):
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    asyncio.run(_wait(result))
            except Exception:
                self._failed(label, event)
        self._timed(event, started)

    async def dispatch_async(self, event: WebhookEvent) -> None:
        """Run the built-ins and matching handlers; sync ones in a worker thread. Never raises."""
        started = time.monotonic()
        for label, fn, args in self._plan(event):
            try:
                if inspect.iscoroutinefunction(fn):
                    await fn(*args)
                else:
                    result = await asyncio.to_thread(fn, *args)
                    if inspect.isawaitable(result):
                        await result
            except Exception:
                self._failed(label, event)
        self._timed(event, started)

    def stats(self) -> dict[str, int]:
        """Counters: ``accepted``, ``duplicate``, ``rejected_<reason>``, ``handler_errors``."""
        with self._lock:
            return dict(self._counts)

    def _plan(self, event: WebhookEvent) -> list[_Action]:
        plan: list[_Action] = []
        name = event.name
        if name == "email_bounced":
            self._builtin(
                plan, event, BOUNCE_ATTRIBUTES, self.mark_on_bounce, self.suppress_on_bounce
            )
        elif name == "email_spammed":
            self._builtin(plan, event, SPAM_ATTRIBUTES, self.mark_on_spam, self.suppress_on_spam)
        if self.alert is not None and name in self.alert_on:
            plan.append(("alert", self.alert, (event,)))
        with self._lock:
            handlers = list(self._handlers)
        for object_type, metric, fn in handlers:
            if object_type not in (None, event.object_type) or metric not in (None, event.metric):
                continue
            plan.append((getattr(fn, "__qualname__", type(fn).__name__), fn, (event,)))
        return plan

    def _builtin(
        self,
        plan: list[_Action],
        event: WebhookEvent,
        attributes: tuple[str, str],
        mark: bool,
        suppress: bool,
    ) -> None:
        client = self.client
        if client is None or not (mark or suppress):
            return
        try:
            person = self.resolve_person(event) if self.resolve_person else event.person_id
        except Exception:
            self._failed("resolve_person", event)
            return
        if not person:
            logger.warning(
                "webhook %s (%s) names no person id; built-ins skipped", event.event_id, event.name
            )
            self._count("skipped_no_person")
            return
        # Mark before suppressing: a suppressed person's updates may be ignored downstream.
        if mark:
            flag, at = attributes
            plan.append(("identify", client.identify, (person, {flag: True, at: event.timestamp})))
        if suppress:
            plan.append(("suppress", client.suppress, (person,)))

    def _failed(self, label: str, event: WebhookEvent) -> None:
        self._count("handler_errors")
        logger.exception(
            "webhook handler %s failed for event %s (%s)", label, event.event_id, event.name
        )

    def _timed(self, event: WebhookEvent, started: float) -> None:
        elapsed = time.monotonic() - started
        if elapsed > SLOW_DISPATCH:
            logger.warning(
                "webhook handlers for %s took %.1f s; hand long work to a queue",
                event.event_id,
                elapsed,
            )

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1


async def _wait(result: Awaitable[object]) -> object:
    return await result


def _lower_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name).lower(): value for name, value in items}


def _check_names(object_type: str | None, metric: str | None) -> None:
    if metric == "complained":
        raise ValidationError(
            "Customer.io has no 'complained' metric; spam complaints are 'spammed'", field="metric"
        )
    if object_type is not None and object_type not in METRICS:
        known = ", ".join(sorted(METRICS))
        raise ValidationError(
            f"unknown webhook object_type {object_type!r} (known: {known})", field="object_type"
        )
    if metric is None:
        return
    allowed = METRICS[object_type] if object_type else frozenset().union(*METRICS.values())
    if metric not in allowed:
        where = f"for {object_type!r} " if object_type else ""
        raise ValidationError(f"unknown webhook metric {metric!r} {where}".strip(), field="metric")
