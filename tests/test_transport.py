"""The transport's one decision: what kind of failure an exception is."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from opencdp import Client
from opencdp.config import ClientConfig
from opencdp.destinations.base import Request
from opencdp.transport import AiohttpTransport, failure_from
from support.servers import refused_port


def _free_port() -> int:
    return refused_port()


def test_a_refused_connection_is_never_received() -> None:
    async def go() -> None:
        transport = AiohttpTransport(ClientConfig(cdp_api_key="k", timeout=2))
        request = Request("gateway", "GET", "/", None, [], base=f"http://127.0.0.1:{_free_port()}")
        failure = await transport.send(request)
        await transport.aclose()
        assert not isinstance(failure, type(None))
        assert getattr(failure, "kind", None) == "connect"
        assert failure.maybe_received is False  # type: ignore[union-attr]

    asyncio.run(go())


def test_a_server_that_accepts_and_stays_silent_may_have_received() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(5)
        finally:
            writer.close()

    async def go() -> None:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = AiohttpTransport(ClientConfig(cdp_api_key="k", timeout=0.3))
        result = await transport.send(Request("gateway", "POST", "/", b"{}", [],
                                              base=f"http://127.0.0.1:{port}"))
        await transport.aclose()
        server.close()
        await server.wait_closed()
        assert getattr(result, "kind", None) == "timeout"
        assert result.maybe_received  # type: ignore[union-attr]

    asyncio.run(go())


@pytest.mark.parametrize(("exc", "kind"), [
    (aiohttp.ServerDisconnectedError(), "reset"),
    (ConnectionResetError(), "reset"),
    (asyncio.TimeoutError(), "timeout"),
    (ValueError("odd"), "internal"),
])
def test_failure_kinds(exc: BaseException, kind: str) -> None:
    failure = failure_from(exc)
    assert failure.kind == kind
    assert failure.maybe_received


def test_environment_proxies_are_honoured_but_never_for_loopback(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    transport = AiohttpTransport(ClientConfig(cdp_api_key="k"))
    assert transport.proxy_for("https://api.opencdp.io/gateway") == "http://proxy.invalid:3128"
    assert transport.proxy_for("https://internal.example/x") is None
    assert transport.proxy_for("http://127.0.0.1:8080/x") is None
    assert transport.proxy_for("http://localhost:8080/x") is None
    off = AiohttpTransport(ClientConfig(cdp_api_key="k", trust_env=False))
    assert off.proxy_for("https://api.opencdp.io/gateway") is None
    explicit = AiohttpTransport(ClientConfig(cdp_api_key="k", proxy="http://corp.invalid:8080",
                                             trust_env=False))
    assert explicit.proxy_for("https://api.opencdp.io/gateway") == "http://corp.invalid:8080"


def test_a_client_closes_its_transport(monkeypatch) -> None:
    closed: list[bool] = []

    class Spy:
        async def send(self, request: Request) -> object:
            raise AssertionError("nothing to send")

        async def aclose(self) -> None:
            closed.append(True)

    client = Client(cdp_api_key="k", transport=Spy(), register_atexit=False)
    client.close(2)
    assert closed == [True]
