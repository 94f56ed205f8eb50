"""Turn a queue URL (``queue=`` / ``OPENCDP_QUEUE_URL``) into an outbox.

Accepted forms::

    memory                              bounded, in-process (the default)
    memory?spill=/path/to/spill.db      the file the ``spill`` policy overflows into
    sqlite:///relative/or/absolute.db   durable, one host (``sqlite:////abs/path.db`` also works)
    redis://[:password@]host:port/db    durable, shared (``rediss://`` for TLS)
    redis://host:port/db?prefix=myapp   keys under ``{myapp}:`` instead of ``{opencdp}:``
    redis://host:port/db?timeout=0.5    connect/read timeout in seconds (default 5) of the
                                        engine's own calls (leases, acks); a caller's ``put``
                                        is bounded by ``queue_timeout`` instead
    redis+cluster://host:port/?partitions=16
                                        a Redis Cluster (any node's address), the queue split
                                        into ``partitions`` streams spread over the slots
                                        (``rediss+cluster://`` for TLS); also ``prefix``,
                                        ``timeout`` and ``replicas`` (how many replicas each
                                        write waits for, default 1; 0: none)

A durable queue (SQLite, Redis) comes wrapped in a local spill (see ``spill.py``): a ``put``
the queue cannot take is written to ``spill_path`` and moved back later. The default spill
path is ``.opencdp-spill/<scheme>-<digest>.db`` under the working directory of the process
that opened the queue, ``<digest>`` naming the queue (its path or URL without password, and
prefix), so several queues never share a spill file.

The Redis module is imported only for ``redis://`` URLs, so the base install needs no Redis
client. Error messages name the URL with its password replaced by ``***``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..errors import ConfigurationError
from ..message import Message
from .base import Outbox
from .throttle import LogThrottle

__all__ = ["default_spill_path", "open_outbox", "safe_url"]

_log = logging.getLogger("opencdp.outbox")


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _options(query: str, allowed: set[str], url: str) -> dict[str, str]:
    parsed = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(parsed) - allowed)
    if unknown:
        raise ConfigurationError(
            f"queue URL {safe_url(url)!r}: unknown option(s) {', '.join(unknown)}"
        )
    return {key: values[-1] for key, values in parsed.items()}


def _sqlite_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(
            f"queue URL {url!r}: an SQLite URL has no host; use sqlite:///relative.db "
            "or sqlite:////absolute/path.db"
        )
    path = parts.path
    # sqlite:///x.db -> "/x.db" is relative (SQLAlchemy's convention); sqlite:////x.db absolute
    path = path[1:] if path.startswith("/") else path
    if not path or path.endswith("/"):
        raise ConfigurationError(f"queue URL {url!r} names no database file")
    return path


class _Forward(logging.Handler):
    """Hands the outbox's log records to a logger that is not a ``logging.Logger`` (the
    client's ``logger=`` option takes any object with ``warning``/``error`` methods)."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        names = ("error",) if record.levelno >= logging.ERROR else (
            ("warning", "warn") if record.levelno >= logging.WARNING else ("debug",))
        for name in names:
            method = getattr(self.target, name, None)
            if callable(method):
                method(record.getMessage())
                return


def _as_logger(logger: Any) -> logging.Logger:
    if isinstance(logger, logging.Logger):
        return logger
    if logger is None:
        return _log
    forward = logging.Logger("opencdp.outbox")  # standalone: not in the logging tree
    forward.propagate = False
    forward.addHandler(_Forward(logger))
    return forward


def default_spill_path(name: str) -> str:
    """Where a queue spills when no ``spill_path`` is given: under the working directory."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    scheme = name.partition(":")[0] or "queue"
    return os.path.join(os.getcwd(), ".opencdp-spill", f"{scheme}-{digest}.db")


def _spilled(primary: Outbox, name: str, spill_path: str | None, log: logging.Logger) -> Outbox:
    from .spill import SpilledOutbox, SpillFile

    path = spill_path if spill_path is not None else default_spill_path(name)
    return SpilledOutbox(primary, SpillFile(path), logger=log)


def _positive(name: str, value: object, upper: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and 0 < value <= upper
    ):
        raise ConfigurationError(f"{name} must be a number of seconds in (0, {upper:g}], "
                                 f"got {value!r}")
    return float(value)


def _whole(url: str, options: dict[str, str], name: str, default: int, low: int,
           high: int) -> int:
    text = options.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
        if not low <= value <= high:
            raise ValueError
    except ValueError:
        raise ConfigurationError(f"queue URL {safe_url(url)!r}: {name} must be a whole number "
                                 f"in [{low}, {high}], got {text!r}") from None
    return value


def _cluster(url: str, durability: str, queue_timeout: float, spill_path: str | None,
             log: logging.Logger) -> Outbox:
    try:
        from .cluster import RedisClusterOutbox
    except ImportError as exc:
        raise ConfigurationError(
            "a redis+cluster:// queue needs the redis package: pip install 'opencdp[redis]'"
        ) from exc
    parts = urlsplit(url)
    options = _options(parts.query, {"prefix", "timeout", "partitions", "replicas"}, url)
    try:
        timeout = float(options.get("timeout") or 5.0)
        if not timeout > 0:
            raise ValueError
    except ValueError:
        raise ConfigurationError(
            f"queue URL {safe_url(url)!r}: timeout must be a positive number of seconds"
        ) from None
    if not parts.hostname:
        raise ConfigurationError(f"queue URL {safe_url(url)!r} names no Redis Cluster node")
    if parts.path not in ("", "/", "/0"):
        raise ConfigurationError(
            f"queue URL {safe_url(url)!r}: a cluster has only database 0; give no path")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ConfigurationError(f"queue URL {safe_url(url)!r} has a bad port") from None
    partitions = _whole(url, options, "partitions", 16, 1, 1024)
    replicas = _whole(url, options, "replicas", 1, 0, 16)
    seed = urlunsplit(("rediss" if parts.scheme.startswith("rediss") else "redis",
                       parts.netloc, "", "", ""))
    prefix = options.get("prefix") or "opencdp"
    try:
        box = RedisClusterOutbox(seed, partitions=partitions, prefix=prefix,
                                 durability=durability, socket_timeout=timeout,
                                 put_timeout=queue_timeout, replicas=replicas, logger=log)
    except ConfigurationError as exc:
        raise ConfigurationError(f"queue URL {safe_url(url)!r}: {exc}") from None
    name = f"redis-cluster:{parts.hostname}:{port} {prefix}"
    return _spilled(box, name, spill_path, log)


def open_outbox(
    url: str,
    *,
    max_queue_size: int,
    queue_full: str,
    queue_full_timeout: float,
    durability: str,
    logger: Any = None,
    max_queue_bytes: int | None = None,
    queue_timeout: float = 0.05,
    spill_path: str | None = None,
) -> Outbox:
    """Build the outbox a queue URL names, a durable one behind its local spill; raises
    ConfigurationError naming a bad URL or option."""
    log = _as_logger(logger)
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("queue URL is empty; use 'memory', 'sqlite:///path' or 'redis://'")
    url = url.strip()
    if durability not in ("durable", "batched"):
        raise ConfigurationError(f"durability must be 'durable' or 'batched', got {durability!r}")
    queue_timeout = _positive("queue_timeout", queue_timeout, 60.0)
    if spill_path is not None and (not isinstance(spill_path, (str, os.PathLike))
                                   or not os.fspath(spill_path).strip()):
        raise ConfigurationError(f"spill_path must be a file path, got {spill_path!r}")
    if spill_path is not None:
        spill_path = os.path.abspath(os.path.expanduser(os.fspath(spill_path)))
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise ConfigurationError(f"queue URL {safe_url(url)!r} is malformed: {exc}") from None

    if url == "memory" or url.startswith("memory?") or scheme == "memory":
        from .memory import MemoryOutbox

        query = url.partition("?")[2]
        options = _options(query, {"spill"}, url)
        spill: Outbox | None = None
        scratch: str | None = None
        if queue_full == "spill":
            from .sqlite import SQLiteOutbox

            if options.get("spill") or spill_path:
                spill = SQLiteOutbox(options.get("spill") or str(spill_path),
                                     durability="batched", logger=log)
            else:
                # Scratch space that only extends memory; it does not outlive the process.
                scratch = tempfile.mkdtemp(prefix="opencdp-spill-")
                spill = SQLiteOutbox(
                    os.path.join(scratch, "spill.db"), durability="batched",
                    delete_on_close=True, logger=log,
                )

        throttle = LogThrottle(log)

        def on_drop(code: str, destination: str, message: Message) -> None:
            limit = f"{max_queue_size} messages" + (
                f" or {max_queue_bytes} bytes" if max_queue_bytes is not None else "")
            throttle(logging.WARNING, code, destination,
                     f"the {destination} memory queue is full ({limit}); policy "
                     f"{queue_full!r} dropped or refused a message. Drops are counted in "
                     "health(); raise the bound or use a durable queue.")

        return MemoryOutbox(
            max_size=max_queue_size,
            full_policy=queue_full,
            full_timeout=queue_full_timeout,
            spill=spill,
            on_drop=on_drop,
            max_bytes=max_queue_bytes,
            scratch=scratch,
        )

    if scheme == "sqlite":
        from .sqlite import SQLiteOutbox

        _options(urlsplit(url).query, set(), url)
        path = _sqlite_path(url)
        primary = SQLiteOutbox(path, durability=durability, logger=log)
        return _spilled(primary, f"sqlite:{os.path.abspath(path)}", spill_path, log)

    if scheme in ("redis+cluster", "rediss+cluster"):
        return _cluster(url, durability, queue_timeout, spill_path, log)

    if scheme in ("redis", "rediss", "unix"):
        try:
            from .redis import RedisOutbox
        except ImportError as exc:
            raise ConfigurationError(
                "a redis:// queue needs the redis package: pip install 'opencdp[redis]'"
            ) from exc
        parts = urlsplit(url)
        options = _options(parts.query, {"prefix", "timeout"}, url)
        try:
            timeout = float(options.get("timeout") or 5.0)
            if not timeout > 0:
                raise ValueError
        except ValueError:
            raise ConfigurationError(
                f"queue URL {safe_url(url)!r}: timeout must be a positive number of seconds"
            ) from None
        if scheme != "unix" and not parts.hostname:
            raise ConfigurationError(f"queue URL {safe_url(url)!r} names no Redis host")
        if scheme != "unix" and parts.path not in ("", "/") and not parts.path[1:].isdigit():
            raise ConfigurationError(
                f"queue URL {safe_url(url)!r}: the path must be a database number (redis://host:6379/0)"
            )
        try:
            parts.port  # noqa: B018  (validates)
        except ValueError:
            raise ConfigurationError(f"queue URL {safe_url(url)!r} has a bad port") from None
        clean = urlunsplit(parts._replace(query=""))
        prefix = options.get("prefix") or "opencdp"
        try:
            redis_box = RedisOutbox(
                clean, prefix=prefix, durability=durability,
                socket_timeout=timeout, put_timeout=queue_timeout, logger=log,
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"queue URL {safe_url(url)!r}: {exc}") from None
        where = f"{parts.hostname}:{parts.port}{parts.path}" if scheme != "unix" else parts.path
        name = f"redis:{where} {prefix}"
        return _spilled(redis_box, name, spill_path, log)

    raise ConfigurationError(
        f"queue URL {safe_url(url)!r} is not supported; use 'memory', 'sqlite:///path.db' "
        "or 'redis://host:port/db'"
    )
