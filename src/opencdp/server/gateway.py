"""The OpenCDP gateway's own API, served by the relay (spec/opencdp-gateway.md §4).

Person calls (identify, track, registerDevice) are checked, handed to the relay's one
``Client`` and answered ``202 {"status": "accepted"}`` as soon as the message is in the outbox:
delivery, dual-write and retries happen behind the answer. Transactional sends are forwarded at
once, under the send-safe rule, and the upstream answer (status and body) is the caller's.

When the relay cannot tell the caller what the gateway said, the status keeps the meaning the
official SDKs give it: 504 (no answer in time) and 502 (connection lost mid-request) mean the
send may have been received, so a careful SDK does not resend it; 523 ("origin unreachable")
means no gateway host was ever reached, which the SDKs' send-safe rule takes as safe to try
their next host.

Parsing a wire body into call arguments is pure (``parse_identify`` and friends); the checks
that follow are the client's own, whose ``ValidationError.field`` is renamed to the wire name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive

from ..calls import Calls, Queued
from ..destinations.base import Failure
from ..destinations.base import Response as Upstream
from ..errors import ClientClosedError, OutboxError, ValidationError
from ..guards._core import Reporter
from ..guards.values import snapshot
from ..message import parse_ulid
from ..webhooks.apps import content_length
from .auth import unauthorized_message
from .intake import Intake

if TYPE_CHECKING:
    from ..client import Client
    from .auth import KeyCheck
    from .config import ServerConfig

__all__ = [
    "GATEWAY_PREFIX",
    "Refused",
    "parse_device",
    "parse_identify",
    "parse_track",
    "send_answer",
]

logger = logging.getLogger("opencdp.server")

GATEWAY_PREFIX: Final = "/gateway/data-gateway"
CHANNELS: Final = ("email", "push", "sms", "whatsapp")
_EMAIL: Final = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
_IDENTIFY_KEYS: Final = frozenset({"identifier", "properties"})
_TRACK_KEYS: Final = frozenset({"identifier", "eventName", "properties"})
_DEVICE_STRINGS: Final = {
    "fcmToken": "fcm_token",
    "apnToken": "apn_token",
    "name": "name",
    "osVersion": "os_version",
    "model": "model",
    "appVersion": "app_version",
    "last_active_at": "last_active_at",
}
_DEVICE_KEYS: Final = frozenset(
    {"identifier", "deviceId", "platform", "attributes", *_DEVICE_STRINGS}
)
_WIRE_FIELDS: Final = {
    "user_id": "identifier",
    "event": "eventName",
    "device_id": "deviceId",
    **{snake: wire for wire, snake in _DEVICE_STRINGS.items()},
}
_JSON: Final = "application/json"
_LONG_DIGITS: Final = re.compile(rb"\d{19,}")
_DEVICE_FIELDS: Final = ("fcm_token", "apn_token", "name", "os_version", "model", "app_version",
                          "last_active_at", "last_used", "attributes")
"""``Client.register_device``'s keyword arguments, all of which ``Calls`` expects."""
_ACCEPTED: Final = orjson.dumps({"status": "accepted"})
_OK: Final = orjson.dumps({"status": "ok"})


class ClientGone(Exception):
    """The client hung up before its whole body arrived: nothing to answer."""


class Refused(Exception):
    """A request the relay answers itself, with ``{"message": ..., "field": ...}``."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        body: dict[str, Any] = {"message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return orjson.dumps(body)

    def response(self) -> Response:
        return Response(self.body(), self.status, self.headers, _JSON)


def _invalid(message: str, field: str) -> ValidationError:
    return ValidationError(message, field=field, code="OCDP150")


def _check_keys(body: Mapping[str, Any], allowed: frozenset[str], endpoint: str) -> None:
    if body.keys() <= allowed:
        return
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _invalid(f"{endpoint} does not take {', '.join(unknown)}", unknown[0])


def _identifier(body: Mapping[str, Any]) -> str | int:
    value = body.get("identifier")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _invalid("Identifier cannot be empty", "identifier")
    if isinstance(value, str) and "@" in value and _EMAIL.match(value.strip()):
        raise _invalid("Identifier must not be an email address", "identifier")
    return value


def _properties(body: Mapping[str, Any], key: str = "properties") -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"{key.capitalize()} must be a dictionary", key)
    return value


def parse_identify(body: Mapping[str, Any]) -> tuple[str | int, dict[str, Any]]:
    """``POST /v1/persons/identify`` → ``(identifier, properties)``."""
    _check_keys(body, _IDENTIFY_KEYS, "identify")
    return _identifier(body), _properties(body)


def parse_track(body: Mapping[str, Any]) -> tuple[str | int, object, dict[str, Any]]:
    """``POST /v1/persons/track`` → ``(identifier, event name, properties)``."""
    _check_keys(body, _TRACK_KEYS, "track")
    return _identifier(body), body.get("eventName"), _properties(body)


def parse_device(body: Mapping[str, Any]) -> tuple[str | int, object, object, dict[str, Any]]:
    """``POST /v1/persons/registerDevice`` → ``(identifier, device id, platform, options)``
    with options named as ``Client.register_device`` takes them.

    The gateway needs a push token (``fcmToken`` or ``apnToken``); the check is here because
    the client alone cannot know which destination will refuse a device without one.
    """
    _check_keys(body, _DEVICE_KEYS, "registerDevice")
    identifier = _identifier(body)
    options: dict[str, Any] = {}
    for wire, name in _DEVICE_STRINGS.items():
        value = body.get(wire)
        if value is not None:
            if not isinstance(value, str):
                raise _invalid(f"{wire} must be a string", wire)
            options[name] = value
    if not options.get("fcm_token") and not options.get("apn_token"):
        raise _invalid("fcmToken or apnToken is required", "fcmToken")
    if body.get("attributes") is not None:
        options["attributes"] = _properties(body, "attributes")
    return identifier, body.get("deviceId"), body.get("platform"), options


Build = Callable[[Calls], Queued]


def person_call(endpoint: str, body: Mapping[str, Any], idempotency_key: str | None
                ) -> tuple[Build, Mapping[str, str]]:
    """A person call's wire body → what builds its message from ``Calls`` (the checks
    ``Client`` runs), and the renames of its refusals' fields. Raises ``ValidationError``."""
    if endpoint == "track":
        identifier, name, properties = parse_track(body)
        event_id = _event_id(idempotency_key)
        return (lambda calls: calls.track(identifier, name, properties, None, event_id)), {}
    if endpoint == "identify":
        identifier, attributes = parse_identify(body)
        return ((lambda calls: calls.identify(identifier, attributes, None, None)),
                {"attributes": "properties"})
    identifier, device_id, platform, options = parse_device(body)
    fields = {**dict.fromkeys(_DEVICE_FIELDS), **options}
    return (lambda calls: calls.register_device(identifier, device_id, platform, fields)), {}


def send_answer(result: Upstream | Failure) -> Response:
    """The caller's answer to a forwarded send (see the module docstring for the statuses)."""
    if isinstance(result, Upstream):
        headers = {"content-type": result.headers.get("content-type", _JSON)}
        if "retry-after" in result.headers:
            headers["retry-after"] = result.headers["retry-after"]
        return Response(result.body, result.status, headers)
    if not result.maybe_received:
        status, message = 523, (
            f"no OpenCDP gateway host could be reached ({result.reason}); the send was not "
            "received, so it is safe to try again"
        )
    else:
        status = 504 if result.kind == "timeout" else 502
        message = (
            f"the OpenCDP gateway did not answer ({result.reason}); the send may have been "
            "received, so it was not retried"
        )
    return Refused(status, message).response()


def _exact(body: bytes, parsed: Any, reporter: Reporter) -> Any:
    """``parsed`` with its integers exact, or ``Refused`` naming the first one beyond 64 bits.

    orjson reads an integer beyond 64 bits as a float without a word, so the relay would store
    1.2345678901234568e+29 where the SDK refuses the same value (OCDP132). Only a body with a
    run of 19 or more digits can hold one; it is read again with exact integers and checked
    by the SDK's own value check, whose path (``properties.order_id``) is the wire body's.
    """
    if _LONG_DIGITS.search(body) is None:
        return parsed
    exact = json.loads(body)
    if isinstance(exact, dict):
        try:
            snapshot(exact, "", reporter)
        except ValidationError as exc:
            raise Refused(400, str(exc), exc.field or "body") from None
    return exact


async def read_json(request: Request, limit: int, reporter: Reporter) -> dict[str, Any]:
    """The request body as a JSON object, read no further than ``limit`` bytes; values the
    SDK would refuse are refused here too (see ``_exact``)."""
    length = content_length(request.headers.getlist("content-length"))
    if length == -1:
        raise Refused(400, "Content-Length must be one whole number", "body")
    if length is not None and length > limit:
        raise Refused(413, f"request body exceeds {limit} bytes", "body")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, f"request body exceeds {limit} bytes", "body")
    return parse_body(bytes(body), reporter)


def parse_body(body: bytes, reporter: Reporter) -> dict[str, Any]:
    """A whole request body as a JSON object (see ``_exact`` for its integers)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Refused(400, "the body must be JSON", "body") from None
    if not isinstance(parsed, dict):
        raise Refused(400, "the body must be a JSON object", "body")
    result: dict[str, Any] = _exact(body, parsed, reporter)
    return result


def _refusal(exc: ValidationError, renames: Mapping[str, str]) -> Refused:
    field = exc.field or "body"
    return Refused(400, str(exc), renames.get(field, _WIRE_FIELDS.get(field, field)))


_UNAVAILABLE: Final = {"retry-after": "1"}
_NO_HEADERS: Final[Mapping[str, str]] = {}

Handler = Callable[[Request], Awaitable[Response]]


class RelayView(Protocol):
    """What the routes read of the relay (``app.Relay``). A protocol, not that class: the
    relay's app builds these routes, so naming it here made the two modules import each
    other."""

    config: ServerConfig
    keys: KeyCheck
    client: Client | None
    sender: Client | None
    closing: bool

    def count(self, endpoint: str, status: int) -> None: ...


class GatewayAPI:
    """The routes under ``/gateway/data-gateway``, bound to one relay."""

    def __init__(self, relay: RelayView) -> None:
        self.relay = relay
        self._intakes: dict[int, Intake] = {}

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/v1/health/ping", self._wrap("ping", self.ping), methods=["GET"]),
            Route("/v1/persons/identify", self._wrap("identify", self.identify),
                  methods=["POST"]),
            Route("/v1/persons/track", self._wrap("track", self.track), methods=["POST"]),
            Route("/v1/persons/registerDevice",
                  self._wrap("registerDevice", self.register_device), methods=["POST"]),
        ]
        for channel in CHANNELS:
            routes.append(Route(f"/v1/send/{channel}", self._wrap(f"send_{channel}",
                                                                  self._sender(channel)),
                                methods=["POST"]))
        return routes

    def _wrap(self, name: str, handler: Handler) -> Handler:
        relay = self.relay

        async def endpoint(request: Request) -> Response:
            header = request.headers.get("authorization")
            raw = header.encode("latin-1") if header is not None else None
            try:
                if not relay.keys.accepts(raw):
                    raise Refused(401, unauthorized_message(raw))
                response = await handler(request)
            except Refused as refused:
                response = refused.response()
            except (ClientClosedError, OutboxError) as exc:
                response = Refused(503, "the relay cannot store this now "
                                   f"({type(exc).__name__}); nothing was stored, try again",
                                   headers=_UNAVAILABLE).response()
            relay.count(name, response.status_code)
            return response

        return endpoint

    def _client(self) -> Client:
        client = self.relay.client
        if client is None or self.relay.closing:
            raise Refused(503, "the relay is starting or shutting down", headers=_UNAVAILABLE)
        return client

    async def _body(self, request: Request, client: Client) -> dict[str, Any]:
        return await read_json(request, self.relay.config.max_body_bytes,
                               client.engine.guards._reporter)

    async def ping(self, request: Request) -> Response:
        self._client()
        return Response(_OK, 200, media_type=_JSON)

    def _intake(self, client: Client) -> Intake:
        intake = self._intakes.get(id(client))
        if intake is None or intake.engine is not client.engine:
            intake = self._intakes[id(client)] = Intake(client)
        return intake

    async def _person(self, request: Request, endpoint: str) -> Response:
        client = self._client()
        body = await self._body(request, client)
        return await self._store(client, endpoint, body, request.headers.get("idempotency-key"))

    async def _store(self, client: Client, endpoint: str, body: Mapping[str, Any],
                     idempotency_key: str | None) -> Response:
        intake = self._intake(client)
        try:
            build, renames = person_call(endpoint, body, idempotency_key)
        except ValidationError as exc:
            raise _refusal(exc, {}) from None
        try:
            queued = build(intake.calls)
        except ValidationError as exc:
            raise _refusal(exc, renames) from None
        await intake.store(queued)
        return Response(_ACCEPTED, 202, media_type=_JSON)

    async def ingest(self, endpoint: str, headers: Sequence[tuple[bytes, bytes]],
                     receive: Receive) -> tuple[int, bytes, Mapping[str, str]]:
        """A person call answered without Starlette (``FastIngest``): the same checks, the
        same answers, as (status, body, extra headers). Raises ``ClientGone`` when the
        client hangs up before its body arrived."""
        authorization: bytes | None = None
        lengths: list[str] = []
        idempotency: str | None = None
        for name, value in headers:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                lengths.append(value.decode("latin-1"))
            elif name == b"idempotency-key":
                idempotency = value.decode("latin-1")
        relay = self.relay
        try:
            if not relay.keys.accepts(authorization):
                raise Refused(401, unauthorized_message(authorization))
            client = self._client()
            limit = relay.config.max_body_bytes
            length = content_length(lengths)
            if length == -1:
                raise Refused(400, "Content-Length must be one whole number", "body")
            if length is not None and length > limit:
                raise Refused(413, f"request body exceeds {limit} bytes", "body")
            raw = b""
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    raise ClientGone
                raw += message.get("body", b"")
                more = message.get("more_body", False)
                if len(raw) > limit:
                    raise Refused(413, f"request body exceeds {limit} bytes", "body")
            body = parse_body(raw, client.engine.guards._reporter)
            await self._store(client, endpoint, body, idempotency)
        except Refused as refused:
            return refused.status, refused.body(), refused.headers
        except (ClientClosedError, OutboxError) as exc:
            unavailable = Refused(503, "the relay cannot store this now "
                                  f"({type(exc).__name__}); nothing was stored, try again",
                                  headers=_UNAVAILABLE)
            return unavailable.status, unavailable.body(), unavailable.headers
        return 202, _ACCEPTED, _NO_HEADERS

    async def identify(self, request: Request) -> Response:
        return await self._person(request, "identify")

    async def track(self, request: Request) -> Response:
        return await self._person(request, "track")

    async def register_device(self, request: Request) -> Response:
        return await self._person(request, "registerDevice")

    def _sender(self, channel: str) -> Handler:
        async def send(request: Request) -> Response:
            client = self._client()
            body = await self._body(request, client)
            engine = (self.relay.sender or client).engine  # ingest-only: the sends' client
            try:
                wire = engine.prepare_send(channel, body)
            except ValidationError as exc:
                raise _refusal(exc, {}) from None
            result = await asyncio.wrap_future(
                engine.dispatcher.submit(engine.send(channel, wire))
            )
            if not isinstance(result, Upstream) or result.status >= 300:
                what = (f"HTTP {result.status}" if isinstance(result, Upstream)
                        else result.reason)
                logger.warning("[CDP] relayed %s send did not succeed: %s", channel, what)
            return send_answer(result)

        return send


def _event_id(value: str | None) -> str | None:
    """A caller's ``Idempotency-Key`` becomes the event id when it is a ULID (as this SDK's
    own client sends), so a retried track is recognised; any other key is ignored."""
    if not value:
        return None
    try:
        parse_ulid(value.strip())
    except ValueError:
        return None
    return value.strip()
