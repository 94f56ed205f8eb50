"""The integrations in-process, on each framework's own test client, with capture clients:
lifespans, dependencies, health routes, overrides and start-up errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from opencdp import AsyncClient, ClientClosedError, ConfigurationError
from opencdp.testing import AsyncCapture, capture

STARLETTE_TESTCLIENT = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette")


@STARLETTE_TESTCLIENT
def test_starlette_lifespan_dependency_and_health() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.testclient import TestClient

    from opencdp.integrations.fastapi import get_client, health_app, health_routes, lifespan

    cap = AsyncCapture()
    entered: list[Any] = []

    @asynccontextmanager
    async def own(app: Any) -> AsyncIterator[None]:
        entered.append(get_client_of(app))
        yield

    def get_client_of(app: Any) -> AsyncClient:
        return app.state.opencdp  # type: ignore[no-any-return]

    async def signup(request: Request) -> PlainTextResponse:
        await get_client(request).track("u1", "signed_up")
        return PlainTextResponse("ok")

    app = Starlette(lifespan=lifespan(lambda: cap.client, wrap=own),
                    routes=[Route("/signup", signup, methods=["POST"]), *health_routes(),
                            *health_routes("/ops/health/"), Mount("/mounted", health_app)])
    with TestClient(app, follow_redirects=False) as web:
        assert web.post("/signup").text == "ok"
        for prefix in ("/health", "/ops/health"):
            health = web.get(prefix)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert set(web.get(f"{prefix}/opencdp").json()) == {"opencdp"}
            assert set(web.get(f"{prefix}/customerio").json()) == {"customerio"}
            assert web.get(f"{prefix}/nowhere").status_code == 404
            assert web.post(prefix).status_code == 405
        assert web.get("/mounted/").json()["status"] == "ok"
        assert set(web.get("/mounted/opencdp").json()) == {"opencdp"}
    assert entered == [cap.client]
    assert [m.name for m in cap.messages] == ["signed_up"]
    with pytest.raises(ClientClosedError):
        asyncio.run(cap.client.track("u1", "after_lifespan"))


@STARLETTE_TESTCLIENT
def test_fastapi_without_the_lifespan_says_what_is_missing() -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from opencdp.integrations.fastapi import get_client

    app = FastAPI()

    @app.get("/")
    async def index(cdp: AsyncClient = Depends(get_client)) -> str:  # noqa: B008
        return "unreachable"

    with TestClient(app, raise_server_exceptions=True) as web, \
            pytest.raises(ConfigurationError, match="lifespan"):
        web.get("/")


def test_flask_extension_health_override_and_bad_options(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from flask import Flask

    from opencdp.integrations.flask import OpenCDP

    monkeypatch.setenv("CDP_API_KEY", "k")
    cdp = OpenCDP()
    app = Flask("units")
    cdp.init_app(app)
    with capture() as cap, cdp.override_client(app, cap.client):
        web = app.test_client()
        assert web.get("/health").json["status"] == "ok"
        assert set(web.get("/health/opencdp").json) == {"opencdp"}
        assert set(web.get("/health/customerio").json) == {"customerio"}
        with app.app_context():
            cdp.client.track("u1", "flask_event")
        assert [m.name for m in cap.messages] == ["flask_event"]

    quiet = Flask("quiet")
    quiet.config["OPENCDP_HEALTH_URL"] = None
    OpenCDP(quiet)
    assert quiet.test_client().get("/health").status_code == 404

    broken = Flask("broken")
    broken.config["OPENCDP"] = {"timeout": 0}
    with pytest.raises(ConfigurationError, match="timeout"):
        cdp.init_app(broken)
    with pytest.raises(ConfigurationError, match="init_app"):
        cdp.client_for(Flask("never_initialised"))


def test_the_library_leaves_logging_to_the_host() -> None:
    """No handler anywhere after importing everything: the host's configuration decides."""
    import subprocess
    import sys

    code = ("import logging, opencdp, opencdp.integrations.celery, opencdp.integrations.django,"
            " opencdp.integrations.fastapi, opencdp.integrations.flask,"
            " opencdp.integrations.gunicorn, opencdp.health, opencdp.outbox.sqlite\n"
            "names = [n for n in logging.root.manager.loggerDict if n.startswith('opencdp')]\n"
            "print(sorted((n, logging.getLogger(n).handlers) for n in names"
            " if logging.getLogger(n).handlers), logging.root.handlers)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.stdout.strip() == "[] []", result.stdout + result.stderr
