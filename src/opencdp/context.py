"""Per-call context (``context=``): where an event happened, folded into its data once.

Neither platform has a field of its own for an IP address, a user agent or a library. The
gateway takes an event's ``properties`` and nothing else (gateway spec §4.3); Customer.io's
Track API takes an event's ``attributes`` (v2) or ``data`` (v1) and documents, among them,
the fields of a page view only: ``url``, ``path``, ``referrer``, ``search`` and ``title``
(OpenAPI ``person_page``; ``person_event`` and ``person_screen`` name none). So the context
becomes event data, the same bytes for both platforms and every queue:

- on a page view, the page's fields become top-level properties, where Customer.io documents
  them (a property the caller gave wins; the gateway keeps the call's URL as ``url``);
- everything else goes under the one reserved property ``context``:
  ``{"ip", "user_agent", "page": {...}, "library": {"name", "version"}}``, Segment's shape
  with Python's spelling.

Identify calls take no context: on both platforms their data are person attributes, which a
per-call value would overwrite at every call. The context is checked here (shape, a real IP
address) and by the guards' value checks, on the caller's thread, before ``before_send``
sees the message; a call without ``context=`` pays nothing.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any, Final

from .errors import ValidationError
from .guards import entities

__all__ = ["CODE", "check", "fold"]

CODE: Final = "OCDP345"
_FIELDS: Final = {
    "page": frozenset({"url", "path", "referrer", "search", "title"}),
    "library": frozenset({"name", "version"}),
}
_TOP: Final = frozenset({"ip", "user_agent", *_FIELDS})


def _refuse(field: str, text: str) -> ValidationError:
    return ValidationError(f"{CODE} {text}", field=field, code=CODE)


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _refuse(field, f"{field} must be a non-empty string, got "
                             f"{type(value).__name__}")
    return value.strip()


def _group(value: object, field: str) -> dict[str, str]:
    known = _FIELDS[field.rpartition(".")[2]]
    if not isinstance(value, Mapping):
        raise _refuse(field, f"{field} must be a mapping of {', '.join(sorted(known))}")
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise _refuse(field, f"{field} takes {', '.join(sorted(known))}, not "
                             f"{', '.join(unknown)}")
    return {k: _text(v, f"{field}.{k}") for k, v in value.items() if v is not None}


@functools.lru_cache(maxsize=1024)
def _ip(text: str) -> str:
    """The address in its normal form; cached, since a client's calls repeat few addresses
    and parsing one costs more than the rest of the context together."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _refuse("context.ip", "context.ip is not an IPv4 or IPv6 address") from None


def _strings(found: Mapping[str, Any]) -> Iterator[str]:
    for value in found.values():
        if isinstance(value, str):
            yield value
        else:
            yield from value.values()


def check(context: object, reporter: Any) -> dict[str, Any]:
    """``context`` as plain, checked values; ``ValidationError`` (OCDP345) naming the field."""
    if not isinstance(context, Mapping):
        raise _refuse("context", "context must be a mapping such as {'ip': '203.0.113.7', "
                                 f"'user_agent': '...'}}, got {type(context).__name__}")
    unknown = sorted(str(k) for k in context if k not in _TOP)
    if unknown:
        raise _refuse("context", f"context takes {', '.join(sorted(_TOP))}, not "
                                 f"{', '.join(unknown)}")
    found: dict[str, Any] = {}
    for key, value in context.items():
        if value is None:
            continue
        if key in _FIELDS:
            group = _group(value, f"context.{key}")
            if group:
                found[key] = group
        elif key == "ip":
            found[key] = _ip(_text(value, "context.ip"))
        else:
            found[key] = _text(value, f"context.{key}")
    if "".join(_strings(found)).isascii():  # plain text: nothing more for the guards to see
        return found
    return entities.check_attributes(found, "context", reporter)


def fold(data: dict[str, Any] | None, context: object, kind: str, reporter: Any
         ) -> dict[str, Any] | None:
    """``data`` with ``context`` folded in as the module docstring says (a new dict)."""
    found = check(context, reporter)
    if not found:
        return data
    merged = dict(data or {})
    if kind.startswith("page"):
        for key, value in found.pop("page", {}).items():
            merged.setdefault(key, value)
    if found:
        if "context" in merged:
            raise _refuse("context", "the properties already hold a 'context' key; pass it "
                                     "as context= or rename the property")
        merged["context"] = found
    return merged
