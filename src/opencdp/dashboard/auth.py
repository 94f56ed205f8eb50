"""Who may see the dashboard and act on it: sessions, CSRF tokens and the loopback guard.

The relay key is typed once into a login form; it is never put in a URL (browsers keep URLs
in history, proxies log them), never echoed into a page and never logged. A successful login
gets a random session token in a cookie that scripts cannot read (``HttpOnly``) and that the
browser sends only with requests started from the dashboard's own site (``SameSite=Strict``),
so another site can neither read the dashboard nor make the browser act on it.

Actions (replay, purge) are POSTs that need, besides the session, a per-session CSRF token in
a request header and, when the browser names one, an ``Origin`` equal to the dashboard's own.
``SameSite`` alone would do in current browsers; the token keeps older ones, and a cookie
set on a sibling subdomain, out too. Scripts may skip the form and send the key raw in
``Authorization`` as the gateway takes it: such a request carries no ambient credential, so it
needs no token.

Without keys (``opencdp dashboard`` on an app's own queue, the sandbox) the guard is the
sandbox's: the ``Host`` must be loopback with the bound port (a DNS-rebound name is refused)
and a browser's ``Origin`` must be loopback too, and POSTs still need the page's token.

Failed logins are throttled per client address (``LOGIN_FAILURES`` a minute), so a guessing
script gets 429s rather than answers.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..checks import is_loopback

__all__ = ["COOKIE", "LOGIN_FAILURES", "SESSION_SECONDS", "Guard", "Session"]

COOKIE = "opencdp_dashboard"
SESSION_SECONDS = 12 * 3600.0
"""A session lasts a working day; the page then shows the login again."""
MAX_SESSIONS = 1000
LOGIN_FAILURES = 5
"""Failed logins allowed per client address per minute."""

Scope = MutableMapping[str, Any]


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    csrf: str
    expires: float


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cookie(scope: Scope, name: str) -> str | None:
    raw = header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _host_port(value: str) -> tuple[str, int | None]:
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
    else:
        name, _, port = value.partition(":")
        rest = f":{port}" if port else ""
    port_text = rest[1:]
    return name, int(port_text) if port_text.isdigit() else None


class _Keys:
    """The relay's keys, each compared in constant time whatever the others gave (as
    ``opencdp.server.auth`` does; not imported from there, which would pull in Starlette)."""

    __slots__ = ("_keys",)

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = tuple(k.encode("utf-8") for k in keys)

    def accepts(self, given: bytes) -> bool:
        given = given.strip()
        matched = False
        for key in self._keys:
            matched |= secrets.compare_digest(given, key)
        return matched and bool(given)


class Guard:
    """The dashboard's door: ``keys`` (None: loopback only, no login) and the sessions."""

    def __init__(self, keys: tuple[str, ...] | None) -> None:
        self.keys = _Keys(keys) if keys else None
        self.page_csrf = secrets.token_urlsafe(24)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Guard {'keys' if self.keys else 'loopback'}, {len(self._sessions)} sessions>"

    @property
    def login_required(self) -> bool:
        return self.keys is not None

    # where a request may come from ---------------------------------------------------------
    def refusal(self, scope: Scope) -> str | None:
        """Why a request is refused before anything else, or None (loopback mode only)."""
        if self.keys is not None:
            return None
        host = header(scope, b"host")
        server = scope.get("server")
        if host is None:
            return "a Host header is required"
        name, port = _host_port(host)
        default = 443 if scope.get("scheme") == "https" else 80
        if not is_loopback(name) or (server and (port or default) != server[1]):
            return "this dashboard answers only requests to its loopback address (Host)"
        origin = header(scope, b"origin")
        if origin is not None and not is_loopback(urlsplit(origin).hostname or ""):
            return "this dashboard refuses requests from pages that are not on loopback"
        return None

    @staticmethod
    def same_origin(scope: Scope) -> bool:
        """True when the browser named no ``Origin`` or named the dashboard's own."""
        origin = header(scope, b"origin")
        if origin is None:
            return True
        host = header(scope, b"host") or ""
        scheme = scope.get("scheme", "http")
        return origin.strip().lower() == f"{scheme}://{host.strip().lower()}"

    # sessions ------------------------------------------------------------------------------
    def session(self, scope: Scope) -> Session | None:
        token = cookie(scope, COOKIE)
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            found = self._sessions.get(token)
            if found is None:
                return None
            if found.expires <= now:
                del self._sessions[token]
                return None
            return found

    def key_header(self, scope: Scope) -> bool:
        """A raw key in ``Authorization`` (scripts), checked in constant time."""
        raw = header(scope, b"authorization")
        return self.keys is not None and raw is not None and self.keys.accepts(
            raw.encode("latin-1"))

    def allowed(self, scope: Scope) -> bool:
        """May this request read the dashboard's data?"""
        if self.keys is None:
            return True
        return self.key_header(scope) or self.session(scope) is not None

    def csrf_for(self, scope: Scope) -> str:
        if self.keys is None:
            return self.page_csrf
        found = self.session(scope)
        return found.csrf if found is not None else ""

    def may_act(self, scope: Scope) -> bool:
        """May this POST change anything? A script's key, or a session with its token from
        the dashboard's own origin."""
        if self.keys is not None and self.key_header(scope):
            return True
        if not self.same_origin(scope):
            return False
        given = header(scope, b"x-csrf-token") or ""
        expected = self.csrf_for(scope)
        return bool(expected) and secrets.compare_digest(given.encode(), expected.encode())

    def login(self, client: str, key: str) -> Session | None:
        """A new session for the right key; None for a wrong one (and the failure counted)."""
        if self.keys is None:
            return None
        now = time.monotonic()
        if self.keys.accepts(key.encode("utf-8", "replace")):
            made = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(24),
                           now + SESSION_SECONDS)
            with self._lock:
                self._sessions[made.token] = made
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
            return made
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if t > now - 60.0]
            recent.append(now)
            self._failures[client] = recent
            if len(self._failures) > 10_000:
                self._failures.clear()
        return None

    def throttled(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if t > now - 60.0]
        return len(recent) >= LOGIN_FAILURES

    def logout(self, scope: Scope) -> None:
        token = cookie(scope, COOKIE)
        if token:
            with self._lock:
                self._sessions.pop(token, None)
