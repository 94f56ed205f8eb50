"""Health endpoints over real loopback HTTP, driven by the real breaker and the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from opencdp import AsyncClient, Client
from opencdp.health import Health, health_asgi_app, health_wsgi_app
from support.servers import serve_asgi, serve_wsgi, wait_until

from .support import client_options

Serve = Callable[[Any], AbstractContextManager[str]]


@pytest.fixture(params=["asgi", "wsgi"])
def serve(request: pytest.FixtureRequest) -> Serve:
    if request.param == "asgi":
        return lambda source: serve_asgi(health_asgi_app(source))
    return lambda source: serve_wsgi(health_wsgi_app(source))


@pytest.fixture
def client(sandbox: Any) -> Iterator[Client]:
    made = Client(**client_options(sandbox))
    yield made
    made.close(timeout=2)


def _state(http: httpx.Client, path: str, name: str) -> tuple[int, str]:
    response = http.get(path)
    return response.status_code, response.json()[name]["circuit_state"]


def _recover(client: Client, http: httpx.Client, path: str, name: str) -> None:
    """A half-open breaker closes after three good requests, so keep traffic flowing."""
    sent = 0

    def closed() -> bool:
        nonlocal sent
        sent += 1
        client.track("recovery_user", "page_viewed", {"n": sent})
        return _state(http, path, name) == (200, "CLOSED")

    wait_until(closed, timeout=15, what=f"{name} breaker closed")


def test_customerio_outage_is_503_then_recovers(client: Client, sandbox: Any,
                                                serve: Serve) -> None:
    with serve(client) as base, httpx.Client(base_url=base, timeout=5) as http:
        ok = http.get("/health/customerio")
        assert ok.status_code == 200
        assert ok.json() == {"customerio": ok.json()["customerio"]}
        body = ok.json()["customerio"]
        assert (body["circuit_state"], body["failure_count"], body["last_failure"]) == (
            "CLOSED", 0, None)

        sandbox.set_faults({"customerio": {"down": True, "down_status": 500}})
        for i in range(10):
            client.track(f"user_{i % 3}", "page_viewed", {"n": i})
        seen: list[httpx.Response] = []

        def opened() -> bool:
            seen.append(http.get("/health/customerio"))
            return seen[-1].json()["customerio"]["circuit_state"] == "OPEN"

        wait_until(opened, what="Customer.io breaker OPEN")
        down = seen[-1]
        assert down.status_code == 503
        body = down.json()["customerio"]
        assert body["failure_count"] >= 5
        assert datetime.fromisoformat(body["last_failure"].replace("Z", "+00:00"))
        assert body["last_failure_reason"] == "HTTP 500"
        assert body["queue"]["pending"] + body["queue"]["in_flight"] == 10

        overall = http.get("/health")
        assert overall.status_code == 200, "Customer.io down degrades, it does not fail /health"
        assert overall.json()["status"] == "degraded"
        assert overall.json()["opencdp"]["circuit_state"] == "CLOSED"
        assert http.get("/health/opencdp").status_code == 200

        sandbox.clear_faults()
        _recover(client, http, "/health/customerio", "customerio")
        assert client.flush(timeout=10)
        final = http.get("/health").json()
        assert final["status"] == "ok"
        assert final["customerio"]["queue"]["pending"] == 0
        assert final["customerio"]["counters"]["delivered"] == final["opencdp"]["counters"][
            "delivered"]
        assert final["customerio"]["counters"]["retried"] >= 5


def test_opencdp_outage_fails_overall_health(client: Client, sandbox: Any,
                                             serve: Serve) -> None:
    with serve(client) as base, httpx.Client(base_url=base, timeout=5) as http:
        assert http.get("/health").status_code == 200
        sandbox.set_faults({"opencdp": {"down": True, "down_status": 502}})
        for i in range(8):
            client.identify(f"user_{i}", {"plan": "pro"})
        wait_until(lambda: _state(http, "/health/opencdp", "opencdp") == (503, "OPEN"),
                   what="OpenCDP breaker OPEN")
        overall = http.get("/health")
        assert overall.status_code == 503
        assert overall.json()["status"] == "down"
        assert overall.json()["opencdp"]["last_failure_reason"] == "HTTP 502"
        assert http.get("/health/customerio").status_code == 200, "destinations are independent"

        sandbox.clear_faults()
        _recover(client, http, "/health/opencdp", "opencdp")
        assert http.get("/health").status_code == 200


def test_mounted_under_prefixes_in_starlette(client: Client) -> None:
    app = Starlette(routes=[
        Mount("/ops", app=health_asgi_app(client)),
        Mount("/health", app=health_asgi_app(client.health)),
    ])
    with serve_asgi(app) as base, httpx.Client(base_url=base, timeout=5) as http:
        assert http.get("/ops/health").json()["status"] == "ok"
        assert set(http.get("/ops/health/customerio").json()) == {"customerio"}
        # Starlette redirects a mount's bare prefix to the prefix with a slash.
        assert http.get("/health", follow_redirects=True).json()["status"] == "ok"
        assert set(http.get("/health/opencdp").json()) == {"opencdp"}
        assert http.get("/ops/health/opencdp/extra").status_code == 404


def _mount_wsgi(prefix: str, app: Any) -> Any:
    """Route a prefix to ``app`` the way WSGI mounts do (werkzeug, Django): SCRIPT_NAME
    takes the prefix, PATH_INFO keeps the rest."""

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(prefix):
            start_response("404 Not Found", [("content-length", "0")])
            return [b""]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
        environ["PATH_INFO"] = path[len(prefix):]
        return app(environ, start_response)

    return dispatch


def test_mounted_under_a_prefix_in_wsgi(client: Client) -> None:
    app = _mount_wsgi("/ops", health_wsgi_app(client))
    with serve_wsgi(app) as base, httpx.Client(base_url=base, timeout=5) as http:
        assert http.get("/ops/health").json()["status"] == "ok"
        assert http.get("/ops/health/customerio").json()["customerio"]["failure_count"] == 0
        assert http.get("/ops/customerio").status_code == 200


def test_methods_unknown_paths_and_head(client: Client, serve: Serve) -> None:
    with serve(client) as base, httpx.Client(base_url=base, timeout=5) as http:
        head = http.head("/health/opencdp")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 0
        post = http.post("/health")
        assert post.status_code == 405 and "GET" in post.headers["allow"]
        missing = http.get("/health/segment")
        assert missing.status_code == 404 and "opencdp" in missing.json()["message"]
        assert http.get("/health/a/b").status_code == 404
        assert http.get("/health").headers["cache-control"] == "no-store"


def test_only_configured_destinations_are_served(sandbox: Any, serve: Serve) -> None:
    single = Client(**client_options(sandbox, send_to_customer_io=False, customer_io=None))
    try:
        with serve(single) as base, httpx.Client(base_url=base, timeout=5) as http:
            assert http.get("/health/customerio").status_code == 404
            assert "customerio" not in http.get("/health").json()
    finally:
        single.close(timeout=2)


def test_failing_source_is_503_without_its_message(serve: Serve,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Health:
        raise RuntimeError("redis://:hunter2-password@10.0.0.1 refused")

    with serve(broken) as base, httpx.Client(base_url=base, timeout=5) as http:
        response = http.get("/health")
        assert response.status_code == 503
        assert response.json() == {"status": "unknown",
                                   "error": "health snapshot failed: RuntimeError"}
        assert "hunter2" not in response.text
    assert "health snapshot failed: RuntimeError" in caplog.text
    assert "hunter2" not in caplog.text


def test_failure_reasons_are_redacted(sandbox: Any, serve: Serve) -> None:
    from opencdp.destinations.base import Failure

    class Echo:
        async def send(self, request: Any) -> Failure:
            return Failure(f"proxy said: key {request.headers.get('Authorization')} refused",
                           "reset")

        async def aclose(self) -> None:
            return None

    client = Client(**client_options(sandbox, transport=Echo()))
    try:
        client.track("u1", "viewed")
        client.flush(timeout=0.5)
        with serve(client) as base, httpx.Client(base_url=base, timeout=5) as http:
            text = http.get("/health/opencdp").text
            assert "cdp-test-key" not in text
            assert "key <redacted> refused" in text
    finally:
        client.close(0.5)


def test_async_client_as_source(sandbox: Any) -> None:
    aclient = AsyncClient(**client_options(sandbox))
    try:
        with serve_asgi(health_asgi_app(aclient)) as base:
            response = httpx.get(f"{base}/health", timeout=5)
            assert response.status_code == 200
            assert {"opencdp", "customerio"} <= set(response.json())
    finally:
        aclient.engine.close(2)
