"""Checks for option values: each names the option and says what to write instead.

Pure functions ``check(name, value) -> normalised value`` raising ``ConfigurationError`` with
``option=name``; ``ClientConfig`` maps each option to one of them, and ``from_env`` passes the
variable's name instead so the error names the variable. Values are never coerced across
types (no truthy strings, no ``True`` as a count); ints are accepted where seconds are wanted.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .redaction import redact_url

T = TypeVar("T")
_CODE = re.compile(r"OCDP\d{3}")
QUEUE_SCHEMES = ("memory", "sqlite", "redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def could_be_secret(text: str) -> bool:
    """A string an error must not echo: long and unbroken with a digit (a key, a token), or
    with a user part (``KEY@host``)."""
    return "@" in text or (len(text) >= 16 and not any(c.isspace() for c in text)
                           and any(c.isdigit() for c in text))


def shown(value: object) -> str:
    if isinstance(value, str):
        if could_be_secret(value):
            return f"a string of {len(value)} characters (not shown: it could be a secret)"
        return f"the string {value[:60]!r}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}" if len(text) <= 60 else type(value).__name__


def flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    hint = ""
    if isinstance(value, str):
        hint = " (any non-empty string is true, so this would have meant True)"
    raise ConfigurationError(
        f"{name} must be True or False, got {shown(value)}{hint}", option=name
    )


def count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        example = f"{name}={max(minimum, 1) * 10}" if name.isidentifier() else "10"
        raise ConfigurationError(
            f"{name} must be an integer >= {minimum} (e.g. {example}), got {shown(value)}",
            option=name,
        )
    if value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value}",
                                 option=name)
    return value


def number(name: str, value: object, *, minimum: float = 0.0, zero: bool = False,
            unit: str = "seconds") -> float:
    """A finite float; ``zero`` allows exactly ``minimum``, otherwise it must be above it."""
    bound = f">= {minimum:g}" if zero else f"> {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = ""
        if isinstance(value, str) and name.isidentifier():
            hint = f"; pass a number, e.g. {name}=5 rather than {name}='5'"
        elif isinstance(value, str):
            hint = "; pass a number, not a string"
        raise ConfigurationError(
            f"{name} must be a number of {unit} {bound}, got {shown(value)}{hint}", option=name
        )
    result = float(value)
    if not math.isfinite(result) or result < minimum or (result == minimum and not zero):
        raise ConfigurationError(f"{name} must be a finite number of {unit} {bound}, "
                                 f"got {value!r}", option=name)
    return result


def choice(name: str, value: object, choices: tuple[str, ...]) -> Any:
    if isinstance(value, str) and value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    raise ConfigurationError(f"{name} must be one of {listed}, got {shown(value)}", option=name)


def path(name: str, value: object, *, must_exist: bool = False) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a file path or None, got {shown(value)}",
                                 option=name)
    if must_exist and not os.path.isfile(value):
        raise ConfigurationError(f"{name} {value!r} is not a readable file", option=name)
    return value


def api_key(name: str, value: object) -> str:
    """A raw key as the platform issued it; a scheme prefix breaks every request."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be the API key as a string, got {shown(value)}",
                                 option=name)
    if not value.strip():
        raise ConfigurationError(f"{name} is required and must not be blank", option=name)
    key = value.strip()
    scheme = key.split(None, 1)[0].lower() if " " in key else ""
    if scheme in ("bearer", "basic", "token"):
        raise ConfigurationError(
            f"OCDP332 {name} starts with {key.split(None, 1)[0]!r}: pass the key alone. "
            "opencdp builds the Authorization header itself (the gateway takes the raw key, "
            "with no 'Bearer ' prefix; Customer.io's Track API takes HTTP Basic from site_id "
            "and the key), so the prefix would make every request fail with 401.",
            option=name, code="OCDP332",
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ConfigurationError(
            f"{name} contains whitespace or control characters; an API key is one word "
            "(check for a pasted line break or a second value)", option=name,
        )
    return key


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: object, what: str) -> str:
    """Normalise a base URL; plain http is refused except on loopback (keys travel in headers)."""
    if not isinstance(url, str):
        raise ConfigurationError(f"{what} must be an http(s) URL string, got {shown(url)}",
                                 option=what)
    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (validates the port)
    except ValueError as exc:
        raise ConfigurationError(f"{what} {redact_url(url)!r} is not a valid URL: {exc}",
                                 option=what) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"{what} must be an http(s) URL, got {redact_url(url)!r}",
                                 option=what)
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"{what} {redact_url(url)!r} has a query or fragment; give the base URL only",
            option=what)
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigurationError(
            f"{what} uses plain http on a non-loopback host ({host}); "
            "API keys would travel unencrypted. Use https.", option=what,
        )
    return url


def root(url: object, what: str, versions: str, example: str) -> str:
    """A base URL that must not already carry the API's version path (appended per call)."""
    checked = check_endpoint(url, what)
    url_path = urlsplit(checked).path
    match = re.search(rf"/(?:{versions})(?:/|$)", url_path)
    if match:
        base = checked[: len(checked) - len(url_path) + match.start()]
        raise ConfigurationError(
            f"OCDP333 {what} {redact_url(checked)!r} already contains {match.group(0).rstrip('/')}"
            f": it is the API's root, and opencdp appends {example} itself, so every request "
            f"would go to a path that does not exist. Use {redact_url(base)!r}.",
            option=what, code="OCDP333",
        )
    return checked


def gateway(url: object, what: str) -> str:
    return root(url, what, "v1", "/v1/persons/identify (and the other paths)")


def proxy(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be an http(s) proxy URL or None, "
                                 f"got {shown(value)}", option=name)
    url = value
    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018
    except ValueError as exc:
        raise ConfigurationError(f"{name} {redact_url(url)!r} is not a valid URL: {exc}",
                                 option=name) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"{name} must be an http:// or https:// proxy URL such as "
            f"'http://proxy.internal:3128', got {redact_url(url)!r}", option=name)
    return url


def queue(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"{name} must be 'memory', 'sqlite:///path.db' or 'redis://host:port/db', "
            f"got {shown(value)}", option=name)
    url = value.strip()
    try:
        scheme = "memory" if url == "memory" or url.startswith("memory?") else urlsplit(
            url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in QUEUE_SCHEMES:
        raise ConfigurationError(
            f"{name} {redact_url(url)!r} is not a queue URL; use 'memory', "
            "'sqlite:///path.db' or 'redis://host:port/db'", option=name)
    return url


def suggest(name: str, known: list[str], peers: Mapping[str, str]) -> str:
    if name in peers:
        return f"; did you mean {peers[name]}?"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return ""


def nested(name: str, value: object, cls: type[T]) -> T:
    if isinstance(value, cls):
        return value
    known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        for key in value:
            if key not in known:
                hint = suggest(str(key), known, {}) or "."
                raise ConfigurationError(
                    f"{name} has no field {key!r}{hint} Its fields: {', '.join(known)}.",
                    option=name)
        try:
            return cls(**value)
        except ConfigurationError as exc:
            raise ConfigurationError(str(exc), option=name, code=exc.code) from None
    raise ConfigurationError(
        f"{name} must be a {cls.__name__}(...) or a dict of its fields ({', '.join(known)}), "
        f"got {shown(value)}", option=name)


def fallbacks(name: str, value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ConfigurationError(
            f"{name} must be a list of URLs, got a single string; write [{value!r}] "
            "(or [] for no fallbacks)", option=name)
    if not isinstance(value, (list, tuple)):
        raise ConfigurationError(f"{name} must be a list of URLs (or [] for none), "
                                 f"got {shown(value)}", option=name)
    urls: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ConfigurationError(f"{name} must hold URL strings, got {shown(item)}",
                                     option=name)
        if item.strip():
            urls.append(gateway(item, name))
    return tuple(urls)


def silence(name: str, value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, (set, frozenset, list, tuple)):
        example = f"{{{value!r}}}" if isinstance(value, str) else "{'OCDP115'}"
        raise ConfigurationError(f"{name} must be a set of codes such as {example}, "
                                 f"got {shown(value)}", option=name)
    bad = sorted(repr(code) for code in value
                 if not isinstance(code, str) or not _CODE.fullmatch(code))
    if bad:
        raise ConfigurationError(f"{name} holds codes like 'OCDP115', not {', '.join(bad)}",
                                 option=name)
    return frozenset(value)


def logger(name: str, value: object) -> Any:
    if value is None:
        return None
    missing = [m for m in ("debug", "error") if not callable(getattr(value, m, None))]
    if not callable(getattr(value, "warning", None)) and not callable(
            getattr(value, "warn", None)):
        missing.append("warning (or warn)")
    if missing:
        raise ConfigurationError(
            f"{name} must have debug, warning (or warn) and error methods, like "
            f"logging.getLogger('myapp'); {shown(value)} lacks {', '.join(missing)}",
            option=name)
    return value


def schemas(name: str, value: object) -> Any:
    from .guards import Schemas

    if value is None or isinstance(value, Schemas):
        return value
    raise ConfigurationError(f"{name} must be an opencdp.guards.Schemas() registry or None, "
                             f"got {shown(value)}", option=name)


def callback(name: str, value: object) -> Any:
    if value is None or callable(value):
        return value
    raise ConfigurationError(f"{name} must be a function on_error(message, destination, "
                             f"reason) or None, got {shown(value)}", option=name)


def hook(name: str, value: object) -> Any:
    if value is None or callable(value):
        return value
    raise ConfigurationError(f"{name} must be a function {name}(message) returning the message "
                             f"(changed or not) or None to drop it, got {shown(value)}",
                             option=name)


def transport(name: str, value: object) -> Any:
    if value is None:
        return None
    missing = [m for m in ("send", "aclose") if not callable(getattr(value, m, None))]
    if missing:
        raise ConfigurationError(
            f"{name} must have async send(request) and aclose() methods (like "
            f"opencdp.testing.MockTransport); {shown(value)} lacks {', '.join(missing)}",
            option=name)
    return value


def max_bytes(name: str, value: object) -> int | None:
    return None if value is None else count(name, value, 1)


def endpoint(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return gateway(value, name)
