"""OCDP206: event names that are not snake_case."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar

from ..analysis import ModuleModel
from ..model import Severity
from ..rule import Hit, PythonRule
from ._common import SNAKE_CASE, event_arguments

__all__ = ["EventNameCase", "to_snake_case"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^A-Za-z0-9]+")


def to_snake_case(name: str) -> str:
    """``UserSignedUp``, ``user-signed-up`` and ``User Signed Up`` -> ``user_signed_up``."""
    spaced = _CAMEL.sub("_", name.strip())
    return _SEPARATORS.sub("_", spaced).strip("_").lower()


class EventNameCase(PythonRule):
    """A literal event name that is not snake_case.

    ``UserSignedUp``, ``user-signed-up`` and ``user_signed_up`` are three different events to
    Customer.io; campaigns and segments built on one miss the others. Use one convention,
    snake_case object_action names such as ``user_signed_up``.
    """

    code = "OCDP206"
    name = "event-name-case"
    severity = Severity.WARNING
    message = "event name is not snake_case; use lower-case words joined by underscores"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()
SIGNED_UP = "user_signed_up"


def sign_up(user_id: str) -> None:
    client.track(user_id, SIGNED_UP)
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
from opencdp import Client

client = Client.from_env()
SIGNED_UP = "UserSignedUp"


def sign_up(user_id: str) -> None:
    client.track(user_id, SIGNED_UP)  # OCDP206
    client.track(user_id, "Order Completed")  # OCDP206
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        for call, event in event_arguments(model):
            literal = model.string_value(event, call.scope)
            if literal is None or SNAKE_CASE.fullmatch(literal):
                continue
            suggestion = to_snake_case(literal)
            advice = f"use {suggestion!r}" if SNAKE_CASE.fullmatch(suggestion) else (
                "use lower-case words joined by underscores"
            )
            yield self.hit(event, f"event name {literal!r} is not snake_case; {advice}")
