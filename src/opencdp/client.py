"""The two facades, ``Client`` and ``AsyncClient``, over one shared core.

All the work of a call (guards, envelope, destination choice, enqueue, send validation) is in
``_Core`` and runs identically for both; the facades only differ in how they wait: a blocking
``Future.result`` for ``Client``, ``asyncio.wrap_future`` for ``AsyncClient``. Both are backed
by the same background dispatcher thread, so an ``AsyncClient`` never does network I/O on the
host's event loop and a slow destination cannot stall it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
import time
import weakref
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar, overload

import orjson

from .config import ClientConfig
from .destinations import opencdp as gateway
from .destinations.base import Failure, Request, Response
from .dispatch import Dispatcher, Outcomes
from .errors import (
    ClientClosedError,
    ConfigurationError,
    DeliveryError,
    OpenCDPError,
    OutboxError,
    QueueFullError,
    SendError,
    TransportError,
    ValidationError,
)
from .guards import Event, GuardPolicy, Guards
from .health import Health, snapshot
from .logs import Log
from .message import CUSTOMERIO, OPENCDP, Message, new_ulid, parse_ulid
from .outbox.base import DeadLetter, Outbox
from .outbox.memory import MemoryOutbox
from .policies.idempotency import IdempotencyGuard, SharedIdempotencyGuard, content_key

__all__ = ["AsyncClient", "Client"]

Timestamp = datetime | int | float | None
_new_message = tuple.__new__
P = TypeVar("P")
Platform = Literal["ios", "android", "web"]
_SEND_WORD = {"email": "email", "push": "push", "sms": "SMS", "whatsapp": "WhatsApp"}


def _open_outbox(config: ClientConfig, log: Log) -> Outbox:
    def dropped(code: str, destination: str, message: Message) -> None:
        log.warning_once(
            f"drop:{destination}",
            f"{code} the {destination} queue is full ({config.max_queue_size} messages); "
            f"policy {config.queue_full!r} dropped the oldest message. Further drops are "
            "counted in client.health(), not logged.",
        )

    if config.queue == "memory" and config.queue_full != "spill":
        return MemoryOutbox(
            max_size=config.max_queue_size,
            full_policy=config.queue_full,
            full_timeout=config.queue_full_timeout,
            on_drop=dropped,
        )
    try:
        from .outbox.url import open_outbox
    except ImportError as exc:  # pragma: no cover - depends on installed extras
        raise ConfigurationError(f"queue {config.queue!r} is not available: {exc}") from exc
    outbox: Outbox = open_outbox(
        config.queue,
        max_queue_size=config.max_queue_size,
        queue_full=config.queue_full,
        queue_full_timeout=config.queue_full_timeout,
        durability=config.durability,
        logger=log,
    )
    return outbox


def _event_id(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 128:
        return value
    if isinstance(value, str):
        try:
            return parse_ulid(value)
        except ValueError as exc:
            raise ValidationError(
                f"event_id must be a ULID (26 Crockford base32 characters): {exc}",
                field="event_id", code="OCDP150",
            ) from None
    raise ValidationError("event_id must be a ULID string", field="event_id", code="OCDP150")


class _Core:
    """Everything both facades share."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.log = Log(config.logger, config.debug)
        self.guards = Guards(
            GuardPolicy(
                strict=config.strict,
                silence=config.silence,
                schemas=config.schemas,
                email_hint=config.email_hint,
                max_event_names=config.max_event_names,
                customerio_limits=config.dual_write,
            ),
            self._report,
        )
        self.outbox = _open_outbox(config, self.log)
        shared = getattr(self.outbox, "shared_state", None)
        if callable(shared):
            redis_client, prefix = shared()
            self.idempotency: IdempotencyGuard = SharedIdempotencyGuard(
                redis_client, f"{prefix}idem:", ttl=config.idempotency_ttl)
        else:
            self.idempotency = IdempotencyGuard(ttl=config.idempotency_ttl)
        self.engine = Dispatcher(
            config,
            self.outbox,
            self.log,
            inspect=None if config.strict else self.guards.inspect,
        )
        self.dual = config.dual_write
        self.everywhere = OPENCDP | CUSTOMERIO if self.dual else OPENCDP
        self.blocking = config.delivery == "blocking"
        self.closed = False
        # The hot path of background calls: no blocking, no strict inspection, not closed.
        self.fast = not (self.blocking or config.strict or self.outbox.durable)
        self.intake_failures = 0
        self._put = self.outbox.put
        self._notify = self.engine.notify
        self._close_lock = threading.Lock()
        self._warned_sends: set[str] = set()
        if config.customer_io is not None:
            from .guards import check_track_key

            cio = config.customer_io
            for finding in check_track_key(cio.site_id, cio.api_key, cio.app_api_key):
                self._report(finding)
        if config.start_worker:
            self.engine.start()
        if config.register_atexit:
            ref = weakref.ref(self)

            def _at_exit() -> None:
                core = ref()
                if core is not None:
                    core.close(timeout=min(5.0, config.timeout))

            atexit.register(_at_exit)

    # reporting ----------------------------------------------------------------------------
    def _report(self, finding: Any) -> None:
        text = f"[CDP] {finding.code} {finding.message}"
        if finding.severity == "debug":
            self.log.info_debug(text)
        elif finding.severity == "error":
            self.log.error(text)
        else:
            self.log.warning(text)

    # enqueue ------------------------------------------------------------------------------
    def enqueue(self, message: Message) -> concurrent.futures.Future[Outcomes] | None:
        if self.closed:
            raise ClientClosedError("this client is closed; create a new one")
        if self.blocking or self.config.strict:
            message = self.guards.inspect(message)
        future = self.engine.expect(message) if self.blocking else None
        try:
            self.outbox.put(message)
        except OutboxError as exc:
            self.engine.forget(message)
            self.intake_failures += 1
            self.log.warning_once(
                f"intake:{type(exc).__name__}",
                f"[CDP] OCDP307 could not queue a {message.kind} message: {exc} (further "
                "failures are counted in client.health(), not logged)",
            )
            if isinstance(exc, QueueFullError) or self.config.fail_on_exception:
                raise
            return None
        self.engine.notify(force=self.blocking)
        return future

    def _cio_only(self, operation: str) -> int:
        if not self.dual:
            raise ConfigurationError(
                f"{operation} is a Customer.io operation (the OpenCDP gateway has no endpoint for "
                "it); it needs send_to_customer_io=True and customer_io=CustomerIO(...)"
            )
        return CUSTOMERIO

    def identify(
        self, user_id: object, attributes: object, timestamp: object, anonymous_id: object
    ) -> concurrent.futures.Future[Outcomes] | None:
        uid, attrs, ts = self.guards.identify(user_id, attributes, timestamp, anonymous_id)
        data = dict(attrs) if attrs else {}
        if not self.idempotency.first(content_key("identify", uid, None, data)):
            return None
        return self.enqueue(Message(new_ulid(), "identify", uid, None, data, ts, self.everywhere))

    def track(
        self, user_id: object, event: object, properties: object, timestamp: object,
        event_id: object,
    ) -> concurrent.futures.Future[Outcomes] | None:
        uid, name, props, ts = self.guards.track(user_id, event, properties, timestamp)
        if event_id is None:
            mid = new_ulid()
        else:
            mid = _event_id(event_id)
            if not self.idempotency.first(str(mid)):
                return None
        message = _new_message(
            Message, (mid, "track", uid, name, dict(props) if props else None, ts, self.everywhere)
        )
        if self.fast:
            self._put(message)
            self._notify()
            return None
        return self.enqueue(message)

    def track_anonymous(
        self, anonymous_id: object, event: object, properties: object, timestamp: object,
        event_id: object,
    ) -> concurrent.futures.Future[Outcomes] | None:
        destinations = self._cio_only("track_anonymous")
        aid, name, props, ts = self.guards.track_anonymous(anonymous_id, event, properties,
                                                           timestamp)
        mid = new_ulid() if event_id is None else _event_id(event_id)
        if event_id is not None and not self.idempotency.first(str(mid)):
            return None
        return self.enqueue(Message(mid, "track_anonymous", aid, name,
                                    dict(props) if props else None, ts, destinations))

    def register_device(
        self, user_id: object, device_id: object, platform: object, fields: dict[str, Any]
    ) -> concurrent.futures.Future[Outcomes] | None:
        uid = self.guards.identifier(user_id)
        did = self.guards.identifier(device_id, "device_id")
        if platform not in ("ios", "android", "web"):
            raise ValidationError("platform must be 'ios', 'android' or 'web'", field="platform",
                                  code="OCDP150")
        data = {k: v for k, v in fields.items() if v is not None}
        if not data.get("fcm_token") and not data.get("apn_token"):
            raise ValidationError("register_device needs fcm_token or apn_token (the push "
                                  "token the platforms deliver to)", field="fcm_token",
                                  code="OCDP150")
        data["platform"] = platform
        if "attributes" in data and not isinstance(data["attributes"], Mapping):
            raise ValidationError("attributes must be a dict", field="attributes", code="OCDP150")
        if "last_used" in data:
            data["last_used"] = self.guards.timestamp(data["last_used"], "last_used")
        destinations = self.everywhere
        if platform == "web" and destinations & CUSTOMERIO:
            destinations = OPENCDP
            self.log.warning_once(
                "web-device", "[CDP] OCDP160 web devices are registered with OpenCDP only: "
                "Customer.io takes ios and android devices (keyed by push token)")
        key = content_key("add_device", uid, did, data)
        if not self.idempotency.first(key):
            return None
        return self.enqueue(Message(new_ulid(), "add_device", uid, did, data, None, destinations))

    def person_operation(
        self, kind: str, user_id: object, name: object = None
    ) -> concurrent.futures.Future[Outcomes] | None:
        destinations = self._cio_only(kind)
        uid = self.guards.identifier(user_id)
        device = self.guards.identifier(name, "device_id") if name is not None else None
        return self.enqueue(Message(new_ulid(), kind, uid, device, None, None, destinations))

    def merge(
        self, primary: object, secondary: object
    ) -> concurrent.futures.Future[Outcomes] | None:
        destinations = self._cio_only("merge_people")
        sides = {}
        for field, value in (("primary", primary), ("secondary", secondary)):
            if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in (
                "id", "email", "cio_id"
            ):
                raise ValidationError(
                    f"{field} must hold exactly one of id, email or cio_id, e.g. {{'id': '42'}}",
                    field=field, code="OCDP150",
                )
            key, val = next(iter(value.items()))
            sides[field] = {key: self.guards.identifier(val, f"{field}.{key}")}
        label = next(iter(sides["primary"].values()))
        return self.enqueue(Message(new_ulid(), "merge", label, None, sides, None, destinations))

    # waiting ------------------------------------------------------------------------------
    def settle(self, outcomes: Outcomes | None) -> None:
        """Raise for a blocking call whose OpenCDP write failed, if asked to."""
        if not outcomes:
            return
        result = outcomes.get("opencdp")
        if result is not None and not result[0] and self.config.fail_on_exception:
            raise DeliveryError(f"OpenCDP did not accept the message: {result[1]}",
                                status=result[2])

    def timed_out(self) -> None:
        if self.config.fail_on_exception:
            raise DeliveryError(
                f"not delivered within blocking_timeout={self.config.blocking_timeout:g} s; "
                "the message stays queued"
            )

    def wait(self, future: concurrent.futures.Future[Outcomes] | None) -> None:
        if future is None:
            return
        try:
            outcomes = future.result(self.config.blocking_timeout)
        except concurrent.futures.TimeoutError:
            self.timed_out()
            return
        self.settle(outcomes)

    async def await_(self, future: concurrent.futures.Future[Outcomes] | None) -> None:
        if future is None:
            return
        try:
            outcomes = await asyncio.wait_for(
                asyncio.wrap_future(future), self.config.blocking_timeout
            )
        except asyncio.TimeoutError:
            self.timed_out()
            return
        self.settle(outcomes)

    # sends --------------------------------------------------------------------------------
    def prepare_send(self, channel: str, fields: dict[str, Any]) -> dict[str, Any]:
        if self.closed:
            raise ClientClosedError("this client is closed; create a new one")
        body = gateway.build_send(channel, fields)
        if self.dual and channel not in self._warned_sends:
            self._warned_sends.add(channel)
            self.log.warning(
                f"[CDP] Warning: Transactional messaging {_SEND_WORD[channel]} will NOT be sent "
                "to Customer.io to avoid sending twice. To turn this warning off set "
                "send_to_customer_io to False."
            )
        ignored = [f for f in gateway.UNSUPPORTED_SEND_FIELDS if f in body]
        if ignored:
            self.log.warning_once(
                f"unsupported:{channel}:{','.join(ignored)}",
                "[CDP] The following fields are not yet supported by the backend and will be "
                f"ignored: {', '.join(ignored)}",
            )
        return body

    async def send_coro(self, channel: str, body: dict[str, Any]) -> Response | Failure:
        request = Request("gateway", "POST", f"/v1/send/{channel}", orjson.dumps(body), [])
        return await self.engine.transport.send(request, failover="send_safe")

    def send_result(self, channel: str, result: Response | Failure) -> dict[str, Any] | None:
        if isinstance(result, Response) and 200 <= result.status < 300:
            self.log.debug(f"[CDP] {_SEND_WORD[channel]} sent successfully")
            try:
                parsed = orjson.loads(result.body) if result.body else {}
            except orjson.JSONDecodeError:
                parsed = {"raw": result.body.decode("utf-8", "replace")}
            return parsed if isinstance(parsed, dict) else {"result": parsed}
        error: DeliveryError
        if isinstance(result, Failure):
            error = TransportError(
                f"{_SEND_WORD[channel]} send did not complete ({result.reason}); "
                + ("it may have been received, so it was not retried"
                   if result.maybe_received else "no gateway host was reachable"),
                maybe_received=result.maybe_received,
            )
        else:
            error = SendError(
                f"{_SEND_WORD[channel]} send refused with HTTP {result.status}: "
                f"{gateway._error_message(result.body)}",
                status=result.status, body=result.body[:500],
            )
        self.log.error(f"[CDP] Send {channel} error: {error}")
        if self.config.fail_on_exception:
            raise error
        return None

    # control ------------------------------------------------------------------------------
    async def ping_coro(self) -> bool:
        result = await self.engine.transport.send(
            Request("gateway", "GET", gateway.PING_PATH, None, [])
        )
        ok = isinstance(result, Response) and result.status == 200
        if ok:
            self.log.debug("[CDP] Connection Established! Status: 200")
        else:
            self.log.error("[CDP] Failed to connect to CDP Server")
        return ok

    def health(self) -> Health:
        cio = self.config.customer_io
        secrets = (self.config.cdp_api_key,) + (
            (cio.api_key, cio.app_api_key) if cio else ()
        )
        return snapshot(self.engine, self.guards.counts(), self.idempotency.suppressed, secrets)

    def close(self, timeout: float) -> bool:
        with self._close_lock:
            if self.closed:
                return True
            self.closed = True
            self.fast = False
        started = time.monotonic()
        drained = self.engine.flush(timeout) if self.engine._started else False
        self.engine.stop(max(0.1, timeout - (time.monotonic() - started)))
        lost = getattr(self.outbox, "pending_messages", None)
        if not drained and callable(lost) and not self.outbox.durable:
            count = lost()
            if count:
                self.log.warning(f"[CDP] OCDP302 closed with {count} undelivered message(s) in "
                                 "the memory queue; they are lost. Use a durable queue "
                                 "(sqlite:/// or redis://) to keep them across restarts.")
        try:
            self.outbox.close()
        except OpenCDPError as exc:
            self.log.error(f"[CDP] OCDP307 closing the outbox failed: {exc}")
        return drained


def _config(options: dict[str, Any]) -> ClientConfig:
    config = options.pop("config", None)
    if config is not None:
        if options:
            return config.with_options(**options)  # type: ignore[no-any-return]
        return config  # type: ignore[no-any-return]
    return ClientConfig(**options)


class Client:
    """Send identifies, events and devices to OpenCDP (and Customer.io when dual-writing).

    Calls return as soon as the message is queued; a background thread delivers it. With
    ``delivery="blocking"`` they wait for the outcome. Use one client per process; it is
    thread-safe. See the README for every option.
    """

    def __init__(self, **options: Any) -> None:
        self._core = _Core(_config(options))

    @classmethod
    def from_env(cls, **overrides: Any) -> Client:
        """Build from ``CDP_API_KEY``, ``CUSTOMERIO_*`` and ``OPENCDP_QUEUE_URL``."""
        return cls(config=ClientConfig.from_env(**overrides))

    @property
    def config(self) -> ClientConfig:
        return self._core.config

    def __repr__(self) -> str:
        return f"Client({self._core.config!r})"

    def identify(self, user_id: str, attributes: Mapping[str, Any] | None = None, *,
                 anonymous_id: str | None = None, timestamp: Timestamp = None) -> None:
        """Create or update a person (both platforms when dual-writing)."""
        self._core.wait(self._core.identify(user_id, attributes, timestamp, anonymous_id))

    @overload
    def track(self, user_id: str, event: Event[P], properties: P, *,
              timestamp: Timestamp = None, event_id: str | None = None) -> None: ...
    @overload
    def track(self, user_id: str, event: str, properties: Mapping[str, Any] | None = None, *,
              timestamp: Timestamp = None, event_id: str | None = None) -> None: ...
    def track(self, user_id: str, event: object, properties: object = None, *,
              timestamp: Timestamp = None, event_id: str | None = None) -> None:
        """Record an event for a person (both platforms when dual-writing).

        ``event`` may be a typed name from ``Schemas.event``; type checkers then check
        ``properties`` against its schema.
        """
        self._core.wait(self._core.track(user_id, event, properties, timestamp, event_id))

    def track_anonymous(self, anonymous_id: str, event: str,
                        properties: Mapping[str, Any] | None = None, *,
                        timestamp: Timestamp = None, event_id: str | None = None) -> None:
        """Record an event for a visitor not yet identified (Customer.io)."""
        self._core.wait(self._core.track_anonymous(anonymous_id, event, properties, timestamp,
                                                   event_id))

    def register_device(self, user_id: str, device_id: str, platform: Platform, *,
                        fcm_token: str | None = None, apn_token: str | None = None,
                        name: str | None = None, os_version: str | None = None,
                        model: str | None = None, app_version: str | None = None,
                        last_active_at: str | None = None, last_used: Timestamp = None,
                        attributes: Mapping[str, Any] | None = None) -> None:
        """Add or update a device (both platforms; Customer.io keys it by push token)."""
        self._core.wait(self._core.register_device(user_id, device_id, platform, {
            "fcm_token": fcm_token, "apn_token": apn_token, "name": name,
            "os_version": os_version, "model": model, "app_version": app_version,
            "last_active_at": last_active_at, "last_used": last_used, "attributes": attributes,
        }))

    def remove_device(self, user_id: str, device_token: str) -> None:
        """Remove a device from a person in Customer.io (by the token it was registered with)."""
        self._core.wait(self._core.person_operation("delete_device", user_id, device_token))

    def suppress(self, user_id: str) -> None:
        """Suppress a person in Customer.io (no messages; data deleted)."""
        self._core.wait(self._core.person_operation("suppress", user_id))

    def unsuppress(self, user_id: str) -> None:
        self._core.wait(self._core.person_operation("unsuppress", user_id))

    def delete_person(self, user_id: str) -> None:
        """Delete a person in Customer.io."""
        self._core.wait(self._core.person_operation("delete", user_id))

    def merge_people(self, primary: Mapping[str, str], secondary: Mapping[str, str]) -> None:
        """Merge ``secondary`` into ``primary`` in Customer.io.

        Each side is one identifier: ``{"id": ...}``, ``{"email": ...}`` or ``{"cio_id": ...}``.
        """
        self._core.wait(self._core.merge(primary, secondary))

    def _send(self, channel: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        body = self._core.prepare_send(channel, fields)
        result = self._core.engine.run(self._core.send_coro(channel, body))
        return self._core.send_result(channel, result)

    def send_email(self, *, to: str, identifiers: Mapping[str, str],
                   transactional_message_id: str | int | None = None,
                   message_data: Mapping[str, Any] | None = None, subject: str | None = None,
                   from_: str | None = None, body: str | None = None,
                   **options: Any) -> dict[str, Any] | None:
        """Send a transactional email through OpenCDP only; returns the gateway's answer."""
        return self._send("email", {"to": to, "identifiers": identifiers,
                                    "transactional_message_id": transactional_message_id,
                                    "message_data": message_data, "subject": subject,
                                    "from": from_, "body": body, **options})

    def send_push(self, *, identifiers: Mapping[str, str],
                  transactional_message_id: str | int, title: str | None = None,
                  body: str | None = None, message_data: Mapping[str, Any] | None = None,
                  **options: Any) -> dict[str, Any] | None:
        """Send a transactional push through OpenCDP only."""
        return self._send("push", {"identifiers": identifiers,
                                   "transactional_message_id": transactional_message_id,
                                   "title": title, "body": body, "message_data": message_data,
                                   **options})

    def send_sms(self, *, identifiers: Mapping[str, str],
                 transactional_message_id: str | int | None = None, to: str | None = None,
                 from_: str | None = None, body: str | None = None,
                 message_data: Mapping[str, Any] | None = None,
                 **options: Any) -> dict[str, Any] | None:
        """Send a transactional SMS through OpenCDP only."""
        return self._send("sms", {"identifiers": identifiers,
                                  "transactional_message_id": transactional_message_id,
                                  "to": to, "from": from_, "body": body,
                                  "message_data": message_data, **options})

    def send_whatsapp(self, *, identifiers: Mapping[str, str],
                      transactional_message_id: str | int, to: str | None = None,
                      message_data: Mapping[str, Any] | None = None,
                      template_variables: Mapping[str, Mapping[str, str]] | None = None,
                      ) -> dict[str, Any] | None:
        """Send a transactional WhatsApp message through OpenCDP only (queued, not delivered)."""
        return self._send("whatsapp", {"identifiers": identifiers,
                                       "transactional_message_id": transactional_message_id,
                                       "to": to, "message_data": message_data,
                                       "template_variables": template_variables})

    def ping(self) -> bool:
        """True when the gateway answers its health ping with 200."""
        return self._core.engine.run(self._core.ping_coro())

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued was delivered or dead-lettered; False on timeout."""
        return self._core.engine.flush(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Stop intake, drain within ``timeout``, release resources. Idempotent."""
        return self._core.close(timeout)

    def health(self) -> Health:
        return self._core.health()

    def dead_letters(self, destination: str | None = None, since: float | None = None,
                     limit: int = 100) -> list[DeadLetter]:
        return self._core.outbox.dead_letters(destination, since, limit)

    def replay_dead_letters(self, destination: str | None = None,
                            since: float | None = None) -> int:
        count = self._core.outbox.replay(destination, since)
        self._core.engine.notify()
        return count

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """The same calls as ``Client``, awaitable. Delivery runs on the shared background engine,
    never on your event loop."""

    def __init__(self, **options: Any) -> None:
        self._core = _Core(_config(options))

    @classmethod
    def from_env(cls, **overrides: Any) -> AsyncClient:
        return cls(config=ClientConfig.from_env(**overrides))

    @property
    def config(self) -> ClientConfig:
        return self._core.config

    def __repr__(self) -> str:
        return f"AsyncClient({self._core.config!r})"

    async def identify(self, user_id: str, attributes: Mapping[str, Any] | None = None, *,
                       anonymous_id: str | None = None, timestamp: Timestamp = None) -> None:
        await self._core.await_(self._core.identify(user_id, attributes, timestamp, anonymous_id))

    @overload
    async def track(self, user_id: str, event: Event[P], properties: P, *,
                    timestamp: Timestamp = None, event_id: str | None = None) -> None: ...
    @overload
    async def track(self, user_id: str, event: str,
                    properties: Mapping[str, Any] | None = None, *,
                    timestamp: Timestamp = None, event_id: str | None = None) -> None: ...
    async def track(self, user_id: str, event: object, properties: object = None, *,
                    timestamp: Timestamp = None, event_id: str | None = None) -> None:
        await self._core.await_(self._core.track(user_id, event, properties, timestamp, event_id))

    async def track_anonymous(self, anonymous_id: str, event: str,
                              properties: Mapping[str, Any] | None = None, *,
                              timestamp: Timestamp = None, event_id: str | None = None) -> None:
        await self._core.await_(self._core.track_anonymous(anonymous_id, event, properties,
                                                           timestamp, event_id))

    async def register_device(self, user_id: str, device_id: str, platform: Platform, *,
                              fcm_token: str | None = None, apn_token: str | None = None,
                              name: str | None = None, os_version: str | None = None,
                              model: str | None = None, app_version: str | None = None,
                              last_active_at: str | None = None, last_used: Timestamp = None,
                              attributes: Mapping[str, Any] | None = None) -> None:
        await self._core.await_(self._core.register_device(user_id, device_id, platform, {
            "fcm_token": fcm_token, "apn_token": apn_token, "name": name,
            "os_version": os_version, "model": model, "app_version": app_version,
            "last_active_at": last_active_at, "last_used": last_used, "attributes": attributes,
        }))

    async def remove_device(self, user_id: str, device_token: str) -> None:
        await self._core.await_(self._core.person_operation("delete_device", user_id,
                                                            device_token))

    async def suppress(self, user_id: str) -> None:
        await self._core.await_(self._core.person_operation("suppress", user_id))

    async def unsuppress(self, user_id: str) -> None:
        await self._core.await_(self._core.person_operation("unsuppress", user_id))

    async def delete_person(self, user_id: str) -> None:
        await self._core.await_(self._core.person_operation("delete", user_id))

    async def merge_people(self, primary: Mapping[str, str],
                           secondary: Mapping[str, str]) -> None:
        await self._core.await_(self._core.merge(primary, secondary))

    async def _send(self, channel: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        body = self._core.prepare_send(channel, fields)
        result = await asyncio.wrap_future(
            self._core.engine.submit(self._core.send_coro(channel, body))
        )
        return self._core.send_result(channel, result)

    async def send_email(self, *, to: str, identifiers: Mapping[str, str],
                         transactional_message_id: str | int | None = None,
                         message_data: Mapping[str, Any] | None = None,
                         subject: str | None = None, from_: str | None = None,
                         body: str | None = None, **options: Any) -> dict[str, Any] | None:
        return await self._send("email", {"to": to, "identifiers": identifiers,
                                          "transactional_message_id": transactional_message_id,
                                          "message_data": message_data, "subject": subject,
                                          "from": from_, "body": body, **options})

    async def send_push(self, *, identifiers: Mapping[str, str],
                        transactional_message_id: str | int, title: str | None = None,
                        body: str | None = None, message_data: Mapping[str, Any] | None = None,
                        **options: Any) -> dict[str, Any] | None:
        return await self._send("push", {"identifiers": identifiers,
                                         "transactional_message_id": transactional_message_id,
                                         "title": title, "body": body,
                                         "message_data": message_data, **options})

    async def send_sms(self, *, identifiers: Mapping[str, str],
                       transactional_message_id: str | int | None = None,
                       to: str | None = None, from_: str | None = None, body: str | None = None,
                       message_data: Mapping[str, Any] | None = None,
                       **options: Any) -> dict[str, Any] | None:
        return await self._send("sms", {"identifiers": identifiers,
                                        "transactional_message_id": transactional_message_id,
                                        "to": to, "from": from_, "body": body,
                                        "message_data": message_data, **options})

    async def send_whatsapp(self, *, identifiers: Mapping[str, str],
                            transactional_message_id: str | int, to: str | None = None,
                            message_data: Mapping[str, Any] | None = None,
                            template_variables: Mapping[str, Mapping[str, str]] | None = None,
                            ) -> dict[str, Any] | None:
        return await self._send("whatsapp", {"identifiers": identifiers,
                                             "transactional_message_id": transactional_message_id,
                                             "to": to, "message_data": message_data,
                                             "template_variables": template_variables})

    async def ping(self) -> bool:
        return await asyncio.wrap_future(self._core.engine.submit(self._core.ping_coro()))

    async def flush(self, timeout: float = 10.0) -> bool:
        return await asyncio.to_thread(self._core.engine.flush, timeout)

    async def close(self, timeout: float = 10.0) -> bool:
        return await asyncio.to_thread(self._core.close, timeout)

    def health(self) -> Health:
        return self._core.health()

    def dead_letters(self, destination: str | None = None, since: float | None = None,
                     limit: int = 100) -> list[DeadLetter]:
        return self._core.outbox.dead_letters(destination, since, limit)

    async def replay_dead_letters(self, destination: str | None = None,
                                  since: float | None = None) -> int:
        count = await asyncio.to_thread(self._core.outbox.replay, destination, since)
        self._core.engine.notify()
        return count

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

