"""OCDP205: personal data or ids inside event names."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import ClassVar

from ..analysis import ModuleModel
from ..model import Severity
from ..rule import Hit, PythonRule
from ._common import event_arguments, terminal_name
from .dynamic_event_name import interpolated_values

__all__ = ["PiiInEventName"]

_PATTERNS = (
    ("an email address", re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.IGNORECASE)),
    ("a phone number", re.compile(r"\+\d[\d ().-]{6,}\d|\d{3}[ .-]\d{3}[ .-]\d{4}")),
    ("a UUID", re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)),
    ("a long hexadecimal id", re.compile(r"(?<![0-9a-z])[0-9a-f]{16,}(?![0-9a-z])", re.I)),
    ("an id or number", re.compile(r"\d{4,}")),
)
_PERSONAL = frozenset(
    {"email", "email_address", "phone", "phone_number", "mobile", "first_name", "last_name",
     "full_name", "name", "username", "user_name", "address", "street", "ip", "ip_address",
     "ssn", "dob", "birthday", "birth_date", "date_of_birth"}
)


class PiiInEventName(PythonRule):
    """An event name that contains personal data or an id: an email, phone number, UUID,
    long number, or an interpolated value such as ``user.email``.

    Event names become segment and trigger names visible to everyone with workspace access,
    in exports and in URLs; personal data there cannot be deleted with the person. Keep the
    name fixed and send the value as a property.
    """

    code = "OCDP205"
    name = "pii-in-event-name"
    severity = Severity.ERROR
    message = "event name contains personal data or an id; send the value as a property"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()


def email_clicked(user_id: str, email: str) -> None:
    client.track(user_id, "email_link_clicked", {"email": email})
""",
        """\
from opencdp import Client

client = Client.from_env()


def top_ten(user_id: str) -> None:
    client.track(user_id, "top_10_viewed")
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()


def email_clicked(user_id: str, user) -> None:
    client.track(user_id, f"email_{user.email}")  # OCDP204, OCDP205
""",
        """\
from opencdp import Client

client = Client.from_env()


def invoice_paid(user_id: str) -> None:
    client.track(user_id, "invoice_20240117_paid")  # OCDP205
    client.track(user_id, "contacted_jane@example.com")  # OCDP205, OCDP206
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        for call, event in event_arguments(model):
            literal = model.string_value(event, call.scope)
            if literal is not None:
                for what, pattern in _PATTERNS:
                    if pattern.search(literal):
                        yield self.hit(
                            event,
                            f"event name {literal!r} contains {what}; keep the name fixed and "
                            "send the value as a property",
                        )
                        break
                continue
            values = interpolated_values(model.value_of(event, call.scope)) or []
            for value in values:
                name = terminal_name(value)
                if name is not None and name.lower() in _PERSONAL:
                    yield self.hit(
                        event,
                        f"event name embeds `{ast.unparse(value)}` (personal data), which "
                        "becomes a segment name; send it as a property",
                    )
                    break
