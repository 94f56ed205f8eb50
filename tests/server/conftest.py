"""Fixtures: a relay served by uvicorn on a loopback port, delivering into the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opencdp.server import RelayServer

from .support import RELAY_KEY, server_config

StartRelay = Callable[..., RelayServer]


@pytest.fixture
def start_relay(sandbox: Any, tmp_path: Path) -> Iterator[StartRelay]:
    """Start a relay (options as for ``server_config``); every one started is stopped after."""
    started: list[RelayServer] = []

    def start(**options: Any) -> RelayServer:
        server = RelayServer(server_config(sandbox, tmp_path, **options))
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def relay(start_relay: StartRelay) -> RelayServer:
    return start_relay()


@pytest.fixture
def gateway(relay: RelayServer) -> Iterator[httpx.Client]:
    """An HTTP client on the relay's gateway API, with a valid key."""
    with httpx.Client(base_url=str(relay.urls["gateway"]), trust_env=False, timeout=10.0,
                      headers={"Authorization": RELAY_KEY}) as client:
        yield client
