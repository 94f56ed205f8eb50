"""The relay answers an absurd Content-Length 400 (413 when a number over the limit), never
with an exception, whichever server is in front of it."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from opencdp.server import RelayServer
from support.asgi import asgi_post

from .support import RELAY_KEY

TRACK = "/gateway/data-gateway/v1/persons/track"
CASES = [
    ([b"9" * 5000], 413), ([b"1" + b"0" * 18], 413), ([b"2000000"], 413),
    ([b"abc"], 400), ([b"10, 10"], 400), ([b"-1"], 400), ([b"\xb2"], 400),
    ([b"10", b"10"], 400), ([b"10", b"11"], 400),
]


@pytest.mark.parametrize(("values", "status"), CASES)
def test_the_relay_app_answers_an_absurd_length(relay: RelayServer, sandbox: Any,
                                                values: list[bytes], status: int) -> None:
    headers = [(b"authorization", RELAY_KEY.encode()), (b"content-type", b"application/json"),
               *((b"content-length", v) for v in values)]
    answer, _, body = asgi_post(relay.app, TRACK, headers, b"{}")
    assert answer == status
    assert orjson.loads(body)["field"] == "body"
    assert sandbox.stats()["customerio"]["requests"] == 0


def test_over_http_the_relay_refuses_a_5000_digit_length(relay: RelayServer) -> None:
    parts = urlsplit(str(relay.urls["url"]))
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
        conn.sendall(f"POST {TRACK} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: "
                     f"{RELAY_KEY}\r\nContent-Length: {'9' * 5000}\r\n\r\n{{}}".encode())
        head = conn.recv(4096).split(b"\r\n", 1)[0]
    assert head.split()[1] in (b"400", b"413")
    assert relay.relay.client is not None and relay.relay.client.health().status == "ok"
