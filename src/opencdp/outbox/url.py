"""Turn a queue URL (``queue=`` / ``OPENCDP_QUEUE_URL``) into an outbox.

Accepted forms::

    memory                              bounded, in-process (the default)
    memory?spill=/path/to/spill.db      the file the ``spill`` policy overflows into
    sqlite:///relative/or/absolute.db   durable, one host (``sqlite:////abs/path.db`` also works)
    redis://[:password@]host:port/db    durable, shared (``rediss://`` for TLS)
    redis://host:port/db?prefix=myapp   keys under ``{myapp}:`` instead of ``{opencdp}:``
    redis://host:port/db?timeout=0.5    connect/read timeout in seconds (default 5): how long
                                        a call can wait on an unreachable Redis

The Redis module is imported only for ``redis://`` URLs, so the base install needs no Redis
client. Error messages name the URL with its password replaced by ``***``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..errors import ConfigurationError
from ..message import Message
from .base import Outbox

__all__ = ["open_outbox", "safe_url"]

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


def open_outbox(
    url: str,
    *,
    max_queue_size: int,
    queue_full: str,
    queue_full_timeout: float,
    durability: str,
    logger: Any = None,
) -> Outbox:
    """Build the outbox a queue URL names; raises ConfigurationError naming a bad URL."""
    log: logging.Logger = logger if isinstance(logger, logging.Logger) else _log
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError("queue URL is empty; use 'memory', 'sqlite:///path' or 'redis://'")
    url = url.strip()
    if durability not in ("durable", "batched"):
        raise ConfigurationError(f"durability must be 'durable' or 'batched', got {durability!r}")
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise ConfigurationError(f"queue URL {safe_url(url)!r} is malformed: {exc}") from None

    if url == "memory" or url.startswith("memory?") or scheme == "memory":
        from .memory import MemoryOutbox

        query = url.partition("?")[2]
        options = _options(query, {"spill"}, url)
        spill: Outbox | None = None
        if queue_full == "spill":
            from .sqlite import SQLiteOutbox

            if options.get("spill"):
                spill = SQLiteOutbox(options["spill"], durability="batched", logger=log)
            else:
                # Scratch space that only extends memory; it does not outlive the process.
                folder = tempfile.mkdtemp(prefix="opencdp-spill-")
                spill = SQLiteOutbox(
                    os.path.join(folder, "spill.db"), durability="batched",
                    delete_on_close=True, logger=log,
                )

        def on_drop(code: str, destination: str, message: Message) -> None:
            log.warning(
                "%s: memory queue full, dropped message %s for %s",
                code, message.ulid, destination,
            )

        return MemoryOutbox(
            max_size=max_queue_size,
            full_policy=queue_full,
            full_timeout=queue_full_timeout,
            spill=spill,
            on_drop=on_drop,
        )

    if scheme == "sqlite":
        from .sqlite import SQLiteOutbox

        _options(urlsplit(url).query, set(), url)
        return SQLiteOutbox(_sqlite_path(url), durability=durability, logger=log)

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
        try:
            return RedisOutbox(
                clean, prefix=options.get("prefix") or "opencdp", durability=durability,
                socket_timeout=timeout, logger=log,
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"queue URL {safe_url(url)!r}: {exc}") from None

    raise ConfigurationError(
        f"queue URL {safe_url(url)!r} is not supported; use 'memory', 'sqlite:///path.db' "
        "or 'redis://host:port/db'"
    )
