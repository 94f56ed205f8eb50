"""One ASGI request, called as a server calls the app: for headers a real server would not
pass on (uvicorn refuses an absurd Content-Length itself), which other servers may."""

from __future__ import annotations

import asyncio
from typing import Any


def asgi_post(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"",
              method: str = "POST") -> tuple[int, dict[bytes, bytes], bytes]:
    """``(status, headers, body)`` of one request; an exception out of the app fails."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": headers, "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": "",
             "http_version": "1.1", "asgi": {"version": "3.0"}}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start.get("headers", [])), payload
