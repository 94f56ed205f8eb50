"""Customer.io App API transactional sends: ``/v1/send/`` + ``email``, ``push``, ``sms``,
``whatsapp``, ``in_app``, ``inbox_message``.

Bodies follow the ``sendemail``/``sendpush``/``sendsms``/``sendinapp``/``sendinbox`` schemas
of the Track OpenAPI's components; answers follow the App API: 200
``{"delivery_id", "queued_at", "send_at"?}``, errors ``{"meta": {"error": ...}}``, 413 for
attachments over 2 MB, 429 over the workspace's transactional rate limit.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any, Final

from .gateway import EMAIL_RE
from .http import Reject, Request, Response, error_response, json_response
from .state import State
from .store import ServiceStore
from .track import PLATFORMS, auth_hint
from .validate import E164, check_id, check_obj, check_str, check_timestamp

__all__ = ["AppAPI"]

MAX_RECIPIENTS: Final = 15
MAX_ATTACHMENT_BYTES: Final = 2 * 1024 * 1024
MAX_PAYLOAD: Final = 1024 * 1024
SEND_AT_HORIZON: Final = 90 * 86400
SEND_IDS: Final = ("id", "email", "cio_id")
CHANNELS: Final = ("email", "push", "sms", "whatsapp", "in_app", "inbox_message")
BOOLS: Final = ("disable_message_retention", "send_to_unsubscribed", "queue_draft",
                "auto_create", "fake_bcc", "tracked", "disable_css_preprocessing")
STRINGS: Final = ("body", "body_amp", "body_plain", "subject", "from", "language", "cc", "bcc",
                  "reply_to", "preheader", "title", "message", "image_url", "link")


def _identifiers(value: Any, required: bool) -> dict[str, Any] | None:
    if value is None:
        if required:
            raise Reject(400, "missing_field", "identifiers is required", "identifiers")
        return None
    if type(value) is not dict or len(value) != 1:
        raise Reject(400, "invalid_identifier",
                     "identifiers must hold exactly one of id, email, cio_id", "identifiers")
    ((kind, ident),) = value.items()
    if kind not in SEND_IDS:
        raise Reject(400, "invalid_identifier",
                     "identifiers must hold exactly one of id, email, cio_id", "identifiers")
    check_id(ident, f"identifiers.{kind}")
    return value


def _recipients(body: dict[str, Any]) -> int:
    total = 0
    for name in ("to", "cc", "bcc"):
        value = body.get(name)
        if value:
            total += sum(1 for part in value.split(",") if part.strip())
    return total


def _attachments(value: Any) -> int:
    """Validate and return the attachments' size in (encoded) bytes."""
    if value is None:
        return 0
    if type(value) is not dict:
        raise Reject(400, "invalid_type", "attachments must be an object of filename: base64",
                     "attachments")
    encoded = decoded = 0
    for name, content in value.items():
        if "." not in name.strip(".") or "/" in name or "\\" in name:
            raise Reject(400, "invalid_attachment",
                         f"attachment filename {name!r} must include an extension", "attachments")
        if type(content) is not str:
            raise Reject(400, "invalid_attachment", f"attachment {name!r} is not base64",
                         "attachments")
        try:
            decoded += len(base64.b64decode(content, validate=True))
        except (binascii.Error, ValueError):
            raise Reject(400, "invalid_attachment", f"attachment {name!r} is not base64",
                         "attachments") from None
        encoded += len(content)
    if decoded >= MAX_ATTACHMENT_BYTES:
        raise Reject(413, "too_large", "attachments total must be less than 2 MB",
                     "attachments")
    return encoded


class AppAPI:
    """Routes ``/v1/send/*`` (App API, Bearer auth)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def handle(self, req: Request) -> Response:
        state = self.state
        st = state.store.customerio
        channel = req.path[len("/v1/send/"):] if req.path.startswith("/v1/send/") else ""
        if channel not in CHANNELS:
            r = Reject(404, "not_found", f"no such endpoint: {req.method} {req.path}")
            st.reject(r.reason)
            return error_response(req.path, r)
        if req.method != "POST":
            r = Reject(405, "method_not_allowed", f"{req.method} is not allowed on "
                       f"{req.path}; use POST", headers=[(b"allow", b"POST")])
            st.reject(r.reason)
            return error_response(req.path, r)
        if req.authorization != state.app_auth:
            hint = self._auth_problem(req)
            if hint:
                st.reject("wrong_key_type" if "Track API" in hint else "unauthorized")
                return json_response(401, {"meta": {"error": f"Unauthorized: {hint}"}})
        wait = state.windows["app"].check(state.clock.monotonic(), state.rate_limit("customerio"))
        if wait:
            st.reject("rate_limited")
            return json_response(
                429, {"meta": {"error": "Your request is over the rate limit for "
                                        "transactional sends (100 per second)"}},
                [(b"retry-after", str(max(1, round(wait + 0.4999))).encode())])
        try:
            return self._send(st, req, channel)
        except Reject as r:
            st.reject(r.reason)
            return json_response(r.status, {"meta": {"error": r.message}})

    def _auth_problem(self, req: Request) -> str | None:
        """None when the credentials are good: the App API key as a Bearer token (scheme
        word in any case), or a service-account token with its workspace in
        ``X-Workspace-Id``; otherwise why not."""
        cfg = self.state.config
        scheme, _, token = (req.authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer":
            if token == cfg.app_key:
                return None
            if token == cfg.service_token:
                if req.workspace_id is None:
                    return ("a service-account token needs the workspace's id in the "
                            "X-Workspace-Id header")
                if req.workspace_id.strip() != str(cfg.workspace_id):
                    return "this service-account token has no access to that workspace"
                return None
        return auth_hint(req.authorization, site_id=cfg.site_id, track_key=cfg.track_key,
                         app_key=cfg.app_key, expects="app")

    def _send(self, st: ServiceStore, req: Request, channel: str) -> Response:
        body = check_obj(req.json(), "body")
        now = int(self.state.clock.time())
        tid = body.get("transactional_message_id")
        if tid is not None and (type(tid) not in (int, str) or tid == ""):
            raise Reject(400, "invalid_type", "transactional_message_id must be an integer id "
                         "or a trigger name", "transactional_message_id")
        for name in BOOLS:
            if body.get(name) is not None and type(body[name]) is not bool:
                raise Reject(400, "invalid_type", f"{name} must be a boolean", name)
        for name in STRINGS:
            if body.get(name) is not None and type(body[name]) is not str:
                raise Reject(400, "invalid_type", f"{name} must be a string", name)
        if body.get("message_data") is not None:
            check_obj(body["message_data"], "message_data")
        send_at = body.get("send_at")
        if send_at is not None:
            check_timestamp(send_at, "send_at", self.state.config.strict)
            if send_at > now + SEND_AT_HORIZON:
                raise Reject(400, "invalid_value", "send_at can be at most 90 days ahead",
                             "send_at")
        ids = _identifiers(body.get("identifiers"), required=channel != "email")
        if channel != "email" and tid is None:
            raise Reject(400, "missing_field", "transactional_message_id is required",
                         "transactional_message_id")
        attachment_bytes = 0
        if channel == "email":
            to = check_str(body.get("to"), "to")
            if not all("{{" in a or EMAIL_RE.match(_address(a)) for a in to.split(",")
                       if a.strip()):
                raise Reject(400, "invalid_email", "to must hold email addresses", "to")
            if _recipients(body) > MAX_RECIPIENTS:
                raise Reject(400, "limit_exceeded", "at most 15 recipients across to, cc and "
                             "bcc", "to")
            if tid is None:
                missing = [k for k in ("body", "subject", "from") if not body.get(k)]
                if missing:
                    raise Reject(400, "missing_field", "without a transactional_message_id, "
                                 f"{', '.join(missing)} must be given", missing[0])
            headers = body.get("headers")
            if headers is not None and type(headers) not in (dict, str):
                raise Reject(400, "invalid_type", "headers must be an object or a JSON string",
                             "headers")
            attachment_bytes = _attachments(body.get("attachments"))
        elif channel == "push":
            self._check_push(body)
        elif channel == "sms":
            to = check_str(body.get("to"), "to")
            if not (E164.match(to) or ("{{" in to and "}}" in to)):
                raise Reject(400, "invalid_phone", "to must be an E.164 phone number", "to")
        elif channel == "whatsapp" and body.get("to") is not None:
            to = check_str(body["to"], "to")
            if not (E164.match(to) or ("{{" in to and "}}" in to)):
                raise Reject(400, "invalid_phone", "to must be an E.164 phone number", "to")
        elif channel == "inbox_message" and body.get("to") is not None:
            check_str(body["to"], "to")
        if len(req.body) - attachment_bytes > MAX_PAYLOAD:
            raise Reject(413, "too_large", "the payload is larger than 1 MB (attachments "
                         "excluded)")
        delivery_id = secrets.token_urlsafe(21)
        answer: dict[str, Any] = {"delivery_id": delivery_id, "queued_at": now}
        if send_at is not None and send_at > now:
            answer["send_at"] = send_at
        st.sends.append({"delivery_id": delivery_id, "channel": channel, "received_at": now,
                         "identifiers": ids, "body": body})
        st.accepted += 1
        return json_response(200, answer)

    def _check_push(self, body: dict[str, Any]) -> None:
        if body.get("to") is not None:
            check_str(body["to"], "to")
        if body.get("sound") is not None and body["sound"] not in ("default", "none"):
            raise Reject(400, "invalid_enum", "sound must be default or none", "sound")
        for name in ("custom_data", "custom_payload"):
            if body.get(name) is not None:
                check_obj(body[name], name)
        device = body.get("custom_device")
        if device is not None:
            check_obj(device, "custom_device")
            check_str(device.get("token"), "custom_device.token")
            if device.get("platform") not in PLATFORMS:
                raise Reject(400, "invalid_enum", "custom_device.platform must be ios or android",
                             "custom_device.platform")
            if device.get("last_used") is not None:
                check_timestamp(device["last_used"], "custom_device.last_used",
                                self.state.config.strict)


def _address(item: str) -> str:
    """``"Name" <a@b.co>`` or ``a@b.co`` -> ``a@b.co``."""
    item = item.strip()
    if item.endswith(">") and "<" in item:
        return item[item.rindex("<") + 1:-1].strip()
    return item
