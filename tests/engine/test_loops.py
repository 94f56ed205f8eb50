"""The engine's loop connects to a numeric address without a thread of libuv's pool: a child
forked while such a thread was inside ``getaddrinfo`` would wait for ever on glibc's lock."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from opencdp.loops import new_loop, numeric_address


def _native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server
    server.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_connecting_to_a_numeric_address_starts_no_native_thread(
        listener: socket.socket) -> None:
    pytest.importorskip("uvloop")
    loop = new_loop()
    before = _native_threads()

    async def connect() -> None:
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, listener.getsockname())
        finally:
            sock.close()

    try:
        for _ in range(3):
            loop.run_until_complete(connect())
    finally:
        loop.close()
    assert _native_threads() == before


def test_numeric_answers_match_the_system_resolver() -> None:
    for host, family in (("127.0.0.1", 0), ("::1", 0), ("127.0.0.1", socket.AF_INET),
                         ("::1", socket.AF_INET6)):
        ours = numeric_address(host, 8080, family, socket.SOCK_STREAM, 0)
        system = socket.getaddrinfo(host, 8080, family, socket.SOCK_STREAM)
        assert ours is not None
        assert ours[0] == system[0]


@pytest.mark.parametrize(("host", "port", "family"), [
    ("localhost", 80, 0), ("127.0.0.1", "80", 0), ("127.0.0.1", 80, socket.AF_INET6),
    ("::1", 80, socket.AF_INET), (b"127.0.0.1", 80, 0), ("fe80::1%eth0", 80, 0),
    ("127.0.0.1", True, 0),
])
def test_anything_else_is_left_to_a_look_up(host: object, port: object, family: int) -> None:
    assert numeric_address(host, port, family, 0, 0) is None
