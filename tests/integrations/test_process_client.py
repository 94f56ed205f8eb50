"""The per-process client every integration shares: lazy, rebuilt after fork, closed within
``shutdown_timeout``, replaceable in tests. A MockTransport stands in for the network."""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from typing import Any

import pytest

from opencdp import AsyncClient, Client, ClientClosedError
from opencdp.destinations.base import Request, Response
from opencdp.integrations._process import ProcessClient, close_all, close_client
from opencdp.testing import MockTransport, capture, capture_options


def ok(request: Request) -> Response:
    return Response(200, b"{}", {})


async def hang(request: Request) -> Response:
    await asyncio.sleep(30)
    return Response(200, b"{}", {})


def factory(handler: Any = ok, **options: Any) -> Any:
    built: list[Client] = []

    def build() -> Client:
        client = Client(**capture_options(transport=MockTransport(handler), **options))
        built.append(client)
        return client

    build.built = built  # type: ignore[attr-defined]
    return build


def test_built_on_first_use_once() -> None:
    build = factory()
    holder = ProcessClient(build)
    assert not holder.built and build.built == []
    first = holder.get()
    assert holder.get() is first and holder.built and len(build.built) == 1
    assert holder.close() is True
    assert not holder.built
    with pytest.raises(ClientClosedError):
        first.track("u1", "after_close")


def test_close_is_bounded_by_shutdown_timeout() -> None:
    holder = ProcessClient(factory(hang, shutdown_timeout=0.5))
    holder.get().track("u1", "e")
    started = time.monotonic()
    assert holder.close() is False
    assert time.monotonic() - started < 3.0


def test_async_client_closes_from_sync_code() -> None:
    client = AsyncClient(**capture_options(transport=MockTransport(ok), shutdown_timeout=1))
    assert close_client(client) is True
    with pytest.raises(ClientClosedError):
        asyncio.run(client.track("u1", "after_close"))


def test_forked_child_builds_its_own() -> None:
    build = factory()
    holder = ProcessClient(build)
    parent = holder.get()
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            fresh = not holder.built
            holder.forget()
            child = holder.get()
            child.track("u2", "in_child")
            code = 0 if fresh and child is not parent and close_all() else 1
        finally:
            os.write(write, str(code).encode())
            os._exit(code)
    os.close(write)
    assert os.read(read, 8) == b"0"
    os.close(read)
    os.waitpid(pid, 0)
    assert holder.get() is parent
    holder.close()


def test_override_hands_out_a_capture_then_restores() -> None:
    holder = ProcessClient(factory())
    built = holder.get()
    with capture() as cap:
        with holder.override(cap.client):
            holder.get().track("u3", "overridden")
        assert holder.get() is built
        assert [m.name for m in cap.messages] == ["overridden"]
    holder.close()
