"""OCDP211: the App API key where the Track API key belongs, or the reverse."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import ClassVar

from .. import sdk
from ..analysis import ModuleModel
from ..model import Severity
from ..rule import Hit, PythonRule

__all__ = ["WrongApiKey"]

_APP_KEY = re.compile(r"(?:^|[^a-z0-9])app_?(?:api_?)?key(?:$|[^a-z0-9])")
_TRACK_KEY = re.compile(r"(?:^|[^a-z0-9])track_?(?:api_?)?key(?:$|[^a-z0-9])")


def _mentions(expr: ast.expr, pattern: re.Pattern[str]) -> str | None:
    for node in ast.walk(expr):
        text = None
        if isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        if text and pattern.search(text.lower()):
            return text
    return None


def _argument(call: ast.Call, slot: sdk.Slot) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == slot.keyword:
            return kw.value
    if slot.position is not None and slot.position < len(call.args):
        return call.args[slot.position]
    return None


class WrongApiKey(PythonRule):
    """An App API key given where the Track API key is expected, or the reverse.

    Customer.io has two credentials: the Track API key (with the site id, for identify,
    track and devices) and the App API key (Bearer, for transactional sends and reporting).
    The wrong one fails every call with 401, which a background sender may only log. The
    rule reads the names of the variables, settings or environment variables passed.
    """

    code = "OCDP211"
    name = "wrong-api-key"
    severity = Severity.ERROR
    message = "App API key used as the Track API key (or the reverse); use the right key"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
import os

from customerio import APIClient, CustomerIO

track = CustomerIO(os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_TRACK_API_KEY"])
app = APIClient(os.environ["CUSTOMERIO_APP_API_KEY"])
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
import os

from customerio import APIClient, CustomerIO

track = CustomerIO(
    os.environ["CUSTOMERIO_SITE_ID"],
    os.environ["CUSTOMERIO_APP_API_KEY"],  # OCDP211
)
app = APIClient(os.environ["CUSTOMERIO_TRACK_API_KEY"])  # OCDP211
""",
        """\
import os

from opencdp import Client, CustomerIO

customer_io = CustomerIO(
    site_id=os.environ["CIO_SITE_ID"],
    api_key=os.environ["CIO_APP_KEY"],  # OCDP211
)
client = Client(cdp_api_key=os.environ["CDP_API_KEY"], customer_io=customer_io)
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        for call, qualified, _scope in model.constructor_calls():
            credential = sdk.CONFIG_CLASSES.get(qualified)
            if credential is None:
                continue
            cls = qualified.rsplit(".", 1)[-1]
            if credential.track_key is not None:
                arg = _argument(call, credential.track_key)
                found = _mentions(arg, _APP_KEY) if arg is not None else None
                if arg is not None and found:
                    yield self.hit(
                        arg,
                        f"`{found}` looks like the App API key, passed to {cls} as the Track "
                        "API key; identify/track need the Track API key (with the site id)",
                    )
            if credential.app_key is not None:
                arg = _argument(call, credential.app_key)
                found = _mentions(arg, _TRACK_KEY) if arg is not None else None
                if arg is not None and found:
                    yield self.hit(
                        arg,
                        f"`{found}` looks like the Track API key, passed to {cls} as the App "
                        "API key; transactional sends need the App API key",
                    )
