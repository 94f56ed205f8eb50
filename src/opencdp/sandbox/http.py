"""The few HTTP pieces the sandbox needs, written against raw ASGI.

A framework router and request object cost more per request than everything the emulation
itself does (the single-event endpoints must serve thousands of requests a second on a shared
2-core machine), so requests are read into one slotted object and answers are plain tuples.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from ..serving import request_timeout_answer
from ..webhooks.apps import content_length

__all__ = [
    "Receive",
    "Reject",
    "Request",
    "Response",
    "Scope",
    "Send",
    "error_response",
    "json_response",
    "read_body",
    "send_response",
    "timeout_answer",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Response = tuple[int, bytes, list[tuple[bytes, bytes]]]

_JSON = (b"content-type", b"application/json")


class Reject(Exception):
    """A request (or one batch operation) refused; each service renders it its own way."""

    def __init__(self, status: int, reason: str, message: str, field: str | None = None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.field = field
        self.headers = headers


class Request:
    __slots__ = ("authorization", "body", "idempotency_key", "method", "path", "query",
                 "raw_path", "segments", "workspace_id")

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.raw_path: bytes = scope.get("raw_path") or self.path.encode()
        self.query: bytes = scope.get("query_string", b"")
        self.body = body
        self.segments: list[str] = []
        self.authorization: str | None = None
        self.idempotency_key: str | None = None
        self.workspace_id: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                self.authorization = value.decode("latin-1")
            elif name == b"idempotency-key":
                self.idempotency_key = value.decode("latin-1")
            elif name == b"x-workspace-id":
                self.workspace_id = value.decode("latin-1")

    def split(self, prefix_len: int) -> list[str]:
        """Path segments after a prefix, each percent-decoded on its own (so ``%2F`` in an
        id stays inside that id). Bytes that are not UTF-8, and NUL, are refused: an id
        holding them could never be stored or looked up again."""
        raw = self.raw_path[prefix_len:]
        if not raw:
            return []
        out = []
        for part in raw.split(b"/"):
            if b"%" in part or not part.isascii():
                try:
                    text = unquote_to_bytes(part).decode()
                except UnicodeDecodeError:
                    raise Reject(400, "invalid_path", "the path holds bytes that are not "
                                 "UTF-8", "path") from None
            else:
                text = part.decode()
            if "\x00" in text:
                raise Reject(400, "invalid_path", "the path holds a NUL character", "path")
            out.append(text)
        return out

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise Reject(400, "invalid_json", "the request body is not valid JSON") from None


def json_response(status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None,
                  ) -> Response:
    return status, orjson.dumps(payload), [_JSON, *(headers or ())]


def error_response(path: str, r: Reject) -> Response:
    """``r`` in the error shape of the service ``path`` belongs to: Track v2
    ``{"errors": [...]}``, Track v1 ``{"meta": {"errors": [...]}}``, App API
    ``{"meta": {"error": ...}}``, gateway and others ``{"message": ...}``."""
    body: Any
    if path.startswith("/api/v2/"):
        err = {"reason": r.reason, "message": r.message}
        if r.field:
            err["field"] = r.field
        body = {"errors": [err]}
    elif path.startswith(("/api/", "/unsubscribe/")):
        body = {"meta": {"errors": [r.message]}}
    elif path.startswith("/v1/"):
        body = {"meta": {"error": r.message}}
    else:
        body = {"message": r.message}
    return json_response(r.status, body, r.headers)


def timeout_answer(path: str | None, timeout: float) -> bytes:
    """The whole 408 response for a request that stalled (``path`` None: mid-headers), in
    the error shape of the service ``path`` belongs to."""
    what = "headers" if path is None else "body"
    r = Reject(408, "request_timeout", f"request timeout: the request {what} did not arrive "
               f"within {timeout:g} s")
    _, body, _ = error_response(path or "", r)
    return request_timeout_answer(body)


MAX_BODY = 20 * 1024 * 1024  # far above every documented limit; bounds the sandbox's memory


async def read_body(receive: Receive, scope: Scope | None = None) -> bytes:
    """The whole body; ``Reject`` 400 for a ``Content-Length`` that cannot be trusted and 413
    past ``MAX_BODY`` (declared or read), 408 when the client went away (or the server's read
    timeout hung up on it) before the body arrived. The server in front usually refuses a bad
    length first; the check is here for the ones that pass it on."""
    if scope is not None:
        length = content_length([v.decode("latin-1") for k, v in scope["headers"]
                                 if k == b"content-length"])
        if length == -1:
            raise Reject(400, "invalid_content_length",
                         "Content-Length must be one whole number", "body")
        if length is not None and length > MAX_BODY:
            raise _too_large()
    message = await _receive(receive)
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body"):
        message = await _receive(receive)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> Reject:
    return Reject(413, "too_large", f"request bodies are limited to {MAX_BODY} bytes", "body")


async def _receive(receive: Receive) -> Message:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise Reject(408, "client_disconnected", "the client went away before its body "
                     "arrived")
    return message


async def send_response(send: Send, response: Response) -> None:
    status, body, headers = response
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
