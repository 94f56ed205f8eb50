"""The sandbox answers an absurd Content-Length 400 (413 when a number over its limit) in
each service's error shape, never with an exception, whichever server is in front of it."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import orjson
import pytest

from opencdp.sandbox import Sandbox
from opencdp.sandbox.app import create_app
from support.asgi import asgi_post

CASES = [
    ([b"9" * 5000], 413), ([b"1" + b"0" * 18], 413), ([b"30000000"], 413),
    ([b"abc"], 400), ([b"10, 10"], 400), ([b"-1"], 400), ([b"\xb2"], 400),
    ([b"10", b"10"], 400), ([b"10", b"11"], 400),
]


@pytest.mark.parametrize(("values", "status"), CASES)
def test_the_sandbox_app_answers_an_absurd_length(values: list[bytes], status: int) -> None:
    app = create_app()
    headers = [(b"content-type", b"application/json"),
               *((b"content-length", v) for v in values)]
    answer, _, body = asgi_post(app, "/api/v2/batch", headers, b'{"batch": []}')
    assert answer == status
    (error,) = orjson.loads(body)["errors"]
    assert error["reason"] == ("too_large" if status == 413 else "invalid_content_length")
    admin = [(b"host", b"127.0.0.1:80"), *headers[1:]]
    answer, _, body = asgi_post(app, "/_sandbox/stats", admin, b"", "GET")
    assert answer == status and "error" in orjson.loads(body)
    stats = app.state.store.customerio.stats()
    assert (stats["accepted"], stats["people"], stats["events"]) == (0, 0, 0)


def test_over_http_the_sandbox_refuses_a_5000_digit_length() -> None:
    with Sandbox(port=0) as sandbox:
        parts = urlsplit(sandbox.track_url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
            conn.sendall(f"POST /api/v2/batch HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                         f"Content-Length: {'9' * 5000}\r\n\r\n{{}}".encode())
            head = conn.recv(4096).split(b"\r\n", 1)[0]
        assert head.split()[1] in (b"400", b"413")
        assert sandbox.stats()["customerio"]["requests"] == 0
