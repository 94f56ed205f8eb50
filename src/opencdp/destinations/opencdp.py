"""The OpenCDP gateway: messages to requests, responses to outcomes, send payloads.

One request per message (the gateway has no batch endpoint). Field names follow the
gateway's mixed casing: camelCase on person endpoints, snake_case on sends. Every person call
carries ``Idempotency-Key: <ULID>`` so a receiver that de-duplicates can; the gateway's own
behaviour for it is unknown, and the header is harmless where ignored.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import orjson

from .. import registry
from ..errors import ValidationError
from ..message import Message
from ..outbox.base import Leased
from ..policies.retry import classify_status, parse_retry_after
from .base import Dead, Delivered, Failure, Outcome, Request, Response, Retry

if TYPE_CHECKING:
    from ..config import ClientConfig

NAME: Final = "opencdp"
"""This destination's name in the registry, the queues, health and metrics."""

__all__ = [
    "CHANNELS",
    "PING_PATH",
    "SUPPORTED_KINDS",
    "UNSUPPORTED_SEND_FIELDS",
    "VIEW_EVENTS",
    "Gateway",
    "build_send",
    "classify",
    "describe",
    "encode",
    "failover_allowed",
    "send_failover_allowed",
]

PING_PATH: Final = "/v1/health/ping"
_PATHS: Final = {
    "identify": "/v1/persons/identify",
    "track": "/v1/persons/track",
    "add_device": "/v1/persons/registerDevice",
    "page": "/v1/persons/track",
    "screen": "/v1/persons/track",
}
SUPPORTED_KINDS: Final = frozenset(_PATHS)
VIEW_EVENTS: Final = {"page": ("page_viewed", "url"), "screen": ("screen_viewed", "screen")}
"""The gateway has no page or screen endpoint: a view reaches it as a track named
``page_viewed`` (with the URL as the ``url`` property) or ``screen_viewed`` (``screen``)."""
CHANNELS: Final = ("email", "push", "sms", "whatsapp")
_DEVICE_FIELDS: Final = {
    "platform": "platform",
    "fcm_token": "fcmToken",
    "apn_token": "apnToken",
    "name": "name",
    "os_version": "osVersion",
    "model": "model",
    "app_version": "appVersion",
    "last_active_at": "last_active_at",
    "attributes": "attributes",
}
# Cloudflare: origin refused, unreachable, TLS handshake failed, invalid origin certificate.
_NEVER_REACHED_STATUSES: Final = frozenset({521, 523, 525, 526})


def encode(item: Leased) -> Request:
    """The gateway request for one message (host and credentials are added by ``Gateway``)."""
    m = item.message
    body: dict[str, Any]
    if m.kind == "identify":
        body = {"identifier": m.identifier, "properties": m.data or {}}
    elif m.kind == "track":
        body = {"identifier": m.identifier, "eventName": m.name, "properties": m.data or {}}
    elif m.kind in VIEW_EVENTS:
        event, key = VIEW_EVENTS[m.kind]
        body = {"identifier": m.identifier, "eventName": event,
                "properties": {**(m.data or {}), key: m.name}}
    elif m.kind == "add_device":
        body = {"identifier": m.identifier, "deviceId": m.name}
        for key, wire in _DEVICE_FIELDS.items():
            value = (m.data or {}).get(key)
            if value is not None:
                body[wire] = value
    else:
        raise ValueError(f"the OpenCDP gateway has no endpoint for {m.kind!r}")
    return Request(
        service="gateway",
        method="POST",
        path=_PATHS[m.kind],
        body=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        items=[item],
        headers={"Idempotency-Key": m.ulid},
    )


def error_message(body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        return str(parsed["message"])[:200]
    return body[:200].decode("utf-8", "replace")


def classify(request: Request, result: Response | Failure, now: float) -> list[Outcome]:
    items = request.items
    if isinstance(result, Failure):
        return [Retry(items, result.reason)]
    verdict = classify_status(result.status)
    if verdict == "ok":
        return [Delivered(items)]
    reason = f"HTTP {result.status}: {error_message(result.body)}"
    if verdict == "retry":
        after = parse_retry_after(result.headers.get("retry-after"), now)
        return [Retry(items, reason, result.status, after)]
    return [Dead(items, reason, result.status)]


def describe(message: Message) -> str:
    """The dual-write guide's debug line, without its prefix."""
    if message.kind == "identify":
        return f"Identified {message.identifier}"
    if message.kind == "track":
        return f"Tracked event {message.name} for {message.identifier}"
    if message.kind in VIEW_EVENTS:
        return f"Tracked {VIEW_EVENTS[message.kind][0]} for {message.identifier}"
    return f"Registered device for {message.identifier}"


def send_failover_allowed(result: Response | Failure) -> bool:
    """The send-safe rule: try another host only if this one provably never got the request."""
    if isinstance(result, Failure):
        return not result.maybe_received
    return result.status in _NEVER_REACHED_STATUSES


def failover_allowed(request: Request, result: Response | Failure) -> bool:
    """Person calls move on after any failure or retryable status; sends only by the
    send-safe rule."""
    if request.send_safe:
        return send_failover_allowed(result)
    return isinstance(result, Failure) or classify_status(result.status) == "retry"


class Gateway:
    """The OpenCDP gateway as a ``Destination``: one request per message, failover hosts."""

    name = NAME
    prefix = "[CDP]"
    batched = False

    def __init__(self, hosts: tuple[str, ...], api_key: str) -> None:
        self.hosts = hosts
        self._auth = {"Authorization": api_key, "Content-Type": "application/json"}

    def request(self, request: Request) -> Request:
        """Address ``request`` to the primary host, with credentials."""
        request.base = self.hosts[0]
        request.headers.update(self._auth)
        return request

    def encode(self, items: list[Leased]) -> tuple[list[Request], list[Dead]]:
        requests: list[Request] = []
        refused: list[Dead] = []
        for item in items:
            if item.message.kind not in SUPPORTED_KINDS:
                refused.append(Dead([item], f"the OpenCDP gateway has no endpoint for "
                                            f"{item.message.kind!r}"))
                continue
            requests.append(self.request(encode(item)))
        return requests, refused

    def classify(self, request: Request, result: Response | Failure, now: float) -> list[Outcome]:
        return classify(request, result, now)

    def failover(self, request: Request, result: Response | Failure) -> str | None:
        if isinstance(result, Response) and 200 <= result.status < 300:
            return None
        try:
            index = self.hosts.index(request.base)
        except ValueError:
            return None
        if index + 1 >= len(self.hosts) or not failover_allowed(request, result):
            return None
        return self.hosts[index + 1]

    def probe(self) -> Request:
        return self.request(Request("gateway", "GET", PING_PATH, None, []))

    def send(self, channel: str, body: Mapping[str, Any]) -> Request:
        """A transactional send: never batched, never retried, send-safe failover."""
        return self.request(Request("gateway", "POST", f"/v1/send/{channel}",
                                    orjson.dumps(body), [], send_safe=True))

    def describe(self, message: Message) -> str:
        return describe(message)

    def explain(self, response: Response) -> str | None:
        if response.status in (401, 403):
            return (f"OCDP305 HTTP {response.status}: the OpenCDP gateway refused the API key "
                    "(cdp_api_key). Messages are dead-lettered; replay them once the key is "
                    "fixed.")
        return None


# --- transactional sends ---------------------------------------------------------------

_EMAIL_RE: Final = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
_PHONE_RE: Final = re.compile(r"^\+?[1-9]\d{1,14}$")
_SLOT_RE: Final = re.compile(r"^[1-9]\d*$")
_B64_STD: Final = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_B64_URL: Final = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")
MAX_ATTACHMENTS: Final = 5
MAX_ATTACHMENT_BYTES: Final = 2 * 1024 * 1024
UNSUPPORTED_SEND_FIELDS: Final = (
    "send_at",
    "send_to_unsubscribed",
    "tracked",
    "disable_css_preprocessing",
    "headers",
    "disable_message_retention",
    "queue_draft",
)
_ALLOWED: Final[dict[str, frozenset[str]]] = {
    "email": frozenset(
        {
            "to", "identifiers", "transactional_message_id", "subject", "from", "body",
            "body_plain", "body_amp", "message_data", "reply_to", "preheader", "language",
            "bcc", "cc", "headers", "attachments", "send_at", "fake_bcc",
            "disable_message_retention", "send_to_unsubscribed", "queue_draft",
            "disable_css_preprocessing", "tracked",
        }
    ),
    "push": frozenset(
        {
            "identifiers", "transactional_message_id", "title", "body", "message_data",
            "send_at", "send_to_unsubscribed", "tracked", "disable_css_preprocessing",
            "headers", "disable_message_retention", "queue_draft", "language",
        }
    ),
    "sms": frozenset(
        {
            "identifiers", "transactional_message_id", "to", "from", "body", "message_data",
            "send_at", "send_to_unsubscribed", "tracked", "disable_css_preprocessing",
            "headers", "disable_message_retention", "queue_draft", "language",
        }
    ),
    "whatsapp": frozenset(
        {"identifiers", "transactional_message_id", "to", "message_data", "template_variables"}
    ),
}


def _fail(message: str, field: str) -> ValidationError:
    return ValidationError(message, field=field, code="OCDP150")


def _identifiers(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail("identifiers must be an object such as {'id': 'user_123'}", "identifiers")
    present = {k: v for k, v in value.items() if v not in (None, "")}
    if len(present) != 1 or next(iter(present)) not in ("id", "email", "cdp_id"):
        raise _fail("identifiers must contain exactly one of: id, email, or cdp_id", "identifiers")
    key, val = next(iter(present.items()))
    if key == "email" and not (isinstance(val, str) and _EMAIL_RE.match(val)):
        raise _fail("Invalid email address format", "identifiers.email")
    return {key: val}


def _email(value: object, field: str) -> None:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL_RE.match(value):
        raise _fail("Invalid email address format", field)


def _phone(value: object, field: str) -> None:
    if not isinstance(value, str) or not _PHONE_RE.match(value):
        raise _fail("Phone number must be in international format (e.g., +1234567890)", field)


def _attachments(value: object) -> None:
    if not isinstance(value, Mapping):
        raise _fail("attachments must be an object of {filename: base64}", "attachments")
    if len(value) > MAX_ATTACHMENTS:
        raise _fail(f"attachments may contain at most {MAX_ATTACHMENTS} files", "attachments")
    total = 0
    for name, data in value.items():
        if not isinstance(name, str) or not name.strip() or any(
            bad in name for bad in ("/", "\\", "..")
        ):
            raise _fail(f"attachment filename {name!r} is not allowed", "attachments")
        compact = "".join(data.split()) if isinstance(data, str) else ""
        std = _B64_STD.match(compact)
        if not compact or not (std or _B64_URL.match(compact)):
            raise _fail(f'attachment "{name}" must be a valid base64 string', "attachments")
        padded = compact + "=" * (-len(compact) % 4)
        try:
            raw = (
                base64.b64decode(padded, validate=True)
                if std
                else base64.urlsafe_b64decode(padded)
            )
        except (binascii.Error, ValueError):
            raise _fail(
                f'attachment "{name}" must be a valid base64 string', "attachments"
            ) from None
        total += len(raw)
    if total > MAX_ATTACHMENT_BYTES:
        raise _fail(
            f"attachments decoded size exceeds {MAX_ATTACHMENT_BYTES} bytes (2 MB)", "attachments"
        )


def build_send(channel: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a transactional send the way the gateway's SDKs do and return its wire body.

    Absent (None) fields are left out. Raises ValidationError (code OCDP150) naming the field.
    """
    if channel not in _ALLOWED:
        raise _fail(f"unknown channel {channel!r}", "channel")
    body = {k: v for k, v in fields.items() if v is not None}
    unknown = sorted(set(body) - _ALLOWED[channel])
    if unknown:
        raise _fail(f"{channel} sends do not take {', '.join(unknown)}", unknown[0])
    body["identifiers"] = _identifiers(body.get("identifiers"))
    template = body.get("transactional_message_id")
    if template is not None:
        if isinstance(template, bool) or not isinstance(template, (str, int)):
            raise _fail("transactional_message_id must be a string or an integer",
                        "transactional_message_id")
        body["transactional_message_id"] = str(template)
    if "message_data" in body and not isinstance(body["message_data"], Mapping):
        raise _fail("message_data must be an object", "message_data")
    for text in ("body", "body_amp", "body_plain"):
        if text in body and (not isinstance(body[text], str) or not body[text].strip()):
            raise _fail(f"{text} cannot be empty if provided", text)
    if "send_at" in body and (
        isinstance(body["send_at"], bool) or not isinstance(body["send_at"], int)
        or body["send_at"] < 0
    ):
        raise _fail("send_at must be a positive integer", "send_at")
    if channel == "email":
        if "to" not in body:
            raise _fail("to is required", "to")
        _email(body["to"], "to")
        for single in ("from", "reply_to"):
            if single in body:
                _email(body[single], single)
        for many in ("cc", "bcc"):
            if many in body:
                if not isinstance(body[many], list):
                    raise _fail(f"{many} must be a list of addresses", many)
                for address in body[many]:
                    _email(address, many)
        if template is None:
            missing = [f for f in ("body", "subject", "from") if f not in body]
            if missing:
                raise _fail(
                    "When not using a template: "
                    + ", ".join(f"{f} is required when not using a template" for f in missing),
                    missing[0],
                )
        if "attachments" in body:
            _attachments(body["attachments"])
        if "headers" in body and not isinstance(body["headers"], (Mapping, str)):
            raise _fail("headers must be an object (or a JSON string)", "headers")
    elif channel == "push":
        if template is None:
            raise _fail("transactional_message_id is required for push", "transactional_message_id")
    elif channel == "sms":
        if template is None and "body" not in body:
            raise _fail("body is required when not using a template", "body")
        for phone in ("to", "from"):
            if phone in body:
                _phone(body[phone], phone)
    else:  # whatsapp
        if template is None:
            raise _fail("transactional_message_id is required for whatsapp",
                        "transactional_message_id")
        if "to" in body:
            _phone(body["to"], "to")
        variables = body.get("template_variables")
        if variables is not None:
            if not isinstance(variables, Mapping):
                raise _fail("template_variables must be an object", "template_variables")
            for section, slots in variables.items():
                if section not in ("header", "body", "button"):
                    raise _fail(
                        f"template_variables keys must be header, body or button, got {section!r}",
                        "template_variables",
                    )
                if not isinstance(slots, Mapping):
                    raise _fail(f"template_variables.{section} must be an object",
                                f"template_variables.{section}")
                for key in slots:
                    if not isinstance(key, str) or not _SLOT_RE.match(key):
                        raise _fail(
                            f"template_variables.{section} keys must be positional slot numbers "
                            f'("1", "2", ...), got "{key}"',
                            f"template_variables.{section}",
                        )
    return body


def from_config(config: ClientConfig) -> Gateway:
    """Every client writes to the gateway: it is the primary destination."""
    return Gateway(config.cdp_hosts, config.cdp_api_key)


# Bit 1 since the first queue file: fixed, so files and streams written before stay readable.
registry.register(NAME, from_config, bit=1, primary=True)
