"""Keeping secrets out of text: reprs, log lines, dead-letter reasons, exception messages.

Pure functions with no state. ``ClientConfig.secrets`` lists what a configuration knows to be
secret; ``scrub`` removes those strings from any text a server or proxy sent back (an error
body that echoes request headers would otherwise put a key in a log line).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["MIN_SECRET_LENGTH", "redact", "redact_url", "scrub", "url_secrets"]

MIN_SECRET_LENGTH = 4
"""Shorter strings are not scrubbed: replacing every ``k`` in a message hides nothing."""

REDACTED = "<redacted>"


def redact(secret: str | None) -> str:
    """Show that a secret is set without showing it."""
    if not secret:
        return "<unset>"
    return f"<{len(secret)} chars>"


_USER_PART = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://)?)[^/?#]*@")


def redact_url(url: str | None) -> str | None:
    """The URL with the password of its user part masked (``redis://:***@host``)."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password is None:
        # A user part alone can be a key (``https://KEY@host``, ``KEY@host``): hide it whole.
        return _USER_PART.sub(r"\1***@", url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The password inside a URL (or its user part, when it has no password: it may be a
    key), as written and percent-decoded, for ``scrub``."""
    if not url:
        return ()
    try:
        parts = urlsplit(url)
        secret = parts.password if parts.password is not None else parts.username
    except ValueError:
        return ()
    if not secret:
        return ()
    return tuple(dict.fromkeys((secret, unquote(secret))))


def scrub(text: str | None, secrets: Iterable[str | None]) -> str | None:
    """``text`` with every secret of at least ``MIN_SECRET_LENGTH`` characters replaced.

    One pass, longest secret first at each position, so a secret that contains another is
    removed whole and the replacement is never searched again.
    """
    if text is None:
        return None
    usable = tuple(sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH},
                          key=lambda s: (-len(s), s)))
    if not usable:
        return text
    return _pattern(usable).sub(REDACTED, text)


@functools.lru_cache(maxsize=32)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, secrets)))
