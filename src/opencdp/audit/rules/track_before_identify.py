"""OCDP203: an event tracked for a person before that person is identified."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import ClassVar

from ..analysis import ModuleModel, SdkCall
from ..model import Severity
from ..rule import Hit, PythonRule

__all__ = ["TrackBeforeIdentify"]

_TRACKING = frozenset({"track", "page"})


def _id_key(expr: ast.expr) -> str | None:
    """A comparable form of a user-id expression, when it names a stable value."""
    node = expr
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    if isinstance(node, (ast.Name, ast.Constant)):
        return ast.dump(expr)
    return None


class TrackBeforeIdentify(PythonRule):
    """An event tracked for a user id before the same function identifies that user id.

    Customer.io creates a bare person for an unknown id on the first event, so campaigns
    triggered by that event run before the person has an email or attributes, and segment
    membership flickers. Identify first, then track. Calls are compared within one function,
    in source order, by the expression used as the user id.
    """

    code = "OCDP203"
    name = "track-before-identify"
    severity = Severity.ERROR
    message = "event tracked before the person is identified; call identify() first"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()


def sign_up(user_id: str, email: str) -> None:
    client.identify(user_id, {"email": email})
    client.track(user_id, "signed_up")
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()


def sign_up(user_id: str, email: str) -> None:
    client.track(user_id, "signed_up")  # OCDP203
    client.identify(user_id, {"email": email})
""",
        """\
import os

from customerio import CustomerIO

cio = CustomerIO(os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_TRACK_API_KEY"])


def activate(account) -> None:
    cio.track(customer_id=account.owner_id, name="account_activated")  # OCDP203
    cio.identify(id=account.owner_id, email=account.owner_email)
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        groups: dict[ast.AST | None, list[SdkCall]] = {}
        for call in model.sdk_calls():
            groups.setdefault(model.enclosing_function(call.node), []).append(call)
        for calls in groups.values():
            identified_at: dict[str, list[int]] = {}
            for index, call in enumerate(calls):
                user = call.args.get("user_id")
                key = _id_key(user) if user is not None else None
                if call.op == "identify" and key is not None:
                    identified_at.setdefault(key, []).append(index)
            for index, call in enumerate(calls):
                user = call.args.get("user_id")
                if call.op not in _TRACKING or user is None:
                    continue
                key = _id_key(user)
                positions = identified_at.get(key or "", [])
                if positions and min(positions) > index:
                    yield self.hit(
                        call.node,
                        f"`{call.method}` for `{ast.unparse(user)}` runs before `identify` "
                        "for the same person; identify first so the person exists with "
                        "their attributes",
                    )
