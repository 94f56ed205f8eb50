"""``create_app(config)``: the sandbox as one ASGI application.

A prefix switch sends each request to its service (gateway, Track, App API, admin); the
fault middleware wraps it all. The services' handlers are synchronous: they only touch
in-memory dicts, so awaiting would cost time and buy nothing.
"""

from __future__ import annotations

from typing import Any

from ..dashboard.sandbox_page import PAGE_PREFIX, sandbox_page
from ..serving import lifespan
from .admin import ADMIN_PREFIX, AdminAPI, content_refusal, refusal
from .app_api import AppAPI
from .app_people import AppPeopleAPI
from .config import SandboxConfig
from .faults import FaultMiddleware
from .gateway import GATEWAY_PREFIX, GatewayAPI
from .http import (
    Receive,
    Reject,
    Request,
    Scope,
    Send,
    error_response,
    json_response,
    read_body,
    send_response,
)
from .state import State
from .track import TrackAPI

__all__ = ["SandboxApp", "create_app", "urls_for"]


def urls_for(base: str, ca_file: str | None) -> dict[str, Any]:
    """The start-up line's keys, for a server reachable at ``base`` (``scheme://host:port``)."""
    return {
        "opencdp": f"{base}{GATEWAY_PREFIX}",
        "customerio_track": base,
        "customerio_app": base,
        "admin": f"{base}{ADMIN_PREFIX}",
        "ca_file": ca_file,
        "dashboard": f"{base}{PAGE_PREFIX}/",
    }


class SandboxApp:
    """The router. ``state`` is public so a runner can set the advertised URLs."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.gateway = GatewayAPI(state)
        self.track = TrackAPI(state)
        self.app_api = AppAPI(state)
        self.app_people = AppPeopleAPI(state)
        self.admin = AdminAPI(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        path: str = scope["path"]
        admin = path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
        try:
            if admin:
                _raise(refusal(scope, state.config.allow_remote))
            req = Request(scope, await read_body(receive, scope))
            if admin:
                _raise(content_refusal(scope, req.body))
        except Reject as r:
            if path.startswith(ADMIN_PREFIX):
                response = json_response(r.status, {"error": r.message, "reason": r.reason})
            else:
                response = error_response(path, r)
            if r.status == 408:
                response[2].append((b"connection", b"close"))
            await send_response(send, response)
            return
        if not state.urls:
            self._learn_urls(scope)
        if path.startswith("/gateway/"):
            response = self.gateway.handle(req)
            st = state.store.opencdp
        elif path.startswith(("/api/", "/unsubscribe/")):
            response = self.track.handle(req)
            st = state.store.customerio
        elif path.startswith("/v1/"):
            api = self.app_people if self.app_people.owns(path) else self.app_api
            response = api.handle(req)
            st = state.store.customerio
        elif admin and path.startswith(PAGE_PREFIX):
            await send_response(send, sandbox_page(state, req.method, path, req.query,
                                                   scope["headers"]))
            return
        elif admin:
            await send_response(send, await self.admin.handle(req))
            return
        else:
            await send_response(send, json_response(404, {"message": f"no route {path}"}))
            return
        status = response[0]
        st.responses[status] = st.responses.get(status, 0) + 1
        await send_response(send, response)

    def _learn_urls(self, scope: Scope) -> None:
        server = scope.get("server")
        if server:
            host, port = server[0], server[1]
            if ":" in host:
                host = f"[{host}]"
            base = f"{scope.get('scheme', 'http')}://{host}:{port}"
            self.state.base_url = base
            self.state.urls = urls_for(base, None)


def _raise(refused: Reject | None) -> None:
    if refused is not None:
        raise refused


def create_app(config: SandboxConfig | None = None) -> FaultMiddleware:
    """The sandbox ASGI app for ``config`` (defaults: the documented test credentials).

    The returned middleware's ``state`` holds the store and settings; its ``release()``
    drops hanging connections at shutdown.
    """
    state = State(config or SandboxConfig())
    return FaultMiddleware(SandboxApp(state), state)
