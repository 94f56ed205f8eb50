"""The webhook endpoint as a plain ASGI app and a plain WSGI app.

Both answer before running any handler (see :mod:`opencdp.webhooks.handler`): the ASGI app
dispatches after sending its response, the WSGI app from its response's ``close()``, which
servers call after the last byte is written. A body larger than the limit is refused from its
``Content-Length`` before it is read.

Plain callables instead of Starlette or Werkzeug objects, so the host framework is free: the
ASGI app is a class instance (not a function) so that Starlette's ``Route`` treats it as an ASGI
app rather than as a request handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from ..serving import lifespan
from .handler import WebhookHandler, WebhookResponse

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["WebhookASGIApp", "WebhookWSGIApp", "asgi_app", "content_length", "wsgi_app"]

logger = logging.getLogger("opencdp.webhooks")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = ("content-type", "application/json")
_NOT_POST = WebhookResponse(405, {"error": "method_not_allowed"}, None, (_JSON, ("allow", "POST")))
_BAD_LENGTH = WebhookResponse(400, {"error": "invalid_content_length"})


_LENGTH_DIGITS = 18
_HUGE = 10**_LENGTH_DIGITS


def content_length(values: Sequence[str]) -> int | None:
    """The body length a request declares (all its ``Content-Length`` values): None when it
    declares none, -1 when the declaration cannot be trusted, else the length.

    Untrusted: anything but ASCII digits (signs, spaces inside, ``²``), several values or a
    list (``10, 10``: two parsers may each pick another, the root of request smuggling).
    Past 18 digits the length is taken as 10^18, over every limit, without ``int()``, which
    raises ValueError on a 5,000-digit string. The relay and the sandbox use it too.
    """
    present = [v.strip() for v in values]
    if not present or (len(present) == 1 and not present[0]):
        return None
    if len(present) > 1:
        return -1
    value = present[0]
    if not (value.isascii() and value.isdigit()):
        return -1
    digits = value.lstrip("0")
    return _HUGE if len(digits) > _LENGTH_DIGITS else int(digits or "0")


def _headers(response: WebhookResponse, body: bytes) -> list[tuple[str, str]]:
    return [*response.headers, ("content-length", str(len(body)))]


class WebhookASGIApp:
    """ASGI endpoint: POST a webhook to whatever path it is mounted at."""

    def __init__(self, handler: WebhookHandler) -> None:
        self.handler = handler

    def __repr__(self) -> str:
        return f"WebhookASGIApp({self.handler!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _respond(send, _NOT_POST)
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        length = content_length([v for k, v in headers if k == "content-length"])
        limit = self.handler.max_body_bytes
        if length == -1:
            await _respond(send, _BAD_LENGTH)
            return
        if length is not None and length > limit:
            await _respond(send, self.handler.too_large())
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await _respond(send, self.handler.too_large())
                return
            if not message.get("more_body", False):
                break
        response = await asyncio.to_thread(self.handler.receive, headers, bytes(body))
        await _respond(send, response)
        if response.event is not None:
            await self.handler.dispatch_async(response.event)


async def _respond(send: Send, response: WebhookResponse) -> None:
    body = response.body
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in _headers(response, body)]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class WebhookWSGIApp:
    """WSGI endpoint: POST a webhook to whatever path it is mounted at."""

    def __init__(self, handler: WebhookHandler) -> None:
        self.handler = handler

    def __repr__(self) -> str:
        return f"WebhookWSGIApp({self.handler!r})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        response = self._receive(environ)
        body = response.body
        status = HTTPStatus(response.status)
        start_response(f"{status.value} {status.phrase}", _headers(response, body))
        if response.event is None:
            return [body]
        event = response.event
        return _ThenRun(body, lambda: self.handler.dispatch(event))

    def _receive(self, environ: WSGIEnvironment) -> WebhookResponse:
        if environ.get("REQUEST_METHOD") != "POST":
            return _NOT_POST
        limit = self.handler.max_body_bytes
        declared = environ.get("CONTENT_LENGTH")
        length = content_length([] if declared is None else [declared])
        stream = environ["wsgi.input"]
        if length == -1:
            return _BAD_LENGTH
        if length is not None and length > limit:
            return self.handler.too_large()
        if length is not None:
            body = stream.read(length)
        elif environ.get("wsgi.input_terminated"):
            body = stream.read(limit + 1)
        else:
            body = b""  # PEP 3333: without a length there is nothing we may read
        headers = [
            (name, environ[key])
            for name, key in (
                ("x-cio-timestamp", "HTTP_X_CIO_TIMESTAMP"),
                ("x-cio-signature", "HTTP_X_CIO_SIGNATURE"),
            )
            if key in environ
        ]
        return self.handler.receive(headers, body)


class _ThenRun:
    """A response body whose ``close()`` runs a callback once the server has sent it."""

    def __init__(self, body: bytes, callback: Callable[[], None]) -> None:
        self._body = body
        self._callback: Callable[[], None] | None = callback

    def __iter__(self) -> Iterator[bytes]:
        yield self._body

    def close(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            try:
                callback()
            except Exception:
                logger.exception("webhook dispatch failed after the response")


def asgi_app(handler: WebhookHandler) -> WebhookASGIApp:
    """The webhook endpoint as an ASGI app, for uvicorn or mounting in FastAPI/Starlette."""
    return WebhookASGIApp(handler)


def wsgi_app(handler: WebhookHandler) -> WebhookWSGIApp:
    """The webhook endpoint as a WSGI app, for gunicorn or mounting beside Flask/Django."""
    return WebhookWSGIApp(handler)
