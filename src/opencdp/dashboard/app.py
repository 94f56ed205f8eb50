"""The dashboard as a plain ASGI app, mounted by the relay, the worker and ``opencdp dashboard``.

Plain ASGI rather than Starlette (as ``opencdp.health``'s endpoints are) so the worker and the
local command, which install no web framework, can serve it with uvicorn alone, and the
relay mounts it with one ``Mount``. Paths are relative to the mount point::

    GET  /                 the page (the login form until a session exists)
    POST /login, /logout   the form's target; sets or clears the session cookie
    GET  /static/<file>    the page's script and style (public: they hold no data)
    GET  /api/session      label, CSRF token, whether a login is needed
    GET  /api/state        the sampler's latest state and samples (``?after=`` seconds)
    GET  /api/dead         dead letters (``destination``, ``reason``, ``since``, ``limit``)
    GET  /api/dead/<id>    one message's dead letters with its payload, scrubbed
    GET  /api/dead-count   how many a replay or purge of (``destination``, ``since``) moves
    POST /api/replay       replay that window (JSON body ``{destination, since}``)
    POST /api/purge        purge that window
    GET  /api/migration    ``migrate status`` for this queue (cached 15 s)

The page polls ``/api/state`` once a second rather than holding a server-sent-events stream:
a poll is one small request served from the sampler's memory, it passes any proxy, and a
stream would hold a connection that a relay's graceful shutdown then has to wait out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from ..errors import OpenCDPError
from ..message import DESTINATION_BITS
from .assets import ASSETS, asset_response, page_headers
from .auth import COOKIE, SESSION_SECONDS, Guard, header
from .data import (
    Sampler,
    Source,
    count_window,
    find_letters,
    letter_json,
)

__all__ = ["DashboardApp", "dashboard_app"]

logger = logging.getLogger("opencdp.dashboard")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]

MAX_BODY = 64 * 1024
MIGRATION_TTL = 15.0
_SINCE = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 7 * 86400}


def _json(status: int, value: Any) -> Answer:
    return status, orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS), [
        (b"content-type", b"application/json"), (b"cache-control", b"no-store")]


def _relative(scope: Scope) -> tuple[str, str]:
    """(path below the mount point, the mount point)."""
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "") or ""
    if root and path.startswith(root):
        path = path[len(root):]
    return path or "", root


def _since(text: str | None) -> float | None:
    if not text or text == "all":
        return None
    if text in _SINCE:
        return time.time() - _SINCE[text]
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"since must be one of {', '.join(_SINCE)}, all, or Unix seconds"
                         ) from None


def _destination(text: str | None) -> str | None:
    if not text or text == "all":
        return None
    if text not in DESTINATION_BITS:
        raise ValueError(f"unknown destination {text!r}")
    return text


class DashboardApp:
    """The routes above over one ``Source``; ``keys`` None means loopback-only, no login."""

    def __init__(self, source: Source, keys: tuple[str, ...] | None, *,
                 sandbox: Any = None) -> None:
        self.source = source
        self.guard = Guard(keys)
        self.sampler = Sampler(source)
        self.sandbox = sandbox
        self._migration: tuple[float, dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"<DashboardApp {self.source!r} {self.guard!r}>"

    def close(self) -> None:
        self.sampler.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            from ..serving import lifespan

            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            answer = await self._answer(scope, receive)
        except Exception as exc:
            logger.error("OCDP381 dashboard: %s %s failed: %s", scope.get("method"),
                         _relative(scope)[0], type(exc).__name__)
            answer = _json(500, {"error": f"internal error ({type(exc).__name__})"})
        status, body, headers = answer
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        if not any(k == b"content-security-policy" for k, _ in headers):
            headers.extend(page_headers())
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else body})

    async def _answer(self, scope: Scope, receive: Receive) -> Answer:
        path, root = _relative(scope)
        method = scope["method"]
        refused = self.guard.refusal(scope)
        if refused is not None:
            return _json(403, {"error": refused})
        if path == "":
            return 308, b"", [(b"location", (root + "/").encode("latin-1"))]
        if path.startswith("/static/") and method in ("GET", "HEAD"):
            return asset_response(path[8:], header(scope, b"accept-encoding") or "",
                                  header(scope, b"if-none-match"))
        if path == "/" and method in ("GET", "HEAD"):
            self.sampler.start()
            page = "dashboard.html" if self.guard.allowed(scope) else "login.html"
            return asset_response(page, header(scope, b"accept-encoding") or "", None)
        if path == "/login" and method == "POST":
            return await self._login(scope, receive, root)
        if path == "/logout" and method == "POST":
            if not self.guard.same_origin(scope):
                return _json(403, {"error": "cross-site request refused"})
            self.guard.logout(scope)
            return 303, b"", [(b"location", (root + "/").encode("latin-1")),
                              (b"set-cookie", self._cookie(scope, root, "", 0))]
        if not path.startswith("/api/"):
            return _json(404, {"error": f"no dashboard page {path}"})
        if not self.guard.allowed(scope):
            return _json(401, {"error": "log in with the relay key first", "login": root + "/"})
        self.sampler.start()
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode(
            "latin-1")).items()}
        try:
            if method == "POST":
                if not self.guard.may_act(scope):
                    return _json(403, {"error": "cross-site request refused: actions need the "
                                                "page's CSRF token from the page's own origin"})
                return await self._act(path, await _read(receive))
            if method not in ("GET", "HEAD"):
                return _json(405, {"error": f"{method} is not allowed here"})
            return await self._read(scope, path, query)
        except ValueError as exc:
            return _json(400, {"error": str(exc)})
        except (OpenCDPError, RuntimeError) as exc:
            return _json(503, {"error": f"the queue cannot be read: {type(exc).__name__}"})

    async def _read(self, scope: Scope, path: str, query: dict[str, str]) -> Answer:
        secrets = self.source.secrets()
        if path == "/api/session":
            return _json(200, {"label": self.source.label,
                               "csrf": self.guard.csrf_for(scope),
                               "login_required": self.guard.login_required})
        if path == "/api/state":
            after = float(query["after"]) if query.get("after") else None
            return _json(200, self.sampler.view(after))
        if path == "/api/dead":
            destination = _destination(query.get("destination"))
            since = _since(query.get("since"))
            limit = min(max(int(query.get("limit") or 200), 1), 1000)
            reason = query.get("reason") or None
            box = self.source.outbox()
            letters = await asyncio.to_thread(box.dead_letters, destination, since,
                                              limit if reason is None else 10_000)
            rows = [letter_json(d, secrets) for d in letters]
            groups: dict[str, int] = {}
            for row in rows:
                groups[row["group"]] = groups.get(row["group"], 0) + 1
            if reason is not None:
                rows = [r for r in rows if r["group"] == reason][:limit]
            return _json(200, {"letters": rows, "groups": groups})
        if path.startswith("/api/dead/"):
            box = self.source.outbox()
            found = await asyncio.to_thread(find_letters, box, path[10:])
            if not found:
                return _json(404, {"error": "no dead letter with that id"})
            return _json(200, [letter_json(d, secrets, full=True) for d in found])
        if path == "/api/dead-count":
            box = self.source.outbox()
            count = await asyncio.to_thread(count_window, box,
                                            _destination(query.get("destination")),
                                            _since(query.get("since")))
            return _json(200, {"count": count})
        if path == "/api/migration":
            return _json(200, await self._migration_status(bool(query.get("refresh"))))
        return _json(404, {"error": f"no dashboard endpoint {path}"})

    async def _act(self, path: str, body: bytes) -> Answer:
        try:
            args = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            raise ValueError("the body must be JSON") from None
        if not isinstance(args, dict):
            raise ValueError("the body must be a JSON object")
        destination = _destination(args.get("destination"))
        since = _since(None if args.get("since") is None else str(args.get("since")))
        if path == "/api/replay":
            count = await asyncio.to_thread(self.source.replay, destination, since)
            logger.info("dashboard: replayed %d dead letter(s) (%s, since %s)", count,
                        destination or "all destinations", args.get("since") or "any time")
            return _json(200, {"replayed": count})
        if path == "/api/purge":
            box = self.source.outbox()
            count = await asyncio.to_thread(box.purge, destination, since)
            logger.info("dashboard: purged %d dead letter(s) (%s, since %s)", count,
                        destination or "all destinations", args.get("since") or "any time")
            return _json(200, {"purged": count})
        return _json(404, {"error": f"no dashboard action {path}"})

    async def _migration_status(self, refresh: bool) -> dict[str, Any]:
        cached = self._migration
        if cached is not None and not refresh and time.monotonic() - cached[0] < MIGRATION_TTL:
            return cached[1]
        from ..migrate.status import migration_status

        box = self.source.outbox()
        status = await asyncio.to_thread(migration_status, box, sandbox=self.sandbox,
                                         since=time.time() - 86400)
        value = status.to_dict()
        value.pop("parity", None)
        value["parity"] = {k: v for k, v in status.parity.items() if k != "differences"}
        value["parity"]["differences"] = len(status.parity.get("differences") or [])
        self._migration = (time.monotonic(), value)
        return value

    async def _login(self, scope: Scope, receive: Receive, root: str) -> Answer:
        if not self.guard.login_required:
            return 303, b"", [(b"location", (root + "/").encode("latin-1"))]
        if not self.guard.same_origin(scope):
            return _json(403, {"error": "cross-site login refused"})
        client = (scope.get("client") or ("?",))[0]
        if self.guard.throttled(client):
            logger.warning("OCDP382 dashboard: logins from %s throttled after repeated "
                           "wrong keys", client)
            return _login_page(429, "Too many wrong keys: wait a minute and try again.")
        body = await _read(receive)
        fields = parse_qs(body.decode("utf-8", "replace"))
        key = (fields.get("key") or [""])[-1]
        made = self.guard.login(client, key)
        if made is None:
            return _login_page(401, "That key is not accepted.")
        return 303, b"", [(b"location", (root + "/").encode("latin-1")),
                          (b"set-cookie", self._cookie(scope, root, made.token,
                                                       int(SESSION_SECONDS)))]

    @staticmethod
    def _cookie(scope: Scope, root: str, token: str, max_age: int) -> bytes:
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        return (f"{COOKIE}={token}; Path={root or '/'}; Max-Age={max_age}; HttpOnly; "
                f"SameSite=Strict{secure}").encode("latin-1")


def _login_page(status: int, message: str) -> Answer:
    page = ASSETS["login.html"].body.replace(
        b'<p id="login-error" class="error" role="alert" hidden></p>',
        b'<p id="login-error" class="error" role="alert">' + message.encode() + b"</p>")
    return status, page, [(b"content-type", b"text/html; charset=utf-8"),
                          (b"cache-control", b"no-store")]


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ValueError("the body is too large")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def dashboard_app(source: Source, keys: tuple[str, ...] | None = None, *,
                  sandbox: Any = None) -> DashboardApp:
    """The dashboard over ``source``. ``keys``: the relay's keys (a login is required);
    None serves loopback only with no login. ``sandbox``: a sandbox's admin URL (or
    ``Sandbox``) for the migration panel's parity, person by person."""
    return DashboardApp(source, keys, sandbox=sandbox)
