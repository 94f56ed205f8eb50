"""The relay's options: who may call it, where it listens, and the client that delivers.

The relay's own settings live beside a full :class:`~opencdp.config.ClientConfig` rather than
inside it, because the delivering client is the ordinary SDK client: everything its options
do (dual-write, retries, breakers, rate limits) the relay does too. The relay only overrides
what a long-running service must own: its queue (durable by default), the worker thread, the
atexit hook (the app's lifespan closes the client) and background delivery (callers are
answered once their message is queued).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import ClientConfig, redact
from ..errors import ConfigurationError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_PORT", "DEFAULT_QUEUE", "ServerConfig"]

DEFAULT_QUEUE = "sqlite:///./opencdp-relay.db"
DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 1 << 20
KEYS_ENV = "OPENCDP_RELAY_KEYS"
PORT_ENV = "OPENCDP_RELAY_PORT"
MAX_BODY_ENV = "OPENCDP_RELAY_MAX_BODY_BYTES"
QUEUE_ENV = "OPENCDP_QUEUE_URL"
SIGNING_KEY_ENV = "CUSTOMERIO_WEBHOOK_SIGNING_KEY"


def _keys(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigurationError("api_keys must be a list of keys, e.g. ['relay-key-1']")
    keys: list[str] = []
    for key in value:
        if not isinstance(key, str) or not key.strip():
            raise ConfigurationError("api_keys must be non-empty strings")
        if key.strip() not in keys:
            keys.append(key.strip())
    if not keys:
        raise ConfigurationError(
            "the relay needs at least one API key to accept (api_keys, or "
            f"{KEYS_ENV}=key1,key2); callers send one raw in Authorization"
        )
    return tuple(keys)


@dataclass(frozen=True, kw_only=True, repr=False)
class ServerConfig:
    """Everything ``create_app`` needs.

    ``api_keys`` are the keys callers may present (raw, in ``Authorization``, as the gateway
    takes them); they are not the upstream key, which is ``client.cdp_api_key``. ``queue`` is
    the delivering client's outbox URL and replaces ``client.queue``. ``host`` stays on
    loopback unless set. ``drain_timeout`` bounds both the wait for requests in flight and the
    client's final flush at shutdown. ``ingest_only`` stores and answers without delivering
    (``opencdp worker`` processes deliver the queue; server/scale.py). ``tls_cert_file``
    (a PEM chain, with the private key unless ``tls_key_file`` is given) serves https:
    callers' keys cross the network in a header, so serve TLS (here or in a proxy in front)
    whenever the relay listens beyond loopback.
    """

    api_keys: tuple[str, ...]
    client: ClientConfig
    queue: str = DEFAULT_QUEUE
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    webhook_signing_key: str | None = field(default=None)
    drain_timeout: float = 10.0
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    ingest_only: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_keys", _keys(self.api_keys))
        if not isinstance(self.client, ClientConfig):
            raise ConfigurationError("client must be a ClientConfig(...)")
        if not isinstance(self.queue, str) or not self.queue.strip():
            raise ConfigurationError("queue must be a queue URL such as sqlite:///./relay.db")
        object.__setattr__(self, "queue", self.queue.strip())
        if not isinstance(self.host, str) or not self.host.strip():
            raise ConfigurationError("host must be an address to listen on, e.g. 127.0.0.1")
        object.__setattr__(self, "host", self.host.strip())
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not (
            0 <= self.port <= 65535
        ):
            raise ConfigurationError("port must be an integer from 0 to 65535 (0 picks one)")
        if isinstance(self.max_body_bytes, bool) or not isinstance(self.max_body_bytes, int) or (
            self.max_body_bytes < 1
        ):
            raise ConfigurationError("max_body_bytes must be an integer >= 1")
        key = self.webhook_signing_key
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise ConfigurationError("webhook_signing_key must be a non-empty string or None")
        if not self.drain_timeout > 0:
            raise ConfigurationError("drain_timeout must be > 0 seconds")
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise ConfigurationError("tls_key_file needs tls_cert_file")
        if not isinstance(self.ingest_only, bool):
            raise ConfigurationError("ingest_only must be True or False")
        if self.ingest_only and self.queue.split(":", 1)[0].lower() == "memory":
            raise ConfigurationError(
                "ingest_only stores for `opencdp worker` processes to deliver, so it needs a "
                "queue they share: redis://host:port/db (or sqlite:///path on one host)")
        for name in ("tls_cert_file", "tls_key_file"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ConfigurationError(f"{name} {path!r} is not a readable file")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert_file else "http"

    def __repr__(self) -> str:
        keys = ", ".join(redact(k) for k in self.api_keys)
        return (
            f"ServerConfig(api_keys=[{keys}], client={self.client!r}, queue={_safe(self.queue)!r}, "
            f"host={self.host!r}, port={self.port}, max_body_bytes={self.max_body_bytes}, "
            f"webhook_signing_key={redact(self.webhook_signing_key)}, "
            f"drain_timeout={self.drain_timeout:g}, tls={self.tls_cert_file is not None}"
            + (", ingest_only=True)" if self.ingest_only else ")")
        )

    def client_config(self) -> ClientConfig:
        """The delivering client's options: the relay's queue, its own lifecycle, and
        ``fail_on_exception`` so a write that could not be made durable raises (a 503 the
        SDKs retry) instead of being logged and answered 202."""
        return self.client.with_options(
            queue=self.queue, delivery="background", start_worker=not self.ingest_only,
            register_atexit=False,
            fail_on_exception=True,
        )

    def with_options(self, **changes: Any) -> ServerConfig:
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> ServerConfig:
        """Read ``OPENCDP_RELAY_KEYS`` (comma-separated), ``OPENCDP_QUEUE_URL``,
        ``OPENCDP_RELAY_PORT``, ``OPENCDP_RELAY_MAX_BODY_BYTES`` and
        ``CUSTOMERIO_WEBHOOK_SIGNING_KEY``, and the client's variables through
        ``ClientConfig.from_env`` (``CDP_API_KEY``, ``CUSTOMERIO_*``). Keyword overrides win;
        ``client`` may be a ready ``ClientConfig``. The listening host is never read from the
        environment: the relay binds to loopback unless told otherwise in code or by ``--host``.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        options: dict[str, Any] = {}
        keys = get(KEYS_ENV)
        if keys is not None:
            options["api_keys"] = tuple(k for k in keys.split(",") if k.strip())
        elif "api_keys" not in overrides:
            raise ConfigurationError(
                f"environment variable {KEYS_ENV} is missing or empty: set the keys the relay "
                "accepts, comma-separated"
            )
        queue = get(QUEUE_ENV)
        if queue is not None:
            options["queue"] = queue
        for name, env_name in (("port", PORT_ENV), ("max_body_bytes", MAX_BODY_ENV)):
            raw = get(env_name)
            if raw is not None:
                if not raw.isdigit():
                    raise ConfigurationError(
                        f"environment variable {env_name} must be a whole number, got {raw!r}"
                    )
                options[name] = int(raw)
        signing_key = get(SIGNING_KEY_ENV)
        if signing_key is not None:
            options["webhook_signing_key"] = signing_key
        if "client" not in overrides:
            options["client"] = ClientConfig.from_env(env)
        options.update(overrides)
        return cls(**options)


def _safe(url: str) -> str:
    from ..outbox.url import safe_url

    return safe_url(url)
