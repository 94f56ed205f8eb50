"""The admin API under ``/_sandbox``: inspection, reset, faults, and signed webhooks.

It takes no credentials, since every test needs it: the sandbox listens on loopback only
(unless ``allow_remote``), and ``refusal`` keeps browsers out, which can reach loopback too.
A page on another site may send a "simple" cross-site POST (``text/plain``, no preflight), and
a DNS-rebound name points the page's own origin at 127.0.0.1; so every admin request must
name a loopback host with the bound port (``Host``), come from no page or a loopback one
(``Origin``), and a POST must be JSON, which a page can only send after a CORS preflight
that the sandbox never grants.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from ..checks import is_loopback
from ..errors import ConfigurationError
from .app_people import reads_json
from .config import SERVICES
from .http import Reject, Request, Response, Scope, json_response
from .state import State
from .store import Person, ServiceStore, event_id

__all__ = ["ADMIN_PREFIX", "AdminAPI", "content_refusal", "diff_people", "refusal"]

ADMIN_PREFIX: Final = "/_sandbox"
_P: Final = len(ADMIN_PREFIX) + 1
WEBHOOK_TIMEOUT: Final = 4.0  # Customer.io's own webhook timeout


def _sign(signing_key: str, timestamp: int | str, body: bytes) -> str:
    try:
        from ..webhooks import sign_payload
    except ImportError:  # the webhooks module is optional at this layer
        mac = hmac.new(signing_key.encode(), b"v0:" + str(timestamp).encode() + b":" + body,
                       hashlib.sha256)
        return mac.hexdigest()
    return sign_payload(signing_key, timestamp, body)


def _is_loopback(host: str | None) -> bool:
    return host is not None and is_loopback(host)


def _host_port(value: str) -> tuple[str, int | None] | None:
    """``("::1", 8080)`` for ``[::1]:8080``; None when ``value`` is no ``host[:port]``."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket:
            return None
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if not rest:
        return name, None
    if rest[0] != ":" or not rest[1:].isascii() or not rest[1:].isdigit() or len(rest) > 6:
        return None
    return name, int(rest[1:])


def _forbidden(message: str, reason: str) -> Reject:
    return Reject(403, reason, message)


def refusal(scope: Scope, allow_remote: bool) -> Reject | None:
    """Why an admin request is refused before its body is read (see the module docstring),
    or None. With ``allow_remote`` any ``Host`` is taken: the operator chose the network."""
    host = origin = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
        elif name == b"origin":
            origin = value.decode("latin-1")
    if not allow_remote:
        named = _host_port(host) if host is not None else None
        server = scope.get("server")
        bound = server[1] if server else None
        default = 443 if scope.get("scheme") == "https" else 80
        if named is None or not is_loopback(named[0]) or (
                bound is not None and (named[1] or default) != bound):
            return _forbidden("the admin API answers only requests to a loopback host with "
                              "the sandbox's port (Host header)", "forbidden_host")
    if origin is not None:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not _is_loopback(parts.hostname):
            return _forbidden("the admin API refuses requests from web pages that are not on "
                              "loopback (Origin header)", "forbidden_origin")
    return None


def content_refusal(scope: Scope, body: bytes) -> Reject | None:
    """A POST must be JSON (``application/json`` or ``*+json``); one without a body may omit
    the Content-Type."""
    if scope["method"] != "POST":
        return None
    kind = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    if kind is None and not body:
        return None
    media = (kind or b"").split(b";", 1)[0].strip().lower()
    if media == b"application/json" or (media.startswith(b"application/")
                                        and media.endswith(b"+json")):
        return None
    return Reject(415, "unsupported_media_type", "admin POSTs take application/json bodies")


def _service(name: str) -> str:
    if name not in SERVICES:
        raise Reject(404, "not_found", f"unknown service {name!r}; use opencdp or customerio")
    return name


def _suppressed(st: ServiceStore) -> list[dict[str, Any]]:
    """The suppressed profiles: deleted from the service, listed (``"suppressed": true``)
    so a test or a reconciliation still sees whom the suppression hit."""
    if not st.suppressed:
        return []
    unique = {id(p): p for p in st.suppressed.values()}
    return [p.to_json() for p in unique.values()]


def _segments(st: ServiceStore) -> dict[str, list[str]]:
    """Manual segment id -> the people in it (id, else email, else phone, else
    ``cio_<cio_id>``)."""
    out: dict[str, list[str]] = {}
    for person in st.people.values():
        for segment in person.segments:
            out.setdefault(segment, []).append(
                person.id or person.email or person.phone or f"cio_{person.cio_id}")
    return {k: sorted(v) for k, v in sorted(out.items())}


def _person_keys(p: Person | None) -> dict[str, Any] | None:
    return None if p is None else p.to_json()


def diff_people(cdp: Person | None, cio: Person | None) -> dict[str, Any]:
    """What differs between one person's OpenCDP and Customer.io records."""
    a = cdp.attributes if cdp else {}
    b = cio.attributes if cio else {}
    attributes = {
        "only_opencdp": {k: v for k, v in a.items() if k not in b},
        "only_customerio": {k: v for k, v in b.items() if k not in a},
        "different": {k: {"opencdp": a[k], "customerio": b[k]}
                      for k in a.keys() & b.keys() if a[k] != b[k]},
    }
    ea = {event_id(e[1]) or f"{e[0]}@{e[2]}": e[0] for e in (cdp.events if cdp else [])}
    eb = {event_id(e[1]) or f"{e[0]}@{e[2]}": e[0] for e in (cio.events if cio else [])}
    events = {
        "only_opencdp": [{"id": k, "name": v} for k, v in ea.items() if k not in eb],
        "only_customerio": [{"id": k, "name": v} for k, v in eb.items() if k not in ea],
        "common": len(ea.keys() & eb.keys()),
    }
    db = set(cio.devices) if cio else set()
    known: set[str] = set()
    only_cdp = []
    for device_id, d in (cdp.devices.items() if cdp else ()):
        names = {device_id, *(t for t in (d.get("fcmToken"), d.get("apnToken")) if t)}
        known |= names
        if not names & db:
            only_cdp.append(device_id)
    devices = {"only_opencdp": sorted(only_cdp), "only_customerio": sorted(db - known)}
    in_sync = (cdp is not None and cio is not None
               and not any(attributes.values())
               and not events["only_opencdp"] and not events["only_customerio"]
               and not devices["only_opencdp"] and not devices["only_customerio"]
               and cdp.suppressed == cio.suppressed)
    return {"attributes": attributes, "events": events, "devices": devices,
            "suppressed": {"opencdp": cdp.suppressed if cdp else None,
                           "customerio": cio.suppressed if cio else None},
            "in_sync": in_sync}


class AdminAPI:
    def __init__(self, state: State, release: Any = None) -> None:
        self.state = state
        self.release = release

    async def handle(self, req: Request) -> Response:
        try:
            if req.method == "POST" and req.path == f"{ADMIN_PREFIX}/webhooks/send":
                return await self._webhook(req)
            return self._route(req)
        except Reject as r:
            return json_response(r.status, {"error": r.message, "reason": r.reason})
        except ConfigurationError as exc:
            return json_response(400, {"error": str(exc), "reason": "invalid_faults"})

    def _route(self, req: Request) -> Response:
        state = self.state
        seg = req.split(_P)
        method = req.method
        head = seg[0] if seg else ""
        if method in ("GET", "HEAD"):
            if head == "":
                return json_response(200, {"urls": state.urls, "site_id": state.config.site_id,
                                           "services": list(SERVICES)})
            if head == "stats" and len(seg) == 1:
                return json_response(200, {s: state.store.service(s).stats() for s in SERVICES})
            if head == "people" and len(seg) == 2:
                st = state.store.service(_service(seg[1]))
                return json_response(200, [p.to_json() for p in st.people.values()]
                                     + _suppressed(st))
            if head == "people" and len(seg) == 3:
                person = state.store.service(_service(seg[1])).find_any(seg[2])
                if person is None:
                    raise Reject(404, "not_found", f"no person {seg[2]!r} in {seg[1]}")
                return json_response(200, person.to_json())
            if head == "sends" and len(seg) == 2:
                return json_response(200, self._sends(state.store.service(_service(seg[1])),
                                                      req))
            if head == "anonymous_events" and len(seg) == 1:
                return json_response(200, state.store.customerio.anonymous_events)
            if head == "objects" and len(seg) == 1:
                return json_response(200, [
                    {"object_type_id": k[0], "object_id": k[1], **v}
                    for k, v in state.store.customerio.objects.items()])
            if head == "deliveries" and len(seg) == 1:
                return json_response(200, state.store.customerio.deliveries)
            if head == "forms" and len(seg) == 1:
                return json_response(200, state.store.customerio.forms)
            if head == "segments" and len(seg) == 1:
                return json_response(200, _segments(state.store.customerio))
            if head == "suppressed" and len(seg) == 1:
                return json_response(200, _suppressed(state.store.customerio))
            if head == "diff" and len(seg) == 2:
                cdp = state.store.opencdp.find_any(seg[1])
                cio = state.store.customerio.find_any(seg[1])
                return json_response(200, {"id": seg[1], "opencdp": _person_keys(cdp),
                                           "customerio": _person_keys(cio),
                                           **diff_people(cdp, cio)})
            if head == "faults" and len(seg) == 1:
                return json_response(200, self._faults())
            if head == "app_reads" and len(seg) == 1:
                return json_response(200, reads_json(state))
        elif method == "POST":
            if head == "reset" and len(seg) == 1:
                state.reset()
                return json_response(200, {"reset": True})
            if head == "faults" and len(seg) == 1:
                body = req.json()
                if not isinstance(body, dict):
                    raise Reject(400, "invalid_faults", "the faults body must be an object "
                                 "keyed by service")
                state.set_faults(body)
                return json_response(200, self._faults())
        elif method == "DELETE" and head == "faults" and len(seg) == 1:
            state.set_faults(None)
            return json_response(200, self._faults())
        raise Reject(404, "not_found", f"no admin endpoint {method} {req.path}")

    def _faults(self) -> dict[str, Any]:
        return {s: f.to_json() for s, f in self.state.faults.items()}

    @staticmethod
    def _sends(st: ServiceStore, req: Request) -> list[dict[str, Any]]:
        wanted = parse_qs(req.query.decode("latin-1")).get("id")
        if not wanted:
            return st.sends
        return [s for s in st.sends
                if any(str(v) in wanted for v in (s.get("identifiers") or {}).values())]

    async def _webhook(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise Reject(400, "invalid_body", "body must be an object")
        url, key, event = body.get("url"), body.get("signing_key"), body.get("event")
        if not isinstance(url, str) or not isinstance(key, str) or not key:
            raise Reject(400, "invalid_body", "url and signing_key are required strings")
        if not isinstance(event, dict):
            raise Reject(400, "invalid_body", "event must be an object")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not _is_loopback(parts.hostname):
            raise Reject(400, "not_loopback",
                         "the sandbox only delivers webhooks to loopback http(s) URLs")
        ts = body.get("timestamp", int(self.state.clock.time()))
        if isinstance(ts, bool) or not isinstance(ts, (int, str)):
            raise Reject(400, "invalid_body", "timestamp must be an integer or a string")
        raw = orjson.dumps(event)
        headers = {"content-type": "application/json", "x-cio-timestamp": str(ts),
                   "x-cio-signature": _sign(key, ts, raw)}
        # Loopback only (checked above); a test receiver's self-signed certificate is fine.
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, verify=False) as client:  # noqa: S501
            try:
                resp = await client.post(url, content=raw, headers=headers)
            except httpx.HTTPError as exc:
                return json_response(502, {"error": f"webhook delivery failed: "
                                                    f"{type(exc).__name__}",
                                           "reason": "delivery_failed"})
        return json_response(200, {"status": resp.status_code, "body": resp.text[:2000],
                                   "timestamp": str(ts), "signature": headers["x-cio-signature"]})
