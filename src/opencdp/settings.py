"""The option values that are objects (``CustomerIO``, ``RetryConfig``, ``BreakerConfig``,
``RateLimitConfig``) and the check of every option.

Below ``config``, ``options`` and ``environment`` on purpose: the typed options
(``ClientOptions``) name these classes, the configuration is typed by ``ClientOptions``, and
the environment reader checks values as the configuration does. With these in ``config``,
the three modules imported each other (one of the loops at run time, hidden by a deferred
import). ``opencdp.config`` re-exports everything here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit

from . import checks
from .errors import ConfigurationError
from .redaction import redact, redact_url, url_secrets

__all__ = [
    "MAX_CONCURRENT_CAP",
    "OPTIONS",
    "BreakerConfig",
    "CustomerIO",
    "RateLimitConfig",
    "RetryConfig",
    "check_option",
]

_REGION_HOSTS = {
    "us": ("https://track.customer.io", "https://api.customer.io"),
    "eu": ("https://track-eu.customer.io", "https://api-eu.customer.io"),
}
MAX_CONCURRENT_CAP = 30


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
        key = checks.api_key("CustomerIO api_key", api_key)
        app_key = None if app_api_key is None else checks.api_key("CustomerIO app_api_key",
                                                             app_api_key)
        if not isinstance(region, str) or region.strip().lower() not in _REGION_HOSTS:
            raise ConfigurationError(
                "CustomerIO region must be 'us' or 'eu', got "
                + (f"a string of {len(region)} characters (not shown: the third positional "
                   "argument is the region, so it may be a key; pass app_api_key= by name)"
                   if isinstance(region, str) else checks.shown(region)),
                option="customer_io")
        region = region.strip().lower()
        track, app = _REGION_HOSTS[region]
        for label, url in (("track_url", track_url), ("app_url", app_url)):
            if url is not None and not isinstance(url, str):
                raise ConfigurationError(f"CustomerIO {label} must be a URL string or None, "
                                         f"got {checks.shown(url)}", option="customer_io")
        try:
            track_root = checks.root(track_url or track, "CustomerIO track_url", "api",
                               "/api/v1/customers/... and /api/v2/batch")
            app_root = checks.root(app_url or app, "CustomerIO app_url", "v1",
                             "/v1/customers/... (and the other paths)")
        except ConfigurationError as exc:
            raise ConfigurationError(str(exc), option="customer_io", code=exc.code) from None
        object.__setattr__(self, "site_id", site_id.strip())
        object.__setattr__(self, "api_key", key)
        object.__setattr__(self, "region", region)
        object.__setattr__(self, "app_api_key", app_key)
        object.__setattr__(self, "track_url", track_root)
        object.__setattr__(self, "app_url", app_root)

    def region_hint(self, location: str | None) -> str | None:
        """The OCDP334 explanation when a redirect from the Track host points at the other
        region's host (an EU account called through the US host, or the reverse); else None."""
        if not location:
            return None
        try:
            host = urlsplit(location).hostname
        except ValueError:
            return None
        for region, urls in _REGION_HOSTS.items():
            if region != self.region and host in {urlsplit(u).hostname for u in urls}:
                return (
                    f"OCDP334 Customer.io redirected a Track request to {host}: this workspace "
                    f"is in the {region.upper()} region, but the client is configured for "
                    f"{self.region.upper()}. Set CustomerIO(..., region={region!r}) "
                    f"(or CUSTOMERIO_REGION={region}); redirected requests are not followed, "
                    "so the API key is only ever sent to the configured host."
                )
        return None

    @cached_property
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
        set_(self, "base_delay", checks.number("retry.base_delay", self.base_delay, zero=True))
        set_(self, "max_delay", checks.number("retry.max_delay", self.max_delay, zero=True))
        set_(self, "max_attempts", checks.count("retry.max_attempts", self.max_attempts, 1))
        set_(self, "max_age", checks.number("retry.max_age", self.max_age))


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
             checks.count("breaker.failure_threshold", self.failure_threshold, 1))
        set_(self, "reset_timeout", checks.number("breaker.reset_timeout", self.reset_timeout,
                                            zero=True))
        set_(self, "success_threshold",
             checks.count("breaker.success_threshold", self.success_threshold, 1))


@dataclass(frozen=True, kw_only=True)
class RateLimitConfig:
    """Requests per second per destination (token bucket); None means unlimited.

    The built-in platforms keep their keyword fields (the options callers already write);
    any other registered destination is limited through ``per_destination``, by name, so a
    new platform needs no field here. The lanes read ``get(name)`` only."""

    opencdp: float | None = None
    customerio: float | None = 100.0
    per_destination: Mapping[str, float | None] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("opencdp", "customerio"):
            value = getattr(self, name)
            if value is not None:
                value = checks.number(f"rate_limits.{name}", value, unit="requests per second "
                                "(or None for unlimited)")
            object.__setattr__(self, name, value)
        if not isinstance(self.per_destination, Mapping):
            raise ConfigurationError("rate_limits.per_destination must be a mapping of "
                                     "destination name to requests per second (or None)")
        others: dict[str, float | None] = {}
        for name, value in self.per_destination.items():
            others[name] = None if value is None else checks.number(
                f"rate_limits.per_destination[{name!r}]", value,
                unit="requests per second (or None for unlimited)")
        object.__setattr__(self, "per_destination", others)

    def get(self, destination: str) -> float | None:
        """The limit of ``destination``: its ``per_destination`` entry, else its field."""
        if destination in self.per_destination:
            return self.per_destination[destination]
        if destination in ("opencdp", "customerio"):
            value: float | None = getattr(self, destination)
            return value
        return None


def _send_to_customer_io(name: str, value: object) -> bool | Literal["hold"] | None:
    if value is None or value == "hold":
        return None if value is None else "hold"
    try:
        return checks.flag(name, value)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"{exc}; or 'hold' to queue the Customer.io copies without sending them "
            "(see docs/hold.md)", option=name) from None


def _customer_io(name: str, value: object) -> CustomerIO | None:
    if value is None or isinstance(value, CustomerIO):
        return value
    if isinstance(value, Mapping):
        known = ["site_id", "api_key", "region", "app_api_key", "track_url", "app_url"]
        for key in value:
            if key not in known:
                raise ConfigurationError(
                    f"customer_io has no field {key!r}"
                    f"{checks.suggest(str(key), known, {}) or '.'} "
                    f"Its fields: {', '.join(known)}.", option=name)
        missing = [k for k in ("site_id", "api_key") if k not in value]
        if missing:
            raise ConfigurationError(f"customer_io needs {' and '.join(missing)}", option=name)
        return CustomerIO(**value)
    raise ConfigurationError(
        "customer_io must be CustomerIO(site_id, api_key, region=...) or a dict of its fields, "
        f"got {checks.shown(value)}", option=name)


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "cdp_api_key": checks.api_key,
    "send_to_customer_io": _send_to_customer_io,
    "hold_retention": checks.number,
    "customer_io": _customer_io,
    "debug": checks.flag,
    "logger": checks.logger,
    "max_concurrent_requests": lambda n, v: min(checks.count(n, v, 1), MAX_CONCURRENT_CAP),
    "timeout": checks.number,
    "fail_on_exception": checks.flag,
    "cdp_endpoint": checks.endpoint,
    "cdp_fallback_endpoints": checks.fallbacks,
    "delivery": lambda n, v: checks.choice(n, v, ("background", "blocking")),
    "queue": checks.queue,
    "max_queue_size": lambda n, v: checks.count(n, v, 1),
    "queue_full": lambda n, v: checks.choice(n, v, ("block", "drop_oldest", "spill")),
    "queue_full_timeout": lambda n, v: checks.number(n, v, zero=True),
    "durability": lambda n, v: checks.choice(n, v, ("durable", "batched")),
    "batch_size": lambda n, v: checks.count(n, v, 1),
    "tls_ca_file": lambda n, v: checks.path(n, v, must_exist=True),
    "idempotency_ttl": lambda n, v: checks.number(n, v, zero=True),
    "blocking_timeout": checks.number,
    "retry": lambda n, v: checks.nested(n, v, RetryConfig),
    "breaker": lambda n, v: checks.nested(n, v, BreakerConfig),
    "rate_limits": lambda n, v: checks.nested(n, v, RateLimitConfig),
    "strict": checks.flag,
    "silence": checks.silence,
    "schemas": checks.schemas,
    "email_hint": lambda n, v: checks.choice(n, v, ("off", "debug", "warning")),
    "max_event_names": lambda n, v: checks.count(n, v, 1),
    "register_atexit": checks.flag,
    "start_worker": checks.flag,
    "shutdown_timeout": checks.number,
    "max_queue_bytes": checks.max_bytes,
    "queue_timeout": checks.number,
    "spill_path": checks.path,
    "send": checks.flag,
    "on_error": checks.callback,
    "before_send": checks.hook,
    "proxy": checks.proxy,
    "trust_env": checks.flag,
    "transport": checks.transport,
}


OPTIONS: tuple[str, ...] = tuple(_CHECKS)
"""Every option's name, in the configuration's order."""


def check_option(option: str, value: object, label: str | None = None) -> Any:
    """``value`` checked and normalised as ``option``; errors name ``label`` (a variable)."""
    return _CHECKS[option](label or option, value)
