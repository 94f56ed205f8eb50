"""Customer.io Track API v1 and v2, as the spec and the published OpenAPI describe them.

This module is the front door: it matches a path to an operation, checks the Track key
(and explains a wrong one), applies the workspace's rate window, and hands the request to
one version. The versions live beside it along their seams: ``track_v1`` (many small
endpoints), ``track_v2`` (entity and batch operations), ``track_people`` (whom a call is
about, the same rules for both) and ``track_fields`` (field rules both check).
"""


from __future__ import annotations

import base64
import binascii

from .http import Reject, Request, Response, error_response, json_response
from .state import State
from .store import ServiceStore
from .track_fields import NO_AUTH, PLATFORMS
from .track_v1 import TrackV1
from .track_v2 import TrackV2

__all__ = ["PLATFORMS", "TrackAPI", "auth_hint", "basic_matches"]


def auth_hint(authorization: str | None, *, site_id: str, track_key: str, app_key: str,
              expects: str) -> str:
    """Explain a 401 without echoing any secret: name the classic key mix-ups."""
    if not authorization:
        return "missing Authorization header"
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    if expects == "track":
        if scheme == "bearer":
            if value == app_key:
                return ("an App API key was sent to the Track API; Track uses HTTP Basic "
                        "auth with your site id and Track API key")
            return "the Track API uses HTTP Basic auth (site id : Track API key), not Bearer"
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return "malformed Basic credentials"
            if password == app_key:
                return ("an App API key was sent as the Track API key; Track needs the "
                        "site id and Track API key")
            if user != site_id:
                return "unknown site id"
            return "wrong Track API key for this site id"
        return "the Track API uses HTTP Basic auth (site id : Track API key)"
    # App API
    if scheme == "basic":
        return ("Track API credentials (Basic site id : key) were sent to the App API; "
                "it needs an App API key as a Bearer token")
    if scheme == "bearer":
        if value == track_key:
            return ("a Track API key was sent to the App API; transactional sends need an "
                    "App API key")
        return "invalid App API key"
    return "the App API needs 'Authorization: Bearer <App API key>'"


def basic_matches(authorization: str | None, expected: str) -> bool:
    """``Basic <expected>``, the scheme word in any case (HTTP auth schemes are
    case-insensitive, RFC 9110 §11.1)."""
    if not authorization:
        return False
    scheme, _, value = authorization.strip().partition(" ")
    return scheme.lower() == "basic" and value.strip() == expected


class TrackAPI:
    """Routes ``/api/v1/*``, ``/api/v2/*`` and ``/unsubscribe/*`` for one sandbox."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.strict = state.config.strict
        self.v1 = TrackV1(state).routes
        self.v2 = TrackV2(state)

    # --- entry ----------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        state = self.state
        st = state.store.customerio
        try:
            name, args = self._match(req)
        except Reject as r:
            st.reject(r.reason)
            return error_response(req.path, r)
        v2 = name in ("batch", "entity")
        if name not in NO_AUTH and req.authorization != state.track_auth and not basic_matches(
                req.authorization, state.track_basic):
            return self._unauthorized(st, req, v2)
        wait = state.windows["track"].check(state.clock.monotonic(), state.rate_limit("customerio"))
        if wait:
            st.reject("rate_limited")
            retry = str(max(1, round(wait + 0.4999))).encode()
            msg = "rate limit exceeded: too many requests per second for this workspace"
            body = ({"errors": [{"reason": "rate_limited", "message": msg}]} if v2
                    else {"meta": {"errors": [msg]}})
            return json_response(429, body, [(b"retry-after", retry)])
        try:
            if v2:
                return self.v2.handle(st, req, name)
            return self.v1[name](st, req, args)
        except Reject as r:
            st.reject(r.reason)
            if name == "merge_customers":
                return json_response(r.status, {"meta": {"error": r.message}}, r.headers)
            return error_response(req.path, r)

    def _match(self, req: Request) -> tuple[str, list[str]]:
        """The operation a path names and its path parameters; 404 for no operation, 405
        (with ``Allow``) for a method the operation does not take."""
        path = req.path
        name: str | None = None
        args: list[str] = []
        allowed: tuple[str, ...] = ("POST",)
        if path.startswith("/api/v2/"):
            if path in ("/api/v2/batch", "/api/v2/entity"):
                name = path[8:]
        elif path.startswith("/unsubscribe/"):
            seg = req.split(len("/unsubscribe/"))
            if len(seg) == 1 and seg[0]:
                name, args = "unsubscribe", seg
        elif path.startswith("/api/v1/"):
            seg = req.split(len("/api/v1/"))
            n = len(seg)
            head = seg[0] if seg else ""
            if head == "customers" and n >= 2 and seg[1]:
                rest = seg[2:]
                args = [seg[1]]
                if not rest:
                    name, allowed = "customer", ("PUT", "DELETE")
                elif rest == ["events"]:
                    name = "event"
                elif rest == ["devices"]:
                    name, allowed = "add_device", ("PUT",)
                elif len(rest) == 2 and rest[0] == "devices" and rest[1]:
                    name, allowed, args = "delete_device", ("DELETE",), [seg[1], rest[1]]
                elif rest in (["suppress"], ["unsuppress"]):
                    name = rest[0]
            elif n == 1 and head in ("events", "merge_customers", "metrics"):
                name = head
            elif seg == ["push", "events"]:
                name = "push_events"
            elif seg == ["accounts", "region"]:
                name, allowed = "region", ("GET", "HEAD")
            elif head == "segments" and n == 3 and seg[1] and seg[2] in ("add_customers",
                                                                         "remove_customers"):
                name, args = seg[2], [seg[1]]
            elif head == "forms" and n == 3 and seg[1] and seg[2] == "submit":
                name, args = "form", [seg[1]]
        if name is None:
            raise Reject(404, "not_found", f"no such endpoint: {req.method} {path}")
        if req.method not in allowed:
            raise Reject(405, "method_not_allowed",
                         f"{req.method} is not allowed on {path}; use {', '.join(allowed)}",
                         headers=[(b"allow", ", ".join(allowed).encode())])
        return name, args

    def _unauthorized(self, st: ServiceStore, req: Request, v2: bool) -> Response:
        cfg = self.state.config
        hint = auth_hint(req.authorization, site_id=cfg.site_id, track_key=cfg.track_key,
                         app_key=cfg.app_key, expects="track")
        st.reject("wrong_key_type" if "App API key" in hint else "unauthorized")
        msg = f"Unauthorized request: {hint}"
        body = ({"errors": [{"reason": "unauthorized", "message": msg}]} if v2
                else {"meta": {"error": msg}})
        return json_response(401, body, [(b"www-authenticate", b'Basic realm="track"')])
