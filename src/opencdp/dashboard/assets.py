"""The page's files, shipped inside the package and served from memory.

Read once at import, each with an ETag and a gzip copy: a reload answers 304, and the first
load of the dashboard moves about 8 KB. Nothing comes from another host (no CDN, no web
font), so the page works offline and behind a strict ``Content-Security-Policy``.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

__all__ = ["ASSETS", "CSP", "Asset", "asset_response", "page_headers"]

_TYPES = {".html": b"text/html; charset=utf-8", ".js": b"text/javascript; charset=utf-8",
          ".css": b"text/css; charset=utf-8", ".svg": b"image/svg+xml"}

CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    content_type: bytes
    etag: bytes


def _load() -> dict[str, Asset]:
    out: dict[str, Asset] = {}
    for item in resources.files(__package__).joinpath("static").iterdir():
        name = item.name
        suffix = name[name.rfind("."):]
        if suffix not in _TYPES:
            continue
        body = item.read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        out[name] = Asset(body, gzip.compress(body, 9, mtime=0), _TYPES[suffix], etag)
    return out


ASSETS = _load()


def page_headers() -> list[tuple[bytes, bytes]]:
    """Headers every dashboard answer carries: no framing, no sniffing, no referrer beyond
    the page's own origin (``no-referrer`` would make browsers send ``Origin: null`` with the
    login form, which the CSRF check then refuses)."""
    return [(b"content-security-policy", CSP), (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]


def asset_response(name: str, accept_encoding: str, if_none_match: str | None,
                   ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    asset = ASSETS.get(name)
    if asset is None:
        return 404, b'{"error": "not found"}', [(b"content-type", b"application/json")]
    headers = [*page_headers(), (b"etag", asset.etag), (b"cache-control", b"no-cache"),
               (b"vary", b"accept-encoding")]
    if if_none_match is not None and asset.etag.decode() in if_none_match:
        return 304, b"", headers
    headers.append((b"content-type", asset.content_type))
    if "gzip" in accept_encoding:
        headers.append((b"content-encoding", b"gzip"))
        return 200, asset.gzipped, headers
    return 200, asset.body, headers
