"""OCDP208: waiting for a delivery inside a web request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from .. import sdk
from ..analysis import ModuleModel
from ..model import Severity
from ..rule import Hit, PythonRule

__all__ = ["BlockingCallInHandler"]


class BlockingCallInHandler(PythonRule):
    """A request handler that waits for Customer.io or the gateway before it responds.

    A blocking client (``customerio``, an awaited ``cdp_client`` call, ``asyncio.to_thread``
    around one, opencdp with ``delivery="blocking"`` or ``flush()``) adds the provider's
    latency, and its outages, to every response. Use ``opencdp.Client``/``AsyncClient`` in
    its default background mode (the call returns once the message is queued), or hand the
    work to a task queue or ``BackgroundTasks``.
    """

    code = "OCDP208"
    name = "blocking-call-in-handler"
    severity = Severity.WARNING
    message = "request handler waits for delivery; use background delivery or a task queue"
    VALID: ClassVar[tuple[str, ...]] = (
        """\
import os

from customerio import CustomerIO
from fastapi import BackgroundTasks, FastAPI

app = FastAPI()
cio = CustomerIO(os.environ["CUSTOMERIO_SITE_ID"], os.environ["CUSTOMERIO_TRACK_API_KEY"])


@app.post("/signup")
async def signup(user_id: str, email: str, tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(cio.identify, id=user_id, email=email)
    return {"ok": True}
""",
        """\
from django.http import JsonResponse
from opencdp import Client

client = Client.from_env()


def signup(request):
    client.identify(request.POST["user_id"], {"email": request.POST["email"]})
    return JsonResponse({"ok": True})
""",
    )
    INVALID: ClassVar[tuple[str, ...]] = (
        """\
import os

from cdp_client import CDPClient, CDPConfig
from fastapi import FastAPI

app = FastAPI()
cdp = CDPClient(CDPConfig(cdp_api_key=os.environ["CDP_API_KEY"]))


@app.post("/signup")
async def signup(user_id: str, email: str) -> dict[str, bool]:
    await cdp.identify(user_id, {"email": email})  # OCDP208
    return {"ok": True}
""",
        """\
from django.http import JsonResponse
from opencdp import Client

client = Client.from_env()


def signup(request):
    client.identify(request.POST["user_id"], {"email": request.POST["email"]})
    client.flush(timeout=5)  # OCDP208
    return JsonResponse({"ok": True})
""",
    )

    def check(self, model: ModuleModel) -> Iterator[Hit]:
        for call in model.sdk_calls():
            if call.op not in sdk.NETWORK_OPS and call.op != "flush":
                continue
            context = model.context(call.node)
            if context.handler != "web" or context.function is None:
                continue
            waits_for_io = call.kind.blocking or call.op == "flush"
            if not waits_for_io:
                continue
            if (call.kind.awaitable or call.offloaded) and not context.awaited:
                continue
            target = f"{call.kind.label}.{call.method}()"
            yield self.hit(
                call.node,
                f"request handler `{context.function.name}` waits for `{target}`; use "
                "background delivery (opencdp.Client) or a task queue",
            )
