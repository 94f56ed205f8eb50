"""cdp-python-sdk's own checks, run first so its errors keep their messages and fields.

opencdp's checks run after these and catch more (addresses, templates, pitfalls).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import CDPValidationError
from .models import WhatsAppPayload

__all__ = ["check_attachments", "check_whatsapp", "event_name", "identifier", "properties"]

_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
_PHONE = re.compile(r"^\+?[1-9]\d{1,14}$")
_SLOT = re.compile(r"^[1-9]\d*$")
_SECTIONS = ("header", "body", "button")
MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024
_MAX_ENCODED = -(-MAX_ATTACHMENT_BYTES // 3) * 4
# One alphabet (standard or url-safe), padding optional and only at the end.
_BASE64 = re.compile(
    r"(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?")


def identifier(value: object) -> str:
    if value is None or str(value).strip() == "":
        raise CDPValidationError("Identifier cannot be empty", "identifier")
    text = str(value).strip()
    if _EMAIL.match(text):
        raise CDPValidationError("Identifier must not be an email address", "identifier")
    return text


def event_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CDPValidationError("Event name cannot be empty", "eventName")
    return value.strip()


def properties(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CDPValidationError("Properties must be a dictionary", "properties")
    return value


def check_whatsapp(payload: WhatsAppPayload) -> None:
    who = payload.identifiers
    if len([v for v in (who.id, who.email, who.cdp_id) if v not in (None, "")]) != 1:
        raise CDPValidationError(
            "identifiers must contain exactly one of: id, email, or cdp_id", "identifiers")
    if str(payload.transactional_message_id).strip() == "":
        raise CDPValidationError("transactional_message_id is required",
                                 "transactional_message_id")
    if payload.to is not None and not _PHONE.match(payload.to):
        raise CDPValidationError(
            "Phone number must be in international format (e.g., +1234567890)", "to")
    for section, slots in (payload.template_variables or {}).items():
        if section not in _SECTIONS:
            raise CDPValidationError(
                "template_variables may only contain header, body, and button",
                "template_variables")
        for slot in slots:
            if not _SLOT.match(slot):
                raise CDPValidationError(
                    f"template_variables.{section} keys must be positional slot numbers "
                    f'("1", "2", ...), got "{slot}"', "template_variables")


def _too_big() -> CDPValidationError:
    return CDPValidationError(
        f"attachments decoded size exceeds {MAX_ATTACHMENT_BYTES} bytes (2 MB)", "attachments")


def check_attachments(attachments: object) -> None:
    if attachments is None:
        return
    if not isinstance(attachments, dict):
        raise CDPValidationError("attachments must be an object", "attachments")
    if len(attachments) > MAX_ATTACHMENTS:
        raise CDPValidationError(f"attachments may contain at most {MAX_ATTACHMENTS} files",
                                 "attachments")
    total = 0
    for name, content in attachments.items():
        if not name or "/" in name or "\\" in name or ".." in name:
            raise CDPValidationError(f"invalid attachment filename: {name or '(empty)'}",
                                     "attachments")
        if not isinstance(content, str) or content == "":
            raise CDPValidationError(f'attachment "{name}" must be a non-empty base64 string',
                                     "attachments")
        text = re.sub(r"\s", "", content)
        if len(text) > _MAX_ENCODED:
            raise _too_big()
        mixed = bool(re.search(r"[+/]", text)) and bool(re.search(r"[-_]", text))
        if not text or not _BASE64.fullmatch(text) or mixed:
            raise CDPValidationError(f'attachment "{name}" must be a valid base64 string',
                                     "attachments")
        total += len(text.rstrip("=")) * 3 // 4
        if total > MAX_ATTACHMENT_BYTES:
            raise _too_big()
