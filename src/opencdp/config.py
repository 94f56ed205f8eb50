"""Options, as frozen keyword-only dataclasses validated on construction.

Environment variables are read in one place only, ``ClientConfig.from_env``; nothing here
reads global state at import time. Keys never appear in a ``repr``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_CDP_ENDPOINT",
    "DEFAULT_CDP_FALLBACKS",
    "BreakerConfig",
    "ClientConfig",
    "CustomerIO",
    "RateLimitConfig",
    "RetryConfig",
    "check_endpoint",
    "redact",
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


def redact(secret: str | None) -> str:
    """Show that a secret is set without showing it."""
    if not secret:
        return "<unset>"
    return f"<{len(secret)} chars>"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, what: str) -> str:
    """Normalise a base URL; plain http is refused except on loopback (keys travel in headers)."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{what} must be an http(s) URL, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{what} uses plain http on a non-loopback host ({parts.hostname}); "
            "API keys would travel unencrypted. Use https."
        )
    return url


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
            raise ConfigurationError("CustomerIO site_id is required")
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError("CustomerIO api_key (the Track API key) is required")
        region = str(region).lower()
        if region not in _REGION_HOSTS:
            raise ConfigurationError(f"CustomerIO region must be 'us' or 'eu', got {region!r}")
        track, app = _REGION_HOSTS[region]
        object.__setattr__(self, "site_id", site_id.strip())
        object.__setattr__(self, "api_key", api_key.strip())
        object.__setattr__(self, "region", region)
        object.__setattr__(self, "app_api_key", app_api_key)
        object.__setattr__(
            self, "track_url", check_endpoint(track_url or track, "CustomerIO track_url")
        )
        object.__setattr__(self, "app_url", check_endpoint(app_url or app, "CustomerIO app_url"))

    def __repr__(self) -> str:
        return (
            f"CustomerIO(site_id={self.site_id!r}, api_key={redact(self.api_key)}, "
            f"region={self.region!r}, app_api_key={redact(self.app_api_key)}, "
            f"track_url={self.track_url!r}, app_url={self.app_url!r})"
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
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigurationError("retry delays must be >= 0")
        if self.max_attempts < 1:
            raise ConfigurationError("retry max_attempts must be >= 1")
        if self.max_age <= 0:
            raise ConfigurationError("retry max_age must be > 0")


@dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    """Reliability-guide defaults: 5 consecutive failures open, 30 s later half-open,
    3 successes close."""

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    success_threshold: int = 3

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.success_threshold < 1:
            raise ConfigurationError("breaker thresholds must be >= 1")
        if self.reset_timeout < 0:
            raise ConfigurationError("breaker reset_timeout must be >= 0")


@dataclass(frozen=True, kw_only=True)
class RateLimitConfig:
    """Requests per second per destination (token bucket); None means unlimited."""

    opencdp: float | None = None
    customerio: float | None = 100.0

    def __post_init__(self) -> None:
        for name in ("opencdp", "customerio"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigurationError(f"rate limit {name} must be > 0 or None")


QueueFullPolicy = Literal["block", "drop_oldest", "spill"]


@dataclass(frozen=True, kw_only=True, repr=False)
class ClientConfig:
    """Everything a ``Client`` is built from. See the README's option table."""

    cdp_api_key: str
    send_to_customer_io: bool = False
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

    def __post_init__(self) -> None:
        if not isinstance(self.cdp_api_key, str) or not self.cdp_api_key.strip():
            raise ConfigurationError("cdp_api_key is required")
        if self.customer_io is not None and not isinstance(self.customer_io, CustomerIO):
            raise ConfigurationError("customer_io must be a CustomerIO(...) instance")
        if self.send_to_customer_io and self.customer_io is None:
            raise ConfigurationError(
                "send_to_customer_io=True needs customer_io=CustomerIO(site_id, api_key)"
            )
        mcr = self.max_concurrent_requests
        if not isinstance(mcr, int) or mcr < 1:
            mcr = 10
        object.__setattr__(self, "max_concurrent_requests", min(mcr, MAX_CONCURRENT_CAP))
        if self.timeout <= 0:
            raise ConfigurationError("timeout must be > 0 seconds")
        if self.delivery not in ("background", "blocking"):
            raise ConfigurationError("delivery must be 'background' or 'blocking'")
        if self.queue_full not in ("block", "drop_oldest", "spill"):
            raise ConfigurationError("queue_full must be 'block', 'drop_oldest' or 'spill'")
        if self.durability not in ("durable", "batched"):
            raise ConfigurationError("durability must be 'durable' or 'batched'")
        if self.max_queue_size < 1 or self.batch_size < 1:
            raise ConfigurationError("max_queue_size and batch_size must be >= 1")
        object.__setattr__(self, "silence", frozenset(self.silence))
        if self.cdp_fallback_endpoints is not None:
            object.__setattr__(self, "cdp_fallback_endpoints", tuple(self.cdp_fallback_endpoints))
        self.cdp_hosts  # validates the endpoints  # noqa: B018

    @property
    def dual_write(self) -> bool:
        return self.send_to_customer_io and self.customer_io is not None

    @property
    def cdp_hosts(self) -> tuple[str, ...]:
        """Primary first, then fallbacks; trimmed, deduplicated, validated (gateway rule §1)."""
        primary = (self.cdp_endpoint or "").strip() or DEFAULT_CDP_ENDPOINT
        fallbacks = (
            DEFAULT_CDP_FALLBACKS
            if self.cdp_fallback_endpoints is None
            else self.cdp_fallback_endpoints
        )
        hosts: list[str] = []
        for raw in (primary, *fallbacks):
            if not raw or not raw.strip():
                continue
            url = check_endpoint(raw, "cdp_endpoint")
            if url not in hosts:
                hosts.append(url)
        return tuple(hosts)

    def __repr__(self) -> str:
        return (
            f"ClientConfig(cdp_api_key={redact(self.cdp_api_key)}, "
            f"send_to_customer_io={self.send_to_customer_io}, customer_io={self.customer_io!r}, "
            f"cdp_hosts={self.cdp_hosts!r}, delivery={self.delivery!r}, queue={self.queue!r})"
        )

    def with_options(self, **changes: Any) -> ClientConfig:
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> ClientConfig:
        """Read ``CDP_API_KEY``, ``CUSTOMERIO_SITE_ID``, ``CUSTOMERIO_TRACK_API_KEY`` (or
        ``CUSTOMERIO_API_KEY``), ``CUSTOMERIO_APP_API_KEY``, ``CUSTOMERIO_REGION``,
        ``OPENCDP_QUEUE_URL``; keyword overrides win. Dual-write is on when Customer.io
        credentials are present, unless ``send_to_customer_io`` is overridden."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        options: dict[str, Any] = {}
        key = get("CDP_API_KEY")
        if key is None and "cdp_api_key" not in overrides:
            raise ConfigurationError("environment variable CDP_API_KEY is missing or empty")
        if key is not None:
            options["cdp_api_key"] = key
        site = get("CUSTOMERIO_SITE_ID")
        track_key = get("CUSTOMERIO_TRACK_API_KEY") or get("CUSTOMERIO_API_KEY")
        region = get("CUSTOMERIO_REGION") or "us"
        if region.lower() not in _REGION_HOSTS:
            raise ConfigurationError(
                f"environment variable CUSTOMERIO_REGION must be 'us' or 'eu', got {region!r}"
            )
        if site and not track_key:
            raise ConfigurationError(
                "CUSTOMERIO_SITE_ID is set but CUSTOMERIO_TRACK_API_KEY "
                "(or CUSTOMERIO_API_KEY) is missing"
            )
        if track_key and not site:
            raise ConfigurationError(
                "CUSTOMERIO_TRACK_API_KEY is set but CUSTOMERIO_SITE_ID is missing"
            )
        if site and track_key and "customer_io" not in overrides:
            options["customer_io"] = CustomerIO(
                site, track_key, region=region, app_api_key=get("CUSTOMERIO_APP_API_KEY")
            )
            options["send_to_customer_io"] = True
        queue = get("OPENCDP_QUEUE_URL")
        if queue:
            options["queue"] = queue
        options.update(overrides)
        return cls(**options)
