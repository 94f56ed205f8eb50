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

import os
import sys
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import quote

from . import checks
from .checks import check_endpoint
from .environment import read_environment
from .errors import ConfigurationError
from .redaction import redact, redact_url, scrub, url_secrets
from .settings import (
    OPTIONS,
    BreakerConfig,
    CustomerIO,
    RateLimitConfig,
    RetryConfig,
    check_option,
)

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


class Notice(NamedTuple):
    """Something about a valid configuration the client says once at construction."""

    code: str
    text: str


QueueFullPolicy = Literal["block", "drop_oldest", "spill"]


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
    """Everything a ``Client`` is built from; docs/options.md has every option.

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
        names = list(OPTIONS)
        for name in given:
            if name not in OPTIONS:
                raise ConfigurationError(
                    f"unknown option {name!r}{checks.suggest(name, names, _PEER_NAMES) or '.'} "
                    "Every option: https://opencdp.readthedocs.io/en/latest/options/", option=name)
        if "cdp_api_key" not in given:
            raise ConfigurationError(
                "cdp_api_key is required (your OpenCDP API key; Client.from_env() reads "
                "CDP_API_KEY)", option="cdp_api_key")
        for spec in fields(self):
            if spec.name in given:
                value = check_option(spec.name, given[spec.name])
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
    def held_destinations(self) -> tuple[str, ...]:
        """The destinations whose copies are queued but held (hold mode), by name: the
        engine starts a hold for each without knowing which platform it is."""
        return ("customerio",) if self.customerio_held else ()

    @property
    def disabled_destinations(self) -> tuple[str, ...]:
        """Configured but switched off: health lists them as ``disabled``."""
        return ("customerio",) if self.customerio_disabled else ()

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
        env = os.environ if environ is None else environ
        options = read_environment(env, overrides)
        options.update(overrides)
        return cls(**options)

