"""The two facades, ``Client`` and ``AsyncClient``: argument handling and waiting, nothing else.

A call is checked and normalised by the guards into a frozen ``Message`` on the caller's
thread (``calls.Calls``, shared by both facades), queued by the ``Engine`` for all its destinations
or none, and delivered by the background dispatcher. The facades only differ in how they
wait: a blocking ``Future.result`` for ``Client``, ``asyncio.wrap_future`` for
``AsyncClient``, whose durable writes also run off the host's event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar, overload

from .calls import AsyncTrackAPICalls, Calls, Queued, TrackAPICalls
from .config import ClientConfig
from .dispatch import Outcomes
from .engine import Engine, FlushResult, build
from .errors import ConfigurationError
from .guards import Event
from .health import Health
from .message import ulid_str
from .options import ClientOptions, Context
from .outbox.base import DeadLetter
from .reentry import inside
from .sends import EmailSend, PushSend, SmsSend, WhatsAppSend, wire_fields
from .snapshot import EngineSnapshot

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = ["AsyncClient", "Client"]

Timestamp = datetime | int | float | None
P = TypeVar("P")
Platform = Literal["ios", "android", "web"]
def _config(options: dict[str, Any]) -> ClientConfig:
    config = options.pop("config", None)
    if config is None:
        return ClientConfig(**options)
    if not isinstance(config, ClientConfig):
        raise ConfigurationError(f"config must be a ClientConfig, not {type(config).__name__}")
    return config.with_options(**options) if options else config


class _Facade:
    """What both facades hold and the calls that do not wait."""

    def __init__(self, config: ClientConfig | None = None, **options: Any) -> None:
        if config is not None:
            options["config"] = config
        self._engine = build(_config(options))
        self._calls = Calls(self._engine)

    @property
    def config(self) -> ClientConfig:
        return self._engine.config

    @property
    def engine(self) -> Engine:
        """The wiring behind this client (outbox, dispatcher, sends), for the relay and
        extensions; calls on it are not part of the stable API."""
        return self._engine

    @property
    def last_flush(self) -> FlushResult | None:
        """What the last ``flush()`` saw finish: delivered and dead-lettered per destination."""
        return self._engine.last_flush

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._engine.config!r})"

    def health(self) -> Health:
        """Per destination: breaker, queue, counters, and whether it is failing or disabled."""
        return self._engine.health()

    def stats(self) -> EngineSnapshot:
        """The engine's counters and breaker states (a copy), for dashboards and reports."""
        return self._engine.stats()

    def dead_letters(self, destination: str | None = None, since: float | None = None,
                     limit: int = 100) -> list[DeadLetter]:
        return self._engine.outbox.dead_letters(destination, since, limit)


class Client(_Facade, TrackAPICalls):
    """Send identifies, events and devices to OpenCDP (and Customer.io when dual-writing).

    Calls return the message's event id as soon as it is queued; a background thread
    delivers it. The rest of Customer.io's Track API (page and screen views, objects and
    relationships, other identifiers, delivery metrics, manual segments) comes from
    ``TrackAPICalls``. With ``delivery="blocking"`` they wait for the outcome. Use one client per
    process; it is thread-safe. Every option: docs/options.md.
    """

    def __init__(self, config: ClientConfig | None = None,
                 **options: Unpack[ClientOptions]) -> None:
        super().__init__(config, **options)

    @classmethod
    def from_env(cls, **overrides: Unpack[ClientOptions]) -> Client:
        """Build from the environment (docs/options.md lists the variables); keyword
        overrides win."""
        return cls(ClientConfig.from_env(**overrides))

    def _do(self, queued: Queued) -> str:
        message, key = queued
        engine = self._engine
        if engine.fast and key is None and not inside():
            engine.put(message)
            engine.notify()
            return ulid_str(message.id)
        if engine.before_send is not None:
            message = self._calls.admit(message)
        future = engine.enqueue(message, key)
        if future is not None:
            try:
                self._engine.settle(future.result(self._engine.config.blocking_timeout))
            except concurrent.futures.TimeoutError:
                self._engine.timed_out()
        return ulid_str(message.id)

    def identify(self, user_id: str, attributes: Mapping[str, Any] | None = None, *,
                 anonymous_id: str | None = None, timestamp: Timestamp = None) -> str:
        """Create or update a person (both platforms when dual-writing)."""
        return self._do(self._calls.identify(user_id, attributes, timestamp, anonymous_id))

    @overload
    def track(self, user_id: str, event: Event[P], properties: P, *,
              timestamp: Timestamp = None, event_id: str | None = None,
              context: Context | None = None) -> str: ...
    @overload
    def track(self, user_id: str, event: str, properties: Mapping[str, Any] | None = None, *,
              timestamp: Timestamp = None, event_id: str | None = None,
              context: Context | None = None) -> str: ...
    def track(self, user_id: str, event: object, properties: object = None, *,
              timestamp: Timestamp = None, event_id: str | None = None,
              context: Context | None = None) -> str:
        """Record an event for a person; returns its event id (a ULID).

        ``event`` may be a typed name from ``Schemas.event``; type checkers then check
        ``properties`` against its schema. ``context`` (ip, user agent, page, library) is
        where it happened; docs/calls.md says which field each platform gets.
        """
        return self._do(self._calls.track(user_id, event, properties, timestamp, event_id,
                                          context))

    def track_anonymous(self, anonymous_id: str, event: str,
                        properties: Mapping[str, Any] | None = None, *,
                        timestamp: Timestamp = None, event_id: str | None = None,
                        context: Context | None = None) -> str:
        """Record an event for a visitor not yet identified (Customer.io)."""
        return self._do(self._calls.track_anonymous(anonymous_id, event, properties, timestamp,
                                                    event_id, context))

    def register_device(self, user_id: str, device_id: str, platform: Platform, *,
                        fcm_token: str | None = None, apn_token: str | None = None,
                        name: str | None = None, os_version: str | None = None,
                        model: str | None = None, app_version: str | None = None,
                        last_active_at: str | None = None, last_used: Timestamp = None,
                        attributes: Mapping[str, Any] | None = None) -> str:
        """Add or update a device (both platforms; Customer.io keys it by push token)."""
        fields = {k: v for k, v in locals().items() if k not in _DEVICE_ARGS}
        return self._do(self._calls.register_device(user_id, device_id, platform, fields))

    def remove_device(self, user_id: str, device_token: str) -> str:
        """Remove a device from a person in Customer.io (by the token it was registered with)."""
        return self._do(self._calls.person("delete_device", user_id, device_token))

    def suppress(self, user_id: str) -> str:
        """Suppress a person in Customer.io (no messages; data deleted)."""
        return self._do(self._calls.person("suppress", user_id))

    def unsuppress(self, user_id: str) -> str:
        """Lift a person's suppression in Customer.io."""
        return self._do(self._calls.person("unsuppress", user_id))

    def delete_person(self, user_id: str) -> str:
        """Delete a person in Customer.io."""
        return self._do(self._calls.person("delete", user_id))

    def merge_people(self, primary: Mapping[str, str], secondary: Mapping[str, str]) -> str:
        """Merge ``secondary`` into ``primary`` in Customer.io; each side is one identifier:
        ``{"id": ...}``, ``{"email": ...}`` or ``{"cio_id": ...}``."""
        return self._do(self._calls.merge(primary, secondary))

    def _send(self, channel: str, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        body = self._engine.prepare_send(channel, wire_fields(fields))
        result = self._engine.dispatcher.run(self._engine.send(channel, body))
        return self._engine.send_result(channel, result)

    def send_email(self, **fields: Unpack[EmailSend]) -> dict[str, Any] | None:
        """Send a transactional email through OpenCDP only; returns the gateway's answer."""
        return self._send("email", fields)

    def send_push(self, **fields: Unpack[PushSend]) -> dict[str, Any] | None:
        """Send a transactional push through OpenCDP only."""
        return self._send("push", fields)

    def send_sms(self, **fields: Unpack[SmsSend]) -> dict[str, Any] | None:
        """Send a transactional SMS through OpenCDP only."""
        return self._send("sms", fields)

    def send_whatsapp(self, **fields: Unpack[WhatsAppSend]) -> dict[str, Any] | None:
        """Send a transactional WhatsApp message through OpenCDP only (queued, not delivered)."""
        return self._send("whatsapp", fields)

    def ping(self) -> bool:
        """True when the gateway answers its health ping with 200."""
        return self._engine.dispatcher.run(self._engine.ping())

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything this process queued was delivered or dead-lettered; False on
        timeout. ``last_flush`` then says how many of each."""
        return self._engine.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop intake, drain within ``timeout`` (default ``shutdown_timeout``), release
        resources. Idempotent."""
        return self._engine.close(self.config.shutdown_timeout if timeout is None else timeout)

    def replay_dead_letters(self, destination: str | None = None,
                            since: float | None = None) -> int:
        """Put dead letters back in the queue (one destination's, or all; those
        dead-lettered at or after ``since``); returns how many."""
        count = self._engine.outbox.replay(destination, since)
        self._engine.dispatcher.notify()
        return count

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_DEVICE_ARGS = frozenset({"self", "user_id", "device_id", "platform"})


class AsyncClient(_Facade, AsyncTrackAPICalls):
    """The same calls as ``Client``, awaitable. Delivery runs on the background engine and
    durable writes on a worker thread, never on your event loop."""

    def __init__(self, config: ClientConfig | None = None,
                 **options: Unpack[ClientOptions]) -> None:
        super().__init__(config, **options)

    @classmethod
    def from_env(cls, **overrides: Unpack[ClientOptions]) -> AsyncClient:
        """Build from the environment (docs/options.md lists the variables); keyword
        overrides win."""
        return cls(ClientConfig.from_env(**overrides))

    async def _do(self, queued: Queued) -> str:
        message, key = queued
        engine = self._engine
        if engine.before_send is not None:
            message = self._calls.admit(message)
        if engine.outbox.durable:
            # Awaited, not run on a thread: the queue's committer answers (engine.py).
            loop = asyncio.get_running_loop()
            answer: asyncio.Future[concurrent.futures.Future[Outcomes] | None] = \
                loop.create_future()

            def resolve(result: concurrent.futures.Future[Outcomes] | None,
                        error: BaseException | None) -> None:
                loop.call_soon_threadsafe(_answer, answer, result, error)

            engine.enqueue_soon(message, key, resolve)
            future = await answer
        else:
            future = engine.enqueue(message, key)
        if future is not None:
            outcomes: Outcomes | None = None
            try:
                outcomes = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)),
                                                  engine.config.blocking_timeout)
            except asyncio.TimeoutError:
                engine.timed_out()
            engine.settle(outcomes)
        return ulid_str(message.id)

    async def identify(self, user_id: str, attributes: Mapping[str, Any] | None = None, *,
                       anonymous_id: str | None = None, timestamp: Timestamp = None) -> str:
        """Create or update a person (both platforms when dual-writing); returns the
        message id. Awaits only the queue (or, with ``delivery="blocking"``, the outcome)."""
        return await self._do(self._calls.identify(user_id, attributes, timestamp,
                                                   anonymous_id))

    @overload
    async def track(self, user_id: str, event: Event[P], properties: P, *,
                    timestamp: Timestamp = None, event_id: str | None = None,
                    context: Context | None = None) -> str: ...
    @overload
    async def track(self, user_id: str, event: str,
                    properties: Mapping[str, Any] | None = None, *,
                    timestamp: Timestamp = None, event_id: str | None = None,
                    context: Context | None = None) -> str: ...
    async def track(self, user_id: str, event: object, properties: object = None, *,
                    timestamp: Timestamp = None, event_id: str | None = None,
                    context: Context | None = None) -> str:
        """Record an event for a person; returns its event id (a ULID). As ``Client.track``:
        typed names from ``Schemas.event`` check ``properties``."""
        return await self._do(self._calls.track(user_id, event, properties, timestamp, event_id,
                                                context))

    async def track_anonymous(self, anonymous_id: str, event: str,
                              properties: Mapping[str, Any] | None = None, *,
                              timestamp: Timestamp = None, event_id: str | None = None,
                              context: Context | None = None) -> str:
        """Record an event for a visitor not yet identified (Customer.io)."""
        return await self._do(self._calls.track_anonymous(anonymous_id, event, properties,
                                                          timestamp, event_id, context))

    async def register_device(self, user_id: str, device_id: str, platform: Platform, *,
                              fcm_token: str | None = None, apn_token: str | None = None,
                              name: str | None = None, os_version: str | None = None,
                              model: str | None = None, app_version: str | None = None,
                              last_active_at: str | None = None, last_used: Timestamp = None,
                              attributes: Mapping[str, Any] | None = None) -> str:
        """Add or update a device (both platforms; Customer.io keys it by push token)."""
        fields = {k: v for k, v in locals().items() if k not in _DEVICE_ARGS}
        return await self._do(self._calls.register_device(user_id, device_id, platform,
                                                           fields))

    async def remove_device(self, user_id: str, device_token: str) -> str:
        """Remove a device from a person in Customer.io (by the token it was registered
        with)."""
        return await self._do(self._calls.person("delete_device", user_id, device_token))

    async def suppress(self, user_id: str) -> str:
        """Suppress a person in Customer.io (no messages; data deleted)."""
        return await self._do(self._calls.person("suppress", user_id))

    async def unsuppress(self, user_id: str) -> str:
        """Lift a person's suppression in Customer.io."""
        return await self._do(self._calls.person("unsuppress", user_id))

    async def delete_person(self, user_id: str) -> str:
        """Delete a person in Customer.io."""
        return await self._do(self._calls.person("delete", user_id))

    async def merge_people(self, primary: Mapping[str, str],
                           secondary: Mapping[str, str]) -> str:
        """Merge ``secondary`` into ``primary`` in Customer.io; each side is one
        identifier: ``{"id": ...}``, ``{"email": ...}`` or ``{"cio_id": ...}``."""
        return await self._do(self._calls.merge(primary, secondary))

    async def _send(self, channel: str, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        body = self._engine.prepare_send(channel, wire_fields(fields))
        result = await asyncio.wrap_future(
            self._engine.dispatcher.submit(self._engine.send(channel, body)))
        return self._engine.send_result(channel, result)

    async def send_email(self, **fields: Unpack[EmailSend]) -> dict[str, Any] | None:
        """Send a transactional email through OpenCDP only; returns the gateway's answer."""
        return await self._send("email", fields)

    async def send_push(self, **fields: Unpack[PushSend]) -> dict[str, Any] | None:
        """Send a transactional push through OpenCDP only."""
        return await self._send("push", fields)

    async def send_sms(self, **fields: Unpack[SmsSend]) -> dict[str, Any] | None:
        """Send a transactional SMS through OpenCDP only."""
        return await self._send("sms", fields)

    async def send_whatsapp(self, **fields: Unpack[WhatsAppSend]) -> dict[str, Any] | None:
        """Send a transactional WhatsApp message through OpenCDP only (queued, not
        delivered)."""
        return await self._send("whatsapp", fields)

    async def ping(self) -> bool:
        """True when the gateway answers its health ping with 200."""
        return await asyncio.wrap_future(self._engine.dispatcher.submit(self._engine.ping()))

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything this process queued was delivered or dead-lettered; False
        on timeout. Waits on a thread, never blocking the loop."""
        return await asyncio.to_thread(self._engine.flush, timeout)

    async def close(self, timeout: float | None = None) -> bool:
        """Stop intake, drain within ``timeout`` (default ``shutdown_timeout``), release
        resources. Idempotent; ``async with`` calls it."""
        return await asyncio.to_thread(
            self._engine.close, self.config.shutdown_timeout if timeout is None else timeout)

    async def replay_dead_letters(self, destination: str | None = None,
                                  since: float | None = None) -> int:
        """Put dead letters back in the queue (one destination's, or all; those
        dead-lettered at or after ``since``); returns how many."""
        count = await asyncio.to_thread(self._engine.outbox.replay, destination, since)
        self._engine.dispatcher.notify()
        return count

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _answer(answer: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if answer.done():  # the awaiting call was cancelled; the put went on
        return
    if error is None:
        answer.set_result(result)
    else:
        answer.set_exception(error)
