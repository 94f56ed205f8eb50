"""The typed shape of every option, for IDEs and type checkers.

``Client(**options: Unpack[ClientOptions])`` lets mypy and pyright flag a misspelt option or a
value of the wrong type before the code runs; ``ClientConfig`` checks the same at run time
for callers without a type checker. The nested dict forms (``retry={"max_attempts": 3}``)
have their own TypedDicts. Everything here is types only: importing it costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

if TYPE_CHECKING:
    from .guards import Schemas
    from .settings import BreakerConfig, CustomerIO, RateLimitConfig, RetryConfig
    from .wire import Transport

__all__ = [
    "BeforeSend",
    "BreakerOptions",
    "ClientOptions",
    "Context",
    "CustomerIOOptions",
    "LibraryContext",
    "LoggerLike",
    "MessageView",
    "OnError",
    "PageContext",
    "RateLimitOptions",
    "RetryOptions",
]


class LoggerLike(Protocol):
    """A ``logging.Logger`` or the dual-write guide's custom logger (``warn`` or ``warning``)."""

    def debug(self, msg: str, /) -> object: ...
    def error(self, msg: str, /) -> object: ...


OnError = Callable[[Any, str, str], object]
"""``on_error(message, destination, reason)``: called when a message is dead-lettered."""


class MessageView(TypedDict):
    """What ``before_send`` receives: a message's fields as plain values, made for it.

    Only ``data`` is read back (the attributes or properties, ``context`` included); it is
    checked again by the guards, so what reaches a platform is what any call could have sent.
    The other keys are for reading: a hook that changes one drops the message (OCDP344).
    """

    id: str
    """The event id (a ULID), as the call returns it."""
    kind: str
    """``identify``, ``track``, ``page``, ``add_device``... (``identify:email`` for a person
    named by another identifier)."""
    identifier: str
    """The person (or anonymous id, object id, delivery id) the message is about."""
    name: str | None
    """The event name, page URL, screen, device id or object type, by kind."""
    data: dict[str, Any]
    timestamp: int
    """The event time in Unix seconds."""
    destinations: tuple[str, ...]
    """``("opencdp", "customerio")`` when dual-writing, or the one platform it goes to."""


BeforeSend = Callable[[MessageView], "MessageView | None"]
"""``before_send(view) -> view | None``: called on the caller's thread for every message
before it is queued; return the view (changed or not) to queue it, None to drop it."""


class PageContext(TypedDict, total=False):
    """The page a call came from: the fields Customer.io documents for page views."""

    url: str
    path: str
    referrer: str
    search: str
    title: str


class LibraryContext(TypedDict, total=False):
    """The library that made the call, for a relay forwarding another SDK's calls."""

    name: str
    version: str


class Context(TypedDict, total=False):
    """Where an event happened (``context=`` of event and view calls); see docs/calls.md for
    the field each platform receives."""

    ip: str
    user_agent: str
    page: PageContext
    library: LibraryContext


class RetryOptions(TypedDict, total=False):
    base_delay: float
    max_delay: float
    max_attempts: int
    max_age: float


class BreakerOptions(TypedDict, total=False):
    failure_threshold: int
    reset_timeout: float
    success_threshold: int


class RateLimitOptions(TypedDict, total=False):
    opencdp: float | None
    customerio: float | None
    per_destination: Mapping[str, float | None]


class CustomerIOOptions(TypedDict, total=False):
    site_id: str
    api_key: str
    region: Literal["us", "eu"]
    app_api_key: str | None
    track_url: str | None
    app_url: str | None


class ClientOptions(TypedDict, total=False):
    """Every keyword of ``Client``, ``AsyncClient`` and ``ClientConfig`` (docs/options.md)."""

    cdp_api_key: str
    send_to_customer_io: bool | Literal["hold"] | None
    hold_retention: float
    customer_io: CustomerIO | CustomerIOOptions | None
    debug: bool
    logger: LoggerLike | None
    max_concurrent_requests: int
    timeout: float
    fail_on_exception: bool
    cdp_endpoint: str | None
    cdp_fallback_endpoints: Sequence[str] | None
    delivery: Literal["background", "blocking"]
    queue: str
    max_queue_size: int
    queue_full: Literal["block", "drop_oldest", "spill"]
    queue_full_timeout: float
    durability: Literal["durable", "batched"]
    batch_size: int
    tls_ca_file: str | os.PathLike[str] | None
    idempotency_ttl: float
    blocking_timeout: float
    retry: RetryConfig | RetryOptions
    breaker: BreakerConfig | BreakerOptions
    rate_limits: RateLimitConfig | RateLimitOptions
    strict: bool
    silence: Collection[str]
    schemas: Schemas | None
    email_hint: Literal["off", "debug", "warning"]
    max_event_names: int
    register_atexit: bool
    start_worker: bool
    shutdown_timeout: float
    max_queue_bytes: int | None
    queue_timeout: float
    spill_path: str | os.PathLike[str] | None
    send: bool
    on_error: OnError | None
    before_send: BeforeSend | None
    proxy: str | None
    trust_env: bool
    transport: Transport | None
