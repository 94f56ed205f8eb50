"""OCDP212: people identified by something that can change."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import ClassVar

from ..analysis import ModuleModel
from ..model import Severity
from ..rule import Hit, PythonRule
from ._common import terminal_name

__all__ = ["MutableUserId"]

_MUTABLE = frozenset(
    {"email", "email_address", "username", "user_name", "phone", "phone_number", "mobile",
     "handle"}
)


class MutableUserId(PythonRule):
    """A user id that is an email address, username or phone number.

    When the person changes their email, the next identify creates a second person and the
    history splits in two. Identify by an immutable id (the database primary key or a UUID)
    and send the email as an attribute.
    """

    code = "OCDP212"
    name = "mutable-user-id"
    severity = Severity.WARNING
    message = "user id can change (email, username, phone); identify by an immutable database id"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()


def sign_up(user) -> None:
    client.identify(str(user.pk), {"email": user.email})
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()


def sign_up(user) -> None:
    client.identify(user.email, {"plan": user.plan})  # OCDP212
    client.track("ada@example.com", "signed_up")  # OCDP212
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        for call in model.sdk_calls():
            user = call.args.get("user_id")
            if user is None:
                continue
            value = model.value_of(user, call.scope)
            name = terminal_name(user) if not isinstance(user, ast.Call) else None
            literal = (
                value.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str)
                else None
            )
            if (name is not None and name.lower() in _MUTABLE) or (literal and "@" in literal):
                shown = ast.unparse(user)
                yield self.hit(
                    user,
                    f"user id `{shown}` can change; identify people by an immutable id (the "
                    "database primary key) and send it as an attribute instead",
                )
