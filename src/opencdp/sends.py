"""The fields of each transactional send, written once for both facades and type checkers.

``from_`` stands for the wire's ``from`` (a Python keyword). The gateway validates the same
rules again; ``destinations.opencdp.build_send`` checks them before anything is sent.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TypedDict

if sys.version_info >= (3, 11):
    from typing import Required
else:  # pragma: no cover
    from typing_extensions import Required

__all__ = ["EmailSend", "PushSend", "SmsSend", "WhatsAppSend", "wire_fields"]


class _Common(TypedDict, total=False):
    identifiers: Required[Mapping[str, str]]
    transactional_message_id: str | int
    message_data: Mapping[str, Any]
    send_at: int
    send_to_unsubscribed: bool
    tracked: bool
    disable_css_preprocessing: bool
    headers: Mapping[str, str] | str
    disable_message_retention: bool
    queue_draft: bool
    language: str


class EmailSend(_Common, total=False):
    to: Required[str]
    subject: str
    from_: str
    body: str
    body_plain: str
    body_amp: str
    reply_to: str
    preheader: str
    bcc: list[str]
    cc: list[str]
    fake_bcc: bool
    attachments: Mapping[str, str]


class PushSend(_Common, total=False):
    title: str
    body: str


class SmsSend(_Common, total=False):
    to: str
    from_: str
    body: str


class WhatsAppSend(TypedDict, total=False):
    identifiers: Required[Mapping[str, str]]
    transactional_message_id: Required[str | int]
    to: str
    message_data: Mapping[str, Any]
    template_variables: Mapping[str, Mapping[str, str]]


def wire_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword names to wire names (``from_`` -> ``from``)."""
    return {("from" if k == "from_" else k): v for k, v in fields.items()}
