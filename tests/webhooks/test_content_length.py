"""An absurd Content-Length gets 400 (413 when it is a number over the limit), never an
exception: the webhook apps called as a server calls them, WSGI also over real loopback HTTP
(wsgiref passes the header on; uvicorn refuses these itself, so ASGI is called directly)."""

from __future__ import annotations

import http.client
import io
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from opencdp.webhooks import WebhookHandler, asgi_app, wsgi_app
from opencdp.webhooks.apps import content_length
from support.asgi import asgi_post

from .support import KEY, Serve

HUGE = "9" * 5000
# (declared values, expected status, expected error)
CASES = [
    ([HUGE], 413, "payload_too_large"),
    (["1" + "0" * 18], 413, "payload_too_large"),
    (["abc"], 400, "invalid_content_length"),
    (["10, 10"], 400, "invalid_content_length"),
    (["-1"], 400, "invalid_content_length"),
    (["+5"], 400, "invalid_content_length"),
    (["\u00b2"], 400, "invalid_content_length"),  # a superscript digit: isdigit(), not int()
    (["1 0"], 400, "invalid_content_length"),
]
ASGI_ONLY = [(["10", "10"], 400, "invalid_content_length"),
             (["10", "11"], 400, "invalid_content_length")]


def test_content_length_reads_every_kind_of_declaration() -> None:
    assert content_length([]) is None
    assert content_length([" "]) is None
    assert content_length(["12"]) == 12
    assert content_length([" 12 "]) == 12
    assert content_length(["0" * 5000 + "7"]) == 7
    assert content_length([HUGE]) == 10**18
    assert content_length(["999999999999999999"]) == 999_999_999_999_999_999
    for bad in (["abc"], ["10, 10"], ["10", "10"], ["-1"], ["\u00b2"], ["1e3"], ["0x10"]):
        assert content_length(bad) == -1, bad


def _asgi(app: Any, values: list[str]) -> tuple[int, dict[str, Any]]:
    headers = [(b"content-length", v.encode("latin-1")) for v in values]
    status, _, body = asgi_post(app, "/", headers)
    return status, orjson.loads(body)


@pytest.mark.parametrize(("values", "status", "error"), CASES + ASGI_ONLY)
def test_asgi_app_answers_an_absurd_length(values: list[str], status: int, error: str) -> None:
    answer, body = _asgi(asgi_app(WebhookHandler(KEY)), values)
    assert (answer, body["error"]) == (status, error)


@pytest.mark.parametrize(("values", "status", "error"), CASES)
def test_wsgi_app_answers_an_absurd_length(values: list[str], status: int, error: str) -> None:
    started: list[str] = []
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": values[0],
               "wsgi.input": io.BytesIO(b"")}
    body = b"".join(wsgi_app(WebhookHandler(KEY))(
        environ, lambda s, h, e=None: started.append(s)))  # type: ignore[arg-type]
    assert started[0].split()[0] == str(status)
    assert orjson.loads(body)["error"] == error


def _post_head(url: str, value: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        conn.putrequest("POST", parts.path or "/")
        conn.putheader("content-length", value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize(("values", "status", "error"), [c for c in CASES if c[0][0].isascii()])
def test_served_endpoints_answer_an_absurd_length(request: pytest.FixtureRequest, serve: Serve,
                                                  values: list[str], status: int,
                                                  error: str) -> None:
    url = serve(WebhookHandler(KEY))
    answer, body = _post_head(url, values[0])
    if request.node.callspec.params["serve"] == "asgi" and not body.startswith(b"{"):
        assert answer == 400  # uvicorn refused the request before the app saw it
    else:
        assert (answer, orjson.loads(body)["error"]) == (status, error)
