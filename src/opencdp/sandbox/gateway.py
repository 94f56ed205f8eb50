"""The OpenCDP data gateway (``/gateway/data-gateway/v1/...``).

There is no published server spec, so the rules are the union of what the official SDKs
check before sending (spec/opencdp-gateway.md §5), enforced server-side so that a client
that skips them is caught here. Errors are ``{"message": ...}`` (what every SDK reads).
Person calls answer ``{"status": "ok"}``; sends answer ``{"id": <ULID>, "status": "queued"}``
(the real gateway's "transactional execution record" fields are unknown).

The ``Idempotency-Key`` header is not used to de-duplicate (the real gateway's behaviour is
unknown), but a repeated key is counted in ``duplicates`` so tests can see retries.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Final

from ..message import new_ulid, ulid_str
from .http import Reject, Request, Response, json_response
from .state import State
from .store import ServiceStore
from .validate import check_obj, check_timestamp

__all__ = ["GATEWAY_PREFIX", "GatewayAPI"]

GATEWAY_PREFIX: Final = "/gateway/data-gateway"
_P: Final = len(GATEWAY_PREFIX)
EMAIL_RE: Final = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
PHONE_RE: Final = re.compile(r"^\+?[1-9]\d{1,14}$")
SLOT_RE: Final = re.compile(r"^[1-9]\d*$")
PLATFORMS: Final = ("android", "ios", "web")
SEND_IDS: Final = ("id", "email", "cdp_id")
MAX_ATTACHMENTS: Final = 5
MAX_ATTACHMENT_BYTES: Final = 2 * 1024 * 1024
WHATSAPP_KEYS: Final = frozenset({"identifiers", "transactional_message_id", "to",
                                  "message_data", "template_variables"})
_OK: Final = b'{"status":"ok"}'
_JSON: Final = [(b"content-type", b"application/json")]


def _identifier(body: dict[str, Any]) -> str:
    value = body.get("identifier")
    if type(value) is int:
        value = str(value)
    if type(value) is not str or not value.strip():
        raise Reject(400, "invalid_identifier", "Identifier cannot be empty", "identifier")
    value = value.strip()
    if len(value) > 255:
        raise Reject(400, "limit_exceeded", "identifier must be at most 255 characters",
                     "identifier")
    if "@" in value and EMAIL_RE.match(value):
        raise Reject(400, "invalid_identifier", "Identifier must not be an email address",
                     "identifier")
    return value


def _properties(body: dict[str, Any], key: str = "properties") -> dict[str, Any]:
    props = body.get(key)
    if props is None:
        return {}
    if type(props) is not dict:
        raise Reject(400, "invalid_type", f"{key.capitalize()} must be a dictionary", key)
    return props


def _send_identifiers(body: dict[str, Any]) -> dict[str, Any]:
    ids = body.get("identifiers")
    if type(ids) is not dict:
        raise Reject(400, "missing_field", "identifiers must contain exactly one of: id, email, "
                     "or cdp_id", "identifiers")
    present = [k for k in SEND_IDS if ids.get(k) not in (None, "")]
    if len(present) != 1 or len(ids) != 1:
        raise Reject(400, "invalid_identifier", "identifiers must contain exactly one of: id, "
                     "email, or cdp_id", "identifiers")
    return ids


def _email(value: Any, field: str) -> None:
    if type(value) is not str or not EMAIL_RE.match(value.strip()):
        raise Reject(400, "invalid_email", f"Invalid email address format ({field})", field)


def _phone(value: Any, field: str) -> None:
    if type(value) is not str or not PHONE_RE.match(value):
        raise Reject(400, "invalid_phone", "Phone number must be in international format "
                     "(e.g., +1234567890)", field)


def _template_id(body: dict[str, Any], required: bool) -> Any:
    tid = body.get("transactional_message_id")
    if tid is None or tid == "":
        if required:
            raise Reject(400, "missing_field", "transactional_message_id is required",
                         "transactional_message_id")
        return None
    if type(tid) not in (str, int):
        raise Reject(400, "invalid_type", "transactional_message_id must be a string or number",
                     "transactional_message_id")
    return tid


def _common(body: dict[str, Any], strict: bool) -> None:
    if body.get("send_at") is not None:
        check_timestamp(body["send_at"], "send_at", strict)
    if body.get("message_data") is not None:
        check_obj(body["message_data"], "message_data")
    for name in ("body", "amp_body", "plaintext_body", "body_amp", "body_plain"):
        value = body.get(name)
        if value is not None and (type(value) is not str or not value.strip()):
            raise Reject(400, "invalid_value", f"{name} cannot be empty if provided", name)


def _b64_size(value: Any, name: str) -> int:
    if type(value) is not str or not value.strip():
        raise Reject(400, "invalid_attachment", f'attachment "{name}" must be a valid base64 '
                     "string", "attachments")
    text = "".join(value.split())
    urlsafe = "-" in text or "_" in text
    if urlsafe and ("+" in text or "/" in text):
        raise Reject(400, "invalid_attachment", f'attachment "{name}" must be a valid base64 '
                     "string", "attachments")
    text += "=" * (-len(text) % 4)
    try:
        raw = (base64.urlsafe_b64decode(text) if urlsafe
               else base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise Reject(400, "invalid_attachment", f'attachment "{name}" must be a valid base64 '
                     "string", "attachments") from None
    return len(raw)


def _attachments(value: Any) -> None:
    if value is None:
        return
    if type(value) is not dict:
        raise Reject(400, "invalid_type", "attachments must be an object of filename: base64",
                     "attachments")
    if len(value) > MAX_ATTACHMENTS:
        raise Reject(400, "limit_exceeded", "attachments may contain at most 5 files",
                     "attachments")
    total = 0
    for name, content in value.items():
        if not name.strip() or "/" in name or "\\" in name or ".." in name:
            raise Reject(400, "invalid_attachment", f"attachment filename {name!r} is not "
                         "allowed", "attachments")
        total += _b64_size(content, name)
    if total > MAX_ATTACHMENT_BYTES:
        raise Reject(413, "too_large", "attachments decoded size exceeds 2097152 bytes (2 MB)",
                     "attachments")


class GatewayAPI:
    """Routes ``/gateway/data-gateway/v1/*``."""

    def __init__(self, state: State) -> None:
        self.state = state

    def handle(self, req: Request) -> Response:
        state = self.state
        st = state.store.opencdp
        if req.authorization != state.cdp_auth:
            return self._unauthorized(st, req)
        limit = state.rate_limit("opencdp")
        if limit:
            wait = state.windows["opencdp"].check(state.clock.monotonic(), limit)
            if wait:
                st.reject("rate_limited")
                return json_response(429, {"message": "Too many requests"},
                                     [(b"retry-after", str(max(1, round(wait + 0.4999))).encode())])
        key = req.idempotency_key
        if key is not None:
            if key in st.idempotency_keys:
                st.duplicates += 1
            else:
                st.idempotency_keys.add(key)
        try:
            return self._route(st, req)
        except Reject as r:
            st.reject(r.reason)
            return json_response(r.status, {"message": r.message, "field": r.field})

    def _unauthorized(self, st: ServiceStore, req: Request) -> Response:
        auth = req.authorization
        if not auth:
            msg = "Missing API key: send it raw in the Authorization header"
        elif auth.lower().startswith("bearer ") and auth[7:] == self.state.cdp_auth:
            msg = "Invalid API key: send the raw key in Authorization, without 'Bearer '"
        else:
            msg = "Invalid API key"
        st.reject("unauthorized")
        return json_response(401, {"message": msg})

    def _route(self, st: ServiceStore, req: Request) -> Response:
        path = req.path[_P:]
        if req.method == "GET":
            if path == "/v1/health/ping":
                return 200, _OK, _JSON
            raise Reject(404, "not_found", f"Cannot GET {path}")
        if req.method != "POST":
            raise Reject(404, "not_found", f"Cannot {req.method} {path}")
        if path == "/v1/persons/identify":
            return self._identify(st, req)
        if path == "/v1/persons/track":
            return self._track(st, req)
        if path == "/v1/persons/registerDevice":
            return self._register_device(st, req)
        if path.startswith("/v1/send/"):
            channel = path[9:]
            if channel in ("email", "push", "sms", "whatsapp"):
                return self._send(st, req, channel)
        raise Reject(404, "not_found", f"Cannot POST {path}")

    def _body(self, req: Request) -> dict[str, Any]:
        return check_obj(req.json(), "body")

    def _identify(self, st: ServiceStore, req: Request) -> Response:
        body = self._body(req)
        ident = _identifier(body)
        props = _properties(body)
        person = st.get_or_create("id", ident)
        person.attributes.update(props)
        st.accepted += 1
        return 200, _OK, _JSON

    def _track(self, st: ServiceStore, req: Request) -> Response:
        body = self._body(req)
        ident = _identifier(body)
        name = body.get("eventName")
        if type(name) is not str or not name.strip():
            raise Reject(400, "missing_field", "Event name cannot be empty", "eventName")
        if len(name) > 255:
            raise Reject(400, "limit_exceeded", "eventName must be at most 255 characters",
                         "eventName")
        props = _properties(body)
        eid: str | int = req.idempotency_key or new_ulid()  # text made on inspection
        st.get_or_create("id", ident).events.append(
            (name.strip(), eid, int(self.state.clock.time()), props, "event"))
        st.events += 1
        st.accepted += 1
        return 200, _OK, _JSON

    def _register_device(self, st: ServiceStore, req: Request) -> Response:
        body = self._body(req)
        ident = _identifier(body)
        device_id = body.get("deviceId")
        if type(device_id) is not str or not device_id.strip():
            raise Reject(400, "missing_field", "deviceId is required", "deviceId")
        if body.get("platform") not in PLATFORMS:
            raise Reject(400, "invalid_enum", "platform must be one of android, ios, web",
                         "platform")
        if not body.get("fcmToken") and not body.get("apnToken"):
            raise Reject(400, "missing_field", "fcmToken or apnToken is required", "fcmToken")
        for key in ("fcmToken", "apnToken", "name", "osVersion", "model", "appVersion",
                    "last_active_at"):
            if body.get(key) is not None and type(body[key]) is not str:
                raise Reject(400, "invalid_type", f"{key} must be a string", key)
        device = {k: v for k, v in body.items() if k != "identifier"}
        device["id"] = device_id
        if body.get("attributes") is not None:
            _properties(body, "attributes")
        st.get_or_create("id", ident).devices[device_id] = device
        st.accepted += 1
        return 200, _OK, _JSON

    def _send(self, st: ServiceStore, req: Request, channel: str) -> Response:
        body = self._body(req)
        ids = _send_identifiers(body)
        if channel == "email":
            self._check_email(body)
        elif channel == "push":
            _template_id(body, required=True)
        elif channel == "sms":
            tid = _template_id(body, required=False)
            if tid is None and not body.get("body"):
                raise Reject(400, "missing_field", "body is required when not using a template",
                             "body")
            for name in ("to", "from"):
                if body.get(name) is not None:
                    _phone(body[name], name)
        else:
            self._check_whatsapp(body)
        _common(body, self.state.config.strict)
        send_id = ulid_str(new_ulid())
        received = int(self.state.clock.time())
        st.sends.append({"id": send_id, "channel": channel, "received_at": received,
                         "identifiers": ids, "idempotency_key": req.idempotency_key,
                         "body": body})
        st.accepted += 1
        return json_response(200, {"id": send_id, "status": "queued"})

    def _check_email(self, body: dict[str, Any]) -> None:
        to = body.get("to")
        if to is None or to == "":
            raise Reject(400, "missing_field", "to is required", "to")
        _email(to, "to")
        if _template_id(body, required=False) is None:
            missing = [f"{k} is required when not using a template"
                       for k in ("body", "subject", "from") if not body.get(k)]
            if missing:
                raise Reject(400, "missing_field",
                             "When not using a template: " + ", ".join(missing), "body")
        for name in ("from", "reply_to"):
            if body.get(name) is not None:
                _email(body[name], name)
        for name in ("cc", "bcc"):
            value = body.get(name)
            if value is not None:
                if type(value) is not list:
                    raise Reject(400, "invalid_type", f"{name} must be a list of addresses", name)
                for item in value:
                    _email(item, name)
        headers = body.get("headers")
        if headers is not None and type(headers) not in (dict, str):
            raise Reject(400, "invalid_type", "headers must be an object", "headers")
        _attachments(body.get("attachments"))

    def _check_whatsapp(self, body: dict[str, Any]) -> None:
        extra = sorted(set(body) - WHATSAPP_KEYS)
        if extra:
            raise Reject(400, "unknown_field", f"unsupported field(s) for WhatsApp: "
                         f"{', '.join(extra)}", extra[0])
        tid = _template_id(body, required=True)
        if type(tid) is not str:
            raise Reject(400, "invalid_type", "transactional_message_id must be a string",
                         "transactional_message_id")
        if body.get("to") is not None:
            _phone(body["to"], "to")
        tv = body.get("template_variables")
        if tv is not None:
            check_obj(tv, "template_variables")
            for section, slots in tv.items():
                if section not in ("header", "body", "button"):
                    raise Reject(400, "invalid_value", "template_variables keys must be header, "
                                 "body or button", "template_variables")
                check_obj(slots, f"template_variables.{section}")
                for k in slots:
                    if not SLOT_RE.match(k):
                        raise Reject(400, "invalid_value", f"template_variables.{section} keys "
                                     f'must be positional slot numbers ("1", "2", ...), got "{k}"',
                                     f"template_variables.{section}")

