"""Caller authentication: the raw key in ``Authorization``, as the gateway takes it.

Every configured key is compared, in constant time, whatever the earlier comparisons gave, so
neither the time taken nor an early exit tells a caller how much of a guess was right or which
key it matched. Keys are compared as UTF-8 bytes, so a non-ASCII header is a wrong key rather
than an error.
"""

from __future__ import annotations

from hmac import compare_digest

__all__ = ["KeyCheck", "unauthorized_message"]


class KeyCheck:
    """Holds the accepted keys as bytes; ``accepts(header)`` is the whole check."""

    __slots__ = ("_keys",)

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = tuple(k.encode("utf-8") for k in keys)

    def __repr__(self) -> str:
        return f"KeyCheck({len(self._keys)} keys)"

    def accepts(self, header: bytes | None) -> bool:
        if not header:
            return False
        given = header.strip()
        matched = False
        for key in self._keys:
            matched |= compare_digest(given, key)
        return matched


def unauthorized_message(header: bytes | None) -> str:
    """What went wrong, without saying anything about the configured keys."""
    if not header or not header.strip():
        return "Missing API key: send it raw in the Authorization header"
    if header.strip()[:7].lower() == b"bearer ":
        return "Invalid API key: send the raw key in Authorization, without 'Bearer '"
    return "Invalid API key"
