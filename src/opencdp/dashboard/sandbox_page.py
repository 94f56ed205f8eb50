"""The sandbox's page, served by the sandbox itself under ``/_sandbox/dashboard/``.

Under the admin prefix on purpose: the admin guard (loopback ``Host`` with the bound port, a
loopback ``Origin``, JSON POSTs) already stands in front of it, so the page and the admin API
it drives share one door, and the page needs no login of its own. Everything it shows comes
from the admin API one directory up, except two reads that API lacks: a people search that
returns a page of matches rather than every stored person, and the request log.

The handler is synchronous and answers the sandbox's plain ``(status, body, headers)``
tuples, as every other sandbox handler: it reads in-memory dicts on the server's loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from .assets import asset_response

if TYPE_CHECKING:
    from ..sandbox.state import State
    from ..sandbox.store import Person, ServiceStore

__all__ = ["PAGE_PREFIX", "sandbox_page"]

PAGE_PREFIX = "/_sandbox/dashboard"
Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


def _json(status: int, value: Any) -> Answer:
    return status, orjson.dumps(value), [(b"content-type", b"application/json"),
                                         (b"cache-control", b"no-store")]


def _key(person: Person) -> str:
    return person.id or person.email or person.phone or f"cio_{person.cio_id}"


def _summary(person: Person) -> dict[str, Any]:
    return {"key": _key(person), "id": person.id, "email": person.email,
            "phone": person.phone, "cio_id": person.cio_id,
            "attributes": len(person.attributes), "events": len(person.events),
            "devices": len(person.devices), "suppressed": person.suppressed}


def _search(st: ServiceStore, q: str, limit: int) -> list[dict[str, Any]]:
    needle = q.lower()
    out = []
    for person in st.people.values():
        if needle and not any(needle in (v or "").lower()
                              for v in (person.id, person.email, person.phone)):
            continue
        out.append(_summary(person))
        if len(out) >= limit:
            break
    return out


def sandbox_page(state: State, method: str, path: str, query: bytes,
                 headers: list[tuple[bytes, bytes]]) -> Answer:
    """The answer to a request under ``PAGE_PREFIX`` (the admin guard already passed)."""
    rel = path[len(PAGE_PREFIX):]
    found = dict(headers)
    encoding = found.get(b"accept-encoding", b"").decode("latin-1")
    etag = found.get(b"if-none-match")
    if method not in ("GET", "HEAD"):
        return _json(405, {"error": f"{method} is not allowed here"})
    if rel == "":
        return 308, b"", [(b"location", (PAGE_PREFIX + "/").encode())]
    if rel == "/":
        return asset_response("sandbox.html", encoding, None)
    if rel.startswith("/static/"):
        return asset_response(rel[8:], encoding, etag.decode("latin-1") if etag else None)
    args = {k: v[-1] for k, v in parse_qs(query.decode("latin-1")).items()}
    try:
        limit = min(max(int(args.get("limit") or 50), 1), 500)
        after = int(args.get("after") or 0)
    except ValueError:
        return _json(400, {"error": "limit and after are integers"})
    if rel == "/api/people":
        q = args.get("q", "").strip()
        return _json(200, {name: _search(state.store.service(name), q, limit)
                           for name in ("opencdp", "customerio")})
    if rel == "/api/requests":
        return _json(200, {"entries": state.requests_log.after(after)})
    return _json(404, {"error": f"no sandbox page {rel}"})
