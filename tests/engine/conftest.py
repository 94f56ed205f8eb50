"""Engine tests through an in-memory transport: no sockets, exact outcomes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from opencdp import Client, CustomerIO
from opencdp.config import BreakerConfig, RetryConfig
from opencdp.testing import Failure, MockTransport, Request, Response

Handler = Callable[[Request], "Response | Failure"]


class Recorder:
    """A ``MockTransport`` handler that answers with ``handler`` and remembers every
    exchange; the engine gets ``MockTransport(recorder)``, as users' tests would."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler or (lambda request: Response(200, b"{}", {}))
        self.requests: list[Request] = []
        self.answers: list[Response | Failure] = []

    async def __call__(self, request: Request) -> Response | Failure:
        self.requests.append(Request(request.service, request.method, request.path,
                                     request.body, list(request.items), dict(request.headers),
                                     request.base, request.send_safe))
        await asyncio.sleep(0)
        answer = self.handler(request)
        self.answers.append(answer)
        return answer

    def to(self, service: str) -> list[Request]:
        return [r for r in self.requests if r.service == service and r.items]

    def events(self) -> list[dict[str, Any]]:
        """Customer.io v2 operations accepted (answered 2xx), in order."""
        ops: list[dict[str, Any]] = []
        for r, answer in zip(self.requests, self.answers, strict=True):
            ok = isinstance(answer, Response) and 200 <= answer.status < 300
            if ok and r.service == "track" and r.path == "/api/v2/batch" and r.body:
                ops.extend(orjson.loads(r.body)["batch"])
        return ops


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def engine_client(recorder: Recorder) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(**options: Any) -> Client:
        options.setdefault("customer_io", CustomerIO("site", "track-key",
                                                     track_url="http://127.0.0.1:9"))
        options.setdefault("cdp_endpoint", "http://127.0.0.1:9/gateway/data-gateway")
        options.setdefault("cdp_fallback_endpoints", [])
        options.setdefault("retry", RetryConfig(base_delay=0.001, max_delay=0.01))
        options.setdefault("breaker", BreakerConfig(reset_timeout=0.05))
        options.setdefault("register_atexit", False)
        options.setdefault("transport", MockTransport(recorder))
        client = Client(cdp_api_key="cdp-key-for-tests", **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=2)
