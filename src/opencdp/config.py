"""Options, as frozen keyword-only dataclasses validated on construction.

Every option is checked once, here, when the configuration is built: its type (no truthy
strings, no ``True`` where a count is wanted), its range, and the mistakes we have seen
(``Bearer `` before a key, an endpoint that already ends in ``/v1``, a misspelt keyword or a
peer SDK's name for an option). A ``ConfigurationError`` names the option and says what to
write instead. Environment variables are read in one place only, ``ClientConfig.from_env``;
nothing here reads global state at import time. Secrets never appear in a ``repr``.
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar
from urllib.parse import quote, urlsplit

from .errors import ConfigurationError
from .redaction import redact, redact_url, scrub, url_secrets

if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:
    from typing_extensions import Unpack

if TYPE_CHECKING:
    from .options import ClientOptions

__all__ = [
    "DEFAULT_CDP_ENDPOINT",
    "DEFAULT_CDP_FALLBACKS",
    "BreakerConfig",
    "ClientConfig",
    "CustomerIO",
    "Notice",
    "RateLimitConfig",
    "RetryConfig",
    "check_endpoint",
    "redact",
    "redact_url",
    "scrub",
]

DEFAULT_CDP_ENDPOINT = "https://api.opencdp.io/gateway/data-gateway"
DEFAULT_CDP_FALLBACKS = (
    "https://api.opencdp.com/gateway/data-gateway",
    "https://api.opencdp.xyz/gateway/data-gateway",
)
_REGION_HOSTS = {
    "us": ("https://track.customer.io", "https://api.customer.io"),
    "eu": ("https://track-eu.customer.io", "https://api-eu.customer.io"),
}
MAX_CONCURRENT_CAP = 30
_QUEUE_SCHEMES = ("memory", "sqlite", "redis", "rediss", "unix")
_CODE = re.compile(r"OCDP\d{3}")
T = TypeVar("T")


class Notice(NamedTuple):
    """Something about a valid configuration the client says once at construction."""

    code: str
    text: str


# --- value checks: each names the option and says what to write -----------------------------

def _shown(value: object) -> str:
    if isinstance(value, str):
        return f"the string {value[:60]!r}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}" if len(text) <= 60 else type(value).__name__


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    hint = ""
    if isinstance(value, str):
        hint = " (any non-empty string is true, so this would have meant True)"
    raise ConfigurationError(
        f"{name} must be True or False, got {_shown(value)}{hint}", option=name
    )


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        example = f"{name}={max(minimum, 1) * 10}"
        raise ConfigurationError(
            f"{name} must be an integer >= {minimum} (e.g. {example}), got {_shown(value)}",
            option=name,
        )
    if value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value}",
                                 option=name)
    return value


def _number(name: str, value: object, *, minimum: float = 0.0, zero: bool = False,
            unit: str = "seconds") -> float:
    """A finite float; ``zero`` allows exactly ``minimum``, otherwise it must be above it."""
    bound = f">= {minimum:g}" if zero else f"> {minimum:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = ""
        if isinstance(value, str):
            hint = f"; pass a number, e.g. {name}=5 rather than {name}='5'"
        raise ConfigurationError(
            f"{name} must be a number of {unit} {bound}, got {_shown(value)}{hint}", option=name
        )
    number = float(value)
    if not math.isfinite(number) or number < minimum or (number == minimum and not zero):
        raise ConfigurationError(f"{name} must be a finite number of {unit} {bound}, "
                                 f"got {value!r}", option=name)
    return number


def _choice(name: str, value: object, choices: tuple[str, ...]) -> Any:
    if isinstance(value, str) and value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    raise ConfigurationError(f"{name} must be one of {listed}, got {_shown(value)}", option=name)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string, got {_shown(value)}",
                                 option=name)
    return value.strip()


def _path(name: str, value: object, *, must_exist: bool = False) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a file path or None, got {_shown(value)}",
                                 option=name)
    if must_exist and not os.path.isfile(value):
        raise ConfigurationError(f"{name} {value!r} is not a readable file", option=name)
    return value


def _api_key(name: str, value: object) -> str:
    """A raw key as the platform issued it; a scheme prefix breaks every request."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be the API key as a string, got {_shown(value)}",
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: object, what: str) -> str:
    """Normalise a base URL; plain http is refused except on loopback (keys travel in headers)."""
    if not isinstance(url, str):
        raise ConfigurationError(f"{what} must be an http(s) URL string, got {_shown(url)}",
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
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            f"{what} uses plain http on a non-loopback host ({host}); "
            "API keys would travel unencrypted. Use https.", option=what,
        )
    return url


def _root(url: object, what: str, versions: str, example: str) -> str:
    """A base URL that must not already carry the API's version path (appended per call)."""
    checked = check_endpoint(url, what)
    path = urlsplit(checked).path
    match = re.search(rf"/(?:{versions})(?:/|$)", path)
    if match:
        base = checked[: len(checked) - len(path) + match.start()]
        raise ConfigurationError(
            f"OCDP333 {what} {redact_url(checked)!r} already contains {match.group(0).rstrip('/')}"
            f": it is the API's root, and opencdp appends {example} itself, so every request "
            f"would go to a path that does not exist. Use {redact_url(base)!r}.",
            option=what, code="OCDP333",
        )
    return checked


def _gateway(url: object, what: str) -> str:
    return _root(url, what, "v1", "/v1/persons/identify (and the other paths)")


def _proxy(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be an http(s) proxy URL or None, "
                                 f"got {_shown(value)}", option=name)
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


def _queue(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"{name} must be 'memory', 'sqlite:///path.db' or 'redis://host:port/db', "
            f"got {_shown(value)}", option=name)
    url = value.strip()
    try:
        scheme = "memory" if url == "memory" or url.startswith("memory?") else urlsplit(
            url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in _QUEUE_SCHEMES:
        raise ConfigurationError(
            f"{name} {redact_url(url)!r} is not a queue URL; use 'memory', "
            "'sqlite:///path.db' or 'redis://host:port/db'", option=name)
    return url


def _suggest(name: str, known: list[str], peers: Mapping[str, str]) -> str:
    if name in peers:
        return f"; did you mean {peers[name]}?"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return ""


def _nested(name: str, value: object, cls: type[T]) -> T:
    if isinstance(value, cls):
        return value
    known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        for key in value:
            if key not in known:
                hint = _suggest(str(key), known, {}) or "."
                raise ConfigurationError(
                    f"{name} has no field {key!r}{hint} Its fields: {', '.join(known)}.",
                    option=name)
        try:
            return cls(**value)
        except ConfigurationError as exc:
            raise ConfigurationError(str(exc), option=name, code=exc.code) from None
    raise ConfigurationError(
        f"{name} must be a {cls.__name__}(...) or a dict of its fields ({', '.join(known)}), "
        f"got {_shown(value)}", option=name)


# --- nested configurations -------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True, repr=False)
class CustomerIO:
    """Customer.io credentials for dual-write.

    ``api_key`` is the **Track** API key (HTTP Basic with ``site_id``); ``app_api_key`` is the
    App API key (Bearer), a different credential: the engine never calls the App API (sends go
    to OpenCDP only), but knowing it lets the guards catch the two being swapped.
    ``track_url``/``app_url`` override the region's hosts (a proxy, or the sandbox).
    """

    site_id: str
    api_key: str
    region: Literal["us", "eu"] = "us"
    app_api_key: str | None = None
    track_url: str = ""
    app_url: str = ""

    def __init__(
        self,
        site_id: str,
        api_key: str,
        region: str = "us",
        app_api_key: str | None = None,
        track_url: str | None = None,
        app_url: str | None = None,
    ) -> None:
        if not isinstance(site_id, str) or not site_id.strip():
            raise ConfigurationError("CustomerIO site_id is required (a non-empty string)",
                                     option="customer_io")
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError("CustomerIO api_key (the Track API key) is required",
                                     option="customer_io")
        key = _api_key("CustomerIO api_key", api_key)
        app_key = None if app_api_key is None else _api_key("CustomerIO app_api_key",
                                                             app_api_key)
        if not isinstance(region, str) or region.strip().lower() not in _REGION_HOSTS:
            raise ConfigurationError(
                f"CustomerIO region must be 'us' or 'eu', got {_shown(region)}",
                option="customer_io")
        region = region.strip().lower()
        track, app = _REGION_HOSTS[region]
        for label, url in (("track_url", track_url), ("app_url", app_url)):
            if url is not None and not isinstance(url, str):
                raise ConfigurationError(f"CustomerIO {label} must be a URL string or None, "
                                         f"got {_shown(url)}", option="customer_io")
        try:
            track_root = _root(track_url or track, "CustomerIO track_url", "api",
                               "/api/v1/customers/... and /api/v2/batch")
            app_root = _root(app_url or app, "CustomerIO app_url", "v1",
                             "/v1/customers/... (and the other paths)")
        except ConfigurationError as exc:
            raise ConfigurationError(str(exc), option="customer_io", code=exc.code) from None
        object.__setattr__(self, "site_id", site_id.strip())
        object.__setattr__(self, "api_key", key)
        object.__setattr__(self, "region", region)
        object.__setattr__(self, "app_api_key", app_key)
        object.__setattr__(self, "track_url", track_root)
        object.__setattr__(self, "app_url", app_root)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Both keys, and the Basic credential the Track API receives (an echoed header)."""
        basic = base64.b64encode(f"{self.site_id}:{self.api_key}".encode()).decode()
        found = [self.api_key, basic, *url_secrets(self.track_url), *url_secrets(self.app_url)]
        if self.app_api_key:
            found.append(self.app_api_key)
        return tuple(found)

    def __repr__(self) -> str:
        return (
            f"CustomerIO(site_id={self.site_id!r}, api_key={redact(self.api_key)}, "
            f"region={self.region!r}, app_api_key={redact(self.app_api_key)}, "
            f"track_url={redact_url(self.track_url)!r}, app_url={redact_url(self.app_url)!r})"
        )


@dataclass(frozen=True, kw_only=True)
class RetryConfig:
    """Backoff is full jitter: ``uniform(0, min(max_delay, base_delay * 2**attempt))``,
    raised to the server's Retry-After when it sent one. Past ``max_attempts`` or
    ``max_age`` seconds since the call, a message is dead-lettered with its last error."""

    base_delay: float = 0.5
    max_delay: float = 60.0
    max_attempts: int = 10
    max_age: float = 24 * 3600.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "base_delay", _number("retry.base_delay", self.base_delay, zero=True))
        set_(self, "max_delay", _number("retry.max_delay", self.max_delay, zero=True))
        set_(self, "max_attempts", _count("retry.max_attempts", self.max_attempts, 1))
        set_(self, "max_age", _number("retry.max_age", self.max_age))


@dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    """Reliability-guide defaults: 5 consecutive failures open, 30 s later half-open,
    3 successes close."""

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    success_threshold: int = 3

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "failure_threshold",
             _count("breaker.failure_threshold", self.failure_threshold, 1))
        set_(self, "reset_timeout", _number("breaker.reset_timeout", self.reset_timeout,
                                            zero=True))
        set_(self, "success_threshold",
             _count("breaker.success_threshold", self.success_threshold, 1))


@dataclass(frozen=True, kw_only=True)
class RateLimitConfig:
    """Requests per second per destination (token bucket); None means unlimited."""

    opencdp: float | None = None
    customerio: float | None = 100.0

    def __post_init__(self) -> None:
        for name in ("opencdp", "customerio"):
            value = getattr(self, name)
            if value is not None:
                value = _number(f"rate_limits.{name}", value, unit="requests per second "
                                "(or None for unlimited)")
            object.__setattr__(self, name, value)


QueueFullPolicy = Literal["block", "drop_oldest", "spill"]


def _customer_io(name: str, value: object) -> CustomerIO | None:
    if value is None or isinstance(value, CustomerIO):
        return value
    if isinstance(value, Mapping):
        known = ["site_id", "api_key", "region", "app_api_key", "track_url", "app_url"]
        for key in value:
            if key not in known:
                raise ConfigurationError(
                    f"customer_io has no field {key!r}{_suggest(str(key), known, {}) or '.'} "
                    f"Its fields: {', '.join(known)}.", option=name)
        missing = [k for k in ("site_id", "api_key") if k not in value]
        if missing:
            raise ConfigurationError(f"customer_io needs {' and '.join(missing)}", option=name)
        return CustomerIO(**value)
    raise ConfigurationError(
        "customer_io must be CustomerIO(site_id, api_key, region=...) or a dict of its fields, "
        f"got {_shown(value)}", option=name)


def _fallbacks(name: str, value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise ConfigurationError(
            f"{name} must be a list of URLs, got a single string; write [{value!r}] "
            "(or [] for no fallbacks)", option=name)
    if not isinstance(value, (list, tuple)):
        raise ConfigurationError(f"{name} must be a list of URLs (or [] for none), "
                                 f"got {_shown(value)}", option=name)
    urls: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ConfigurationError(f"{name} must hold URL strings, got {_shown(item)}",
                                     option=name)
        if item.strip():
            urls.append(_gateway(item, name))
    return tuple(urls)


def _silence(name: str, value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, (set, frozenset, list, tuple)):
        example = f"{{{value!r}}}" if isinstance(value, str) else "{'OCDP115'}"
        raise ConfigurationError(f"{name} must be a set of codes such as {example}, "
                                 f"got {_shown(value)}", option=name)
    bad = sorted(repr(code) for code in value
                 if not isinstance(code, str) or not _CODE.fullmatch(code))
    if bad:
        raise ConfigurationError(f"{name} holds codes like 'OCDP115', not {', '.join(bad)}",
                                 option=name)
    return frozenset(value)


def _logger(name: str, value: object) -> Any:
    if value is None:
        return None
    missing = [m for m in ("debug", "error") if not callable(getattr(value, m, None))]
    if not callable(getattr(value, "warning", None)) and not callable(
            getattr(value, "warn", None)):
        missing.append("warning (or warn)")
    if missing:
        raise ConfigurationError(
            f"{name} must have debug, warning (or warn) and error methods, like "
            f"logging.getLogger('myapp'); {_shown(value)} lacks {', '.join(missing)}",
            option=name)
    return value


def _schemas(name: str, value: object) -> Any:
    from .guards import Schemas

    if value is None or isinstance(value, Schemas):
        return value
    raise ConfigurationError(f"{name} must be an opencdp.guards.Schemas() registry or None, "
                             f"got {_shown(value)}", option=name)


def _callback(name: str, value: object) -> Any:
    if value is None or callable(value):
        return value
    raise ConfigurationError(f"{name} must be a function on_error(message, destination, "
                             f"reason) or None, got {_shown(value)}", option=name)


def _transport(name: str, value: object) -> Any:
    if value is None:
        return None
    missing = [m for m in ("send", "aclose") if not callable(getattr(value, m, None))]
    if missing:
        raise ConfigurationError(
            f"{name} must have async send(request) and aclose() methods (like "
            f"opencdp.testing.MockTransport); {_shown(value)} lacks {', '.join(missing)}",
            option=name)
    return value


def _max_bytes(name: str, value: object) -> int | None:
    return None if value is None else _count(name, value, 1)


def _endpoint(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return _gateway(value, name)


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "cdp_api_key": _api_key,
    "send_to_customer_io": lambda n, v: None if v is None else _flag(n, v),
    "customer_io": _customer_io,
    "debug": _flag,
    "logger": _logger,
    "max_concurrent_requests": lambda n, v: min(_count(n, v, 1), MAX_CONCURRENT_CAP),
    "timeout": _number,
    "fail_on_exception": _flag,
    "cdp_endpoint": _endpoint,
    "cdp_fallback_endpoints": _fallbacks,
    "delivery": lambda n, v: _choice(n, v, ("background", "blocking")),
    "queue": _queue,
    "max_queue_size": lambda n, v: _count(n, v, 1),
    "queue_full": lambda n, v: _choice(n, v, ("block", "drop_oldest", "spill")),
    "queue_full_timeout": lambda n, v: _number(n, v, zero=True),
    "durability": lambda n, v: _choice(n, v, ("durable", "batched")),
    "batch_size": lambda n, v: _count(n, v, 1),
    "tls_ca_file": lambda n, v: _path(n, v, must_exist=True),
    "idempotency_ttl": lambda n, v: _number(n, v, zero=True),
    "blocking_timeout": _number,
    "retry": lambda n, v: _nested(n, v, RetryConfig),
    "breaker": lambda n, v: _nested(n, v, BreakerConfig),
    "rate_limits": lambda n, v: _nested(n, v, RateLimitConfig),
    "strict": _flag,
    "silence": _silence,
    "schemas": _schemas,
    "email_hint": lambda n, v: _choice(n, v, ("off", "debug", "warning")),
    "max_event_names": lambda n, v: _count(n, v, 1),
    "register_atexit": _flag,
    "start_worker": _flag,
    "shutdown_timeout": _number,
    "max_queue_bytes": _max_bytes,
    "queue_timeout": _number,
    "spill_path": _path,
    "send": _flag,
    "on_error": _callback,
    "proxy": _proxy,
    "trust_env": _flag,
    "transport": _transport,
}

_PEER_NAMES = {
    "flush_at": "'batch_size' (segment's and posthog's flush_at)",
    "upload_size": "'batch_size' (segment's upload_size)",
    "max_retries": "retry={'max_attempts': ...} (the peers' max_retries)",
    "retries": "retry={'max_attempts': ...}",
    "write_key": "'cdp_api_key' (segment's write_key)",
    "api_key": "'cdp_api_key' (or customer_io=CustomerIO(site_id, api_key) for Customer.io)",
    "project_api_key": "'cdp_api_key' (posthog's project_api_key)",
    "host": "'cdp_endpoint' (segment's and posthog's host)",
    "endpoint": "'cdp_endpoint'",
    "url": "'cdp_endpoint'",
    "disabled": "send=False (the peers' disabled=True)",
    "disable": "send=False",
    "sync_mode": "delivery='blocking' (segment's sync_mode=True)",
    "sync": "delivery='blocking'",
    "proxies": "'proxy' (one http(s) URL)",
    "max_queue_bytes_size": "'max_queue_bytes'",
    "thread": "'max_concurrent_requests'",
    "threads": "'max_concurrent_requests'",
    "site_id": "customer_io=CustomerIO(site_id, api_key)",
    "region": "customer_io=CustomerIO(site_id, api_key, region='eu')",
    "track_url": "customer_io=CustomerIO(..., track_url=...)",
    "fallback_endpoints": "'cdp_fallback_endpoints'",
    "flush_interval": "nothing: opencdp sends as soon as a message is queued "
                      "(batch_size bounds a Customer.io batch)",
}


# --- the client configuration ----------------------------------------------------------------

@dataclass(frozen=True, kw_only=True, repr=False, init=False)
class ClientConfig:
    """Everything a ``Client`` is built from; see the README's option table.

    ``ClientConfig(**options)`` is the one place options are checked, unknown keywords
    included, so ``Client(**options)`` raises the same ``ConfigurationError`` at construction.
    """

    cdp_api_key: str
    send_to_customer_io: bool | None = None
    customer_io: CustomerIO | None = None
    debug: bool = False
    logger: Any = None
    max_concurrent_requests: int = 10
    timeout: float = 10.0
    fail_on_exception: bool = False
    cdp_endpoint: str | None = None
    cdp_fallback_endpoints: tuple[str, ...] | None = None
    delivery: Literal["background", "blocking"] = "background"
    queue: str = "memory"
    max_queue_size: int = 100_000
    queue_full: QueueFullPolicy = "drop_oldest"
    queue_full_timeout: float = 1.0
    durability: Literal["durable", "batched"] = "durable"
    batch_size: int = 2000
    tls_ca_file: str | None = None
    idempotency_ttl: float = 300.0
    blocking_timeout: float = 30.0
    retry: RetryConfig = field(default_factory=RetryConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    strict: bool = False
    silence: frozenset[str] = frozenset()
    schemas: Any = None
    email_hint: Literal["off", "debug", "warning"] = "debug"
    max_event_names: int = 500
    register_atexit: bool = True
    start_worker: bool = True
    shutdown_timeout: float = 5.0
    max_queue_bytes: int | None = None
    queue_timeout: float = 0.05
    spill_path: str | None = None
    send: bool = True
    on_error: Any = None
    proxy: str | None = None
    trust_env: bool = True
    transport: Any = None

    def __init__(self, **options: Unpack[ClientOptions]) -> None:
        given: dict[str, Any] = dict(options)
        names = list(_CHECKS)
        for name in given:
            if name not in _CHECKS:
                raise ConfigurationError(
                    f"unknown option {name!r}{_suggest(name, names, _PEER_NAMES) or '.'} "
                    "See the README's option table for every option.", option=name)
        if "cdp_api_key" not in given:
            raise ConfigurationError(
                "cdp_api_key is required (your OpenCDP API key; Client.from_env() reads "
                "CDP_API_KEY)", option="cdp_api_key")
        for spec in fields(self):
            if spec.name in given:
                value = _CHECKS[spec.name](spec.name, given[spec.name])
            elif spec.default_factory is not MISSING:
                value = spec.default_factory()
            else:
                value = spec.default
            object.__setattr__(self, spec.name, value)
        if self.send_to_customer_io and self.customer_io is None:
            raise ConfigurationError(
                "send_to_customer_io=True needs customer_io=CustomerIO(site_id, api_key)",
                option="send_to_customer_io")

    @property
    def dual_write(self) -> bool:
        """On when Customer.io is configured, unless ``send_to_customer_io=False``."""
        return self.customer_io is not None and self.send_to_customer_io is not False

    @property
    def customerio_disabled(self) -> bool:
        """Customer.io is configured but dual-write is off: health shows it ``disabled``."""
        return self.customer_io is not None and self.send_to_customer_io is False

    @property
    def notices(self) -> tuple[Notice, ...]:
        """What the client logs (as warnings) once at construction."""
        found: list[Notice] = []
        if self.customerio_disabled:
            found.append(Notice("OCDP330", (
                "customer_io is configured but send_to_customer_io=False: nothing is sent to "
                "Customer.io (health shows it as disabled). Remove send_to_customer_io=False "
                "to dual-write, or drop customer_io if this is intended.")))
        if not self.send:
            found.append(Notice("OCDP331", (
                "send=False: calls are checked and counted but nothing is delivered to any "
                "platform. Set send=True (or OPENCDP_SEND=true) to deliver.")))
        return tuple(found)

    @property
    def cdp_hosts(self) -> tuple[str, ...]:
        """Primary first, then fallbacks; trimmed, deduplicated, validated (gateway rule §1).

        With ``cdp_endpoint`` set and no ``cdp_fallback_endpoints``, there are no fallbacks:
        a key meant for a private gateway never travels to the public hosts.
        """
        primary = self.cdp_endpoint or DEFAULT_CDP_ENDPOINT
        if self.cdp_fallback_endpoints is not None:
            fallbacks = self.cdp_fallback_endpoints
        else:
            fallbacks = () if self.cdp_endpoint else DEFAULT_CDP_FALLBACKS
        return tuple(dict.fromkeys((primary, *fallbacks)))

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret this configuration holds, longest first, for ``scrub``: the keys,
        the Track API's Basic credential, and passwords inside URLs (queue, proxy, hosts)."""
        found: list[str] = [self.cdp_api_key]
        if self.customer_io is not None:
            found.extend(self.customer_io.secrets)
        for url in (self.queue, self.proxy, *self.cdp_hosts):
            found.extend(url_secrets(url))
        variants = [v for s in found for v in (s, quote(s, safe=""))]
        return tuple(sorted(dict.fromkeys(v for v in variants if v), key=len, reverse=True))

    def scrub(self, text: str | None) -> str | None:
        """``text`` without any of this configuration's secrets."""
        return scrub(text, self.secrets)

    def __repr__(self) -> str:
        shown = {
            "cdp_api_key": redact(self.cdp_api_key),
            "customer_io": repr(self.customer_io),
            "cdp_hosts": repr(tuple(redact_url(h) for h in self.cdp_hosts)),
            "queue": repr(redact_url(self.queue)),
            "proxy": repr(redact_url(self.proxy)),
        }
        parts = []
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name in ("cdp_endpoint", "cdp_fallback_endpoints"):
                continue
            if spec.name in shown:
                parts.append(f"{spec.name}={shown[spec.name]}")
                if spec.name == "customer_io":
                    parts.append(f"cdp_hosts={shown['cdp_hosts']}")
            elif value != (spec.default if spec.default_factory is MISSING
                           else spec.default_factory()):
                parts.append(f"{spec.name}={value!r}")
        return f"ClientConfig({', '.join(parts)})"

    def with_options(self, **changes: Unpack[ClientOptions]) -> ClientConfig:
        """A copy with some options changed, checked like a new configuration."""
        options: dict[str, Any] = {spec.name: getattr(self, spec.name) for spec in fields(self)}
        options.update(changes)
        return ClientConfig(**options)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Unpack[ClientOptions]
    ) -> ClientConfig:
        """Build from the environment variables in ``ENVIRONMENT``; keyword overrides win.

        Dual-write is on when the Customer.io site id and Track key are set (or
        ``customer_io`` is passed), unless ``OPENCDP_SEND_TO_CUSTOMER_IO=false`` or
        ``send_to_customer_io=False``. A bad value raises ``ConfigurationError`` naming the
        variable.
        """
        from .environment import read_environment

        env = os.environ if environ is None else environ
        options = read_environment(env, overrides)
        options.update(overrides)
        return cls(**options)

