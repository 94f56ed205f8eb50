"""A client that stalls mid-request gets 408 after the read timeout, from the sandbox and from
the relay, instead of holding a connection (and a server task) for ever.

RFC 9110 §15.5.9: "The 408 (Request Timeout) status code indicates that the server did not
receive a complete request message within the time that it was prepared to wait."
"""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from opencdp.sandbox import Sandbox
from opencdp.server import RelayServer

from .conftest import SITE, TRACK_KEY

TIMEOUT = 0.5
AUTH = "Basic " + base64.b64encode(f"{SITE}:{TRACK_KEY}".encode()).decode()


@pytest.fixture(scope="module")
def quick() -> Iterator[Sandbox]:
    with Sandbox(port=0, read_timeout=TIMEOUT) as sb:
        yield sb


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes, float]:
    """Read one response to the end (the server closes after a 408); status, headers, body
    and the seconds it took."""
    start = time.monotonic()
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            headers = dict(line.decode().lower().split(": ", 1)
                           for line in head.split(b"\r\n")[1:])
            if len(body) >= int(headers.get("content-length", "0")) and (
                    headers.get("connection") != "close"):
                break
    elapsed = time.monotonic() - start
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = dict(line.decode().lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body, elapsed


@pytest.mark.parametrize("partial", [b"PUT /api/v1/customers/1 HTTP/1.1\r\nHost: x\r\n",
                                     b"PU", b""])
def test_partial_headers_get_408(quick: Sandbox, partial: bytes) -> None:
    with _connect(quick.track_url) as sock:
        sock.sendall(partial)
        status, headers, body, elapsed = _answer(sock)
    assert status == 408
    assert headers["connection"] == "close"
    assert orjson.loads(body)["message"].startswith("request timeout")
    assert elapsed < TIMEOUT + 3


@pytest.mark.parametrize(("path", "shape"), [
    ("/api/v1/customers/1", lambda b: b["meta"]["errors"][0]),
    ("/api/v2/entity", lambda b: b["errors"][0]["message"]),
    ("/v1/send/email", lambda b: b["meta"]["error"]),
])
def test_a_short_body_gets_408_in_the_services_error_shape(quick: Sandbox, path: str,
                                                           shape: Any) -> None:
    method = "PUT" if path.startswith("/api/v1/customers") else "POST"
    request = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
               "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
    with _connect(quick.track_url) as sock:
        sock.sendall(request.encode())
        status, _, body, elapsed = _answer(sock)
    assert status == 408
    assert "did not arrive" in shape(orjson.loads(body))
    assert elapsed < TIMEOUT + 3
    assert quick.people("customerio") == []


def test_a_slow_but_steady_client_is_served(quick: Sandbox) -> None:
    """The timeout is per read, not per request: a body that keeps arriving is waited for."""
    quick.reset()
    body = b'{"plan": "slow"}'
    request = (f"PUT /api/v1/customers/slow HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
               "Connection: close\r\n\r\n").encode()
    with _connect(quick.track_url) as sock:
        sock.sendall(request)
        for i in range(len(body)):
            time.sleep(TIMEOUT / 5)
            sock.sendall(body[i:i + 1])
        status, _, _, _ = _answer(sock)
    assert status == 200
    assert quick.person("customerio", "slow")["attributes"] == {"plan": "slow"}


def test_the_relay_answers_408_and_logs_no_traceback(
        sandbox: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tests.server.support import RELAY_KEY, server_config

    caplog.set_level(logging.DEBUG)
    with RelayServer(server_config(sandbox, tmp_path), read_timeout=TIMEOUT) as relay:
        with _connect(relay.url) as sock:
            sock.sendall(b"POST /gateway/data-gateway/v1/persons/identify HTTP/1.1\r\n")
            status, _, _, elapsed = _answer(sock)
        assert (status, elapsed < TIMEOUT + 3) == (408, True)
        request = ("POST /gateway/data-gateway/v1/persons/identify HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: {RELAY_KEY}\r\nContent-Type: application/json\r\n"
                   "Content-Length: 100\r\n\r\n{\"identifier\":").encode()
        with _connect(relay.url) as sock:
            sock.sendall(request)
            status, _, body, elapsed = _answer(sock)
        assert (status, elapsed < TIMEOUT + 3) == (408, True)
        assert "did not arrive" in orjson.loads(body)["message"]
        with _connect(relay.url) as sock:  # a client that gives up mid-body
            sock.sendall(request)
            time.sleep(0.1)
        time.sleep(TIMEOUT + 0.3)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert not any("ClientDisconnect" in (r.exc_text or "") + r.getMessage()
                   for r in caplog.records)
