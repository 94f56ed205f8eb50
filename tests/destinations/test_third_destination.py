"""A third destination, defined only here through the public protocol, runs through every
queue, the breaker, retries, health and metrics without an edit to the engine.

The sink is a plain HTTP JSON endpoint served on loopback by the test (port 0, announced):
one POST carries a batch as ``{"events": [...]}``; 2xx delivers the batch, 5xx retries it,
4xx dead-letters it. The client talks to it through the default (aiohttp) transport, as it
would to any platform; the gateway's requests go to the same server, which accepts them.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from opencdp import Client, registry
from opencdp.config import BreakerConfig, ClientConfig, RateLimitConfig, RetryConfig
from opencdp.destinations.base import Dead, Delivered, Outcome, Retry
from opencdp.message import Message, new_ulid
from opencdp.outbox.base import Leased
from opencdp.wire import Failure, Request, Response
from support.servers import wait_until

SINK = "jsonsink"


class JsonSink:
    """A platform that takes batches of JSON events: everything a destination needs."""

    name = SINK
    prefix = "[Sink]"
    batched = True

    def __init__(self, base: str) -> None:
        self.base = base

    def encode(self, items: list[Leased]) -> tuple[list[Request], list[Dead]]:
        events = [{"id": item.message.ulid, "kind": item.message.kind,
                   "who": item.message.identifier, "name": item.message.name,
                   "data": item.message.data} for item in items]
        body = orjson.dumps({"events": events})
        return [Request("sink", "POST", "/sink", body, list(items),
                        {"Content-Type": "application/json"}, self.base)], []

    def classify(self, request: Request, result: Response | Failure, now: float
                 ) -> list[Outcome]:
        if isinstance(result, Failure):
            return [Retry(request.items, result.reason)]
        if 200 <= result.status < 300:
            return [Delivered(request.items)]
        if result.status >= 500:
            return [Retry(request.items, f"HTTP {result.status}", result.status)]
        return [Dead(request.items, f"HTTP {result.status}", result.status)]

    def failover(self, request: Request, result: Response | Failure) -> str | None:
        return None

    def probe(self) -> Request:
        return Request("sink", "GET", "/sink/ping", None, [], {}, self.base)

    def describe(self, message: Message) -> str:
        return f"{message.kind} {message.ulid} stored"

    def explain(self, response: Response) -> str | None:
        return None


class SinkServer:
    """Loopback HTTP: ``/sink`` answers from ``script`` (then 200), everything else 200."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.events: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_GET(self) -> None:
                self._answer(200)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.startswith("/sink"):
                    self._answer(200)  # the gateway's requests
                    return
                with owner.lock:
                    status = owner.script.pop(0) if owner.script else 200
                    owner.statuses.append(status)
                    if status == 200:
                        owner.events.extend(orjson.loads(body)["events"])
                self._answer(status)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def ids(self) -> list[str]:
        with self.lock:
            return [e["id"] for e in self.events]


@pytest.fixture
def sink() -> Iterator[SinkServer]:
    server = SinkServer()

    def build(config: ClientConfig) -> JsonSink:
        return JsonSink(server.base)

    registry.register(SINK, build)
    try:
        yield server
    finally:
        registry.unregister(SINK)
        server.close()


@pytest.fixture
def make_client(sink: SinkServer) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(**options: Any) -> Client:
        options.setdefault("cdp_endpoint", f"{sink.base}/gateway/data-gateway")
        options.setdefault("cdp_fallback_endpoints", [])
        options.setdefault("retry", RetryConfig(base_delay=0.001, max_delay=0.01))
        options.setdefault("breaker", BreakerConfig(reset_timeout=0.05))
        options.setdefault("register_atexit", False)
        client = Client(cdp_api_key="cdp-key-for-tests", **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=5)


def _queue(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    url: str = (request.getfixturevalue("redis_cluster").url if kind == "cluster"
                else request.getfixturevalue("redis_url"))
    return f"{url.rstrip('/')}?prefix=t{new_ulid() & 0xFFFFFF:x}"


@pytest.mark.parametrize("kind", ["memory", "sqlite",
                                  pytest.param("redis", marks=pytest.mark.redis),
                                  pytest.param("cluster", marks=pytest.mark.redis)])
def test_every_message_reaches_the_third_destination(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path, sink: SinkServer,
        make_client: Callable[..., Client]) -> None:
    """The sink is built from the registry, targeted by default, leased from the queue by
    its name and acknowledged there; health shows it beside the gateway."""
    client = make_client(queue=_queue(kind, request, tmp_path))
    ids = [client.track(f"user-{i}", "Signed Up", {"n": i}) for i in range(12)]
    assert client.flush(timeout=10)
    assert sorted(sink.ids()) == sorted(ids)
    health = client.health()
    assert health.destinations[SINK].delivered == 12
    assert health.destinations[SINK].pending == 0
    assert health.destinations["opencdp"].delivered == 12
    assert health.status == "ok"
    assert client.engine.last_flush is not None
    assert client.engine.last_flush.delivered[SINK] == 12


def test_retries_and_the_breaker_apply_to_the_third_destination(
        sink: SinkServer, make_client: Callable[..., Client],
        caplog: pytest.LogCaptureFixture) -> None:
    """5xx answers are retried, open the sink's own breaker (the gateway's stays closed),
    and everything is delivered once the sink recovers."""
    sink.script = [503, 503, 503]
    client = make_client(breaker=BreakerConfig(failure_threshold=2, reset_timeout=0.05))
    ids = [client.track("user-1", "Clicked", {"n": i}) for i in range(3)]
    assert client.flush(timeout=10)
    assert sorted(sink.ids()) == sorted(ids)
    assert sink.statuses[:3] == [503, 503, 503]
    lane = client.stats().lanes[SINK]
    assert lane.counters.retried >= 1
    assert lane.failure_count == 0 and lane.circuit_state == "CLOSED"
    assert client.stats().lanes["opencdp"].counters.retried == 0
    assert client.health().destinations[SINK].retried >= 1
    assert any("[Sink] OCDP304 circuit OPEN" in r.getMessage() for r in caplog.records)
    assert not any("[CDP] OCDP304" in r.getMessage() for r in caplog.records)


def test_refusals_of_the_third_destination_are_dead_lettered_and_counted(
        tmp_path: Path, sink: SinkServer, make_client: Callable[..., Client]) -> None:
    sink.script = [400]
    client = make_client(queue=f"sqlite:///{tmp_path / 'queue.db'}")
    client.track("user-1", "Refused")
    assert client.flush(timeout=10)
    health = client.health()
    assert health.destinations[SINK].dead_letters == 1
    assert health.destinations["opencdp"].dead_letters == 0
    (letter,) = client.engine.outbox.dead_letters(SINK)
    assert letter.destination == SINK and letter.reason == "HTTP 400"


def test_a_rate_limit_for_the_third_destination_is_a_mapping_entry(
        sink: SinkServer, make_client: Callable[..., Client]) -> None:
    client = make_client(rate_limits=RateLimitConfig(per_destination={SINK: 50.0}))
    client.track("user-1", "Limited")
    assert client.flush(timeout=10)
    assert client.stats().lanes[SINK].rate_limit.get("rate_per_second") == 50.0
    assert client.stats().lanes["opencdp"].rate_limit.get("rate_per_second") is None


def test_metrics_label_the_third_destination(sink: SinkServer,
                                             make_client: Callable[..., Client]) -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry, generate_latest

    from opencdp.metrics import register

    client = make_client()
    metrics = CollectorRegistry()
    register(client, metrics)
    client.track("user-1", "Counted")
    assert client.flush(timeout=10)
    text = generate_latest(metrics).decode()
    assert f'opencdp_messages_delivered_total{{destination="{SINK}",kind="track"}} 1.0' in text
    assert f'opencdp_circuit_state{{destination="{SINK}"}} 0.0' in text


def test_the_spill_keeps_the_third_destination(tmp_path: Path, sink: SinkServer) -> None:
    """A message spilled for the sink alone comes back for the sink alone."""
    from opencdp.outbox.memory import MemoryOutbox
    from opencdp.outbox.spill import SpillFile

    bit = registry.bit(SINK)
    spill = SpillFile(tmp_path / "spill.db")
    message = Message(new_ulid(), "track", "user-1", "Spilled", {}, None, bit | 1)
    spill.put(message)
    assert spill.counts()[bit] == 1
    into = MemoryOutbox()
    try:
        assert spill.drain(into) == (1, 0)
        (leased,) = into.lease(SINK, 10, 0.0, 30.0)
        assert leased.message == message
        assert [x.message.id for x in into.lease("opencdp", 10, 0.0, 30.0)] == [message.id]
        assert into.lease("customerio", 10, 0.0, 30.0) == []
    finally:
        into.close()
        spill.close()


def test_a_queue_put_through_every_kind_for_the_sink_alone(
        tmp_path: Path, sink: SinkServer) -> None:
    """Bits above the built-ins' survive SQLite's batched insert (more than one digit)."""
    from opencdp.outbox.sqlite import SQLiteOutbox

    bit = registry.bit(SINK)
    box = SQLiteOutbox(tmp_path / "q.db")
    try:
        messages = [Message(new_ulid(), "track", f"u{i}", "E", {}, None, bit) for i in range(3)]
        box.put_many(messages)
        got = box.lease(SINK, 10, 1e12, 30.0)
        assert [x.message for x in got] == messages
        assert box.lease("opencdp", 10, 1e12, 30.0) == []
        wait_until(lambda: box.stats(1e12)[SINK].in_flight == 3, timeout=5)
    finally:
        box.close()
