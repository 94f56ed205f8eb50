"""OCDP207: a client built per request, per task run or per loop iteration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from .. import sdk
from ..analysis import ModuleModel
from ..model import Severity
from ..rule import Hit, PythonRule

__all__ = ["ClientPerRequest"]


class ClientPerRequest(PythonRule):
    """A client constructed inside a request handler, a background task or a loop.

    Each new client opens new connections (TLS handshakes on every request) and, for opencdp,
    starts its own delivery thread and queue, so nothing is pooled, batched or rate-limited
    across calls. Build one client when the application starts (module level, app factory or
    lifespan) and reuse it.
    """

    code = "OCDP207"
    name = "client-per-request"
    severity = Severity.WARNING
    message = "client built per request or iteration; build one client at start-up and reuse it"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
from fastapi import FastAPI
from opencdp import AsyncClient

app = FastAPI()
client = AsyncClient.from_env()


@app.post("/signup")
async def signup(user_id: str, email: str) -> dict[str, bool]:
    await client.identify(user_id, {"email": email})
    return {"ok": True}
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
import os

from customerio import CustomerIO
from flask import Flask

app = Flask(__name__)


@app.route("/signup", methods=["POST"])
def signup():
    cio = CustomerIO(os.environ["CIO_SITE_ID"], os.environ["CIO_TRACK_KEY"])  # OCDP207
    cio.identify(id="42", email="ada@example.com")  # OCDP208
    return {"ok": True}
""",
        """\
from opencdp import Client


def sync_people(people) -> None:
    for person in people:
        with Client.from_env() as client:  # OCDP207
            client.identify(person.id, {"email": person.email})
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        for call, qualified, _scope in model.constructor_calls():
            owner, _, method = qualified.rpartition(".")
            built = qualified in sdk.CLIENT_CLASSES or (
                method in sdk.FACTORY_METHODS and owner in sdk.CLIENT_CLASSES
            )
            if not built:
                continue
            context = model.context(call)
            name = qualified.rsplit(".", 2)[-2] if method in sdk.FACTORY_METHODS else (
                qualified.rsplit(".", 1)[-1]
            )
            function = context.function.name if context.function is not None else ""
            if context.handler == "web":
                where = f"request handler `{function}`"
            elif context.handler == "task":
                where = f"task `{function}`"
            elif context.loops:
                where = "a loop"
            else:
                continue
            yield self.hit(
                call,
                f"`{name}` built inside {where}, so nothing is pooled or batched across calls; "
                "build one client at start-up and reuse it",
            )
