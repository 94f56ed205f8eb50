"""Options, as frozen keyword-only dataclasses validated on construction.

Every option is checked once, when the configuration is built (the checks are in
``checks.py``): its type (no truthy strings, no ``True`` where a count is wanted), its range,
and the mistakes we have seen
(``Bearer `` before a key, an endpoint that already ends in ``/v1``, a misspelt keyword or a
peer SDK's name for an option). A ``ConfigurationError`` names the option and says what to
write instead. Environment variables are read in one place only, ``ClientConfig.from_env``;
nothing here reads global state at import time. Secrets never appear in a ``repr``.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import quote, urlsplit

from . import checks
from .checks import check_endpoint
from .errors import ConfigurationError
from .redaction import redact, redact_url, scrub, url_secrets

if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:
    from typing_extensions import Unpack

if TYPE_CHECKING:
    from .options import ClientOptions
    from .wire import Transport

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
    "check_option",
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


class Notice(NamedTuple):
    """Something about a valid configuration the client says once at construction."""

    code: str
    text: str


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
    """Requests per second per destination (token bucket); None means unlimited."""

    opencdp: float | None = None
    customerio: float | None = 100.0

    def __post_init__(self) -> None:
        for name in ("opencdp", "customerio"):
            value = getattr(self, name)
            if value is not None:
                value = checks.number(f"rate_limits.{name}", value, unit="requests per second "
                                "(or None for unlimited)")
            object.__setattr__(self, name, value)


QueueFullPolicy = Literal["block", "drop_oldest", "spill"]


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


def check_option(option: str, value: object, label: str | None = None) -> Any:
    """``value`` checked and normalised as ``option``; errors name ``label`` (a variable)."""
    return _CHECKS[option](label or option, value)


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
    send_to_customer_io: bool | Literal["hold"] | None = None
    hold_retention: float = 14 * 86400.0
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
    before_send: Any = None
    proxy: str | None = None
    trust_env: bool = True
    transport: Transport | None = None

    def __init__(self, **options: Unpack[ClientOptions]) -> None:
        given: dict[str, Any] = dict(options)
        names = list(_CHECKS)
        for name in given:
            if name not in _CHECKS:
                raise ConfigurationError(
                    f"unknown option {name!r}{checks.suggest(name, names, _PEER_NAMES) or '.'} "
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
                f"send_to_customer_io={self.send_to_customer_io!r} needs "
                "customer_io=CustomerIO(site_id, api_key)", option="send_to_customer_io")
        scheme = self.queue.lower().split("?", 1)[0].split(":", 1)[0]
        if self.customerio_held and scheme == "memory":
            raise ConfigurationError(
                "send_to_customer_io='hold' needs a durable queue: held Customer.io copies "
                "wait for days and must survive restarts, and the hold mark that "
                "`opencdp migrate rollback` flips is shared through the queue. Set "
                "queue='sqlite:///opencdp-queue.db' or queue='redis://host:6379/0'",
                option="send_to_customer_io")

    @property
    def dual_write(self) -> bool:
        """On when Customer.io is configured, unless ``send_to_customer_io=False``."""
        return self.customer_io is not None and self.send_to_customer_io is not False

    @property
    def customerio_held(self) -> bool:
        """Customer.io copies are queued but held while the queue's hold mark says so."""
        return self.customer_io is not None and self.send_to_customer_io == "hold"

    @property
    def customerio_disabled(self) -> bool:
        """Customer.io is configured but dual-write is off: health shows it ``disabled``."""
        return self.customer_io is not None and self.send_to_customer_io is False

    @property
    def notices(self) -> tuple[Notice, ...]:
        """What the client logs (as warnings) once at construction; ``silence`` mutes them."""
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
        return tuple(n for n in found if n.code not in self.silence)

    @cached_property
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

    @cached_property
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

