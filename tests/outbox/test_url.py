"""Queue URLs: each form opens the outbox it names; bad ones are named in a clear error."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from opencdp.errors import ConfigurationError, OpenCDPError
from opencdp.message import Message, new_ulid
from opencdp.outbox.memory import MemoryOutbox
from opencdp.outbox.spill import SpilledOutbox
from opencdp.outbox.sqlite import SQLiteOutbox
from opencdp.outbox.url import default_spill_path, open_outbox, safe_url

DEFAULTS: dict[str, Any] = {
    "max_queue_size": 10,
    "queue_full": "drop_oldest",
    "queue_full_timeout": 0.1,
    "durability": "durable",
}


def test_memory() -> None:
    box = open_outbox("memory", **DEFAULTS)
    assert isinstance(box, MemoryOutbox) and box.max_size == 10 and not box.durable
    box.close()


def test_memory_spill_defaults_to_a_private_scratch_file() -> None:
    box = open_outbox("memory", **{**DEFAULTS, "queue_full": "spill", "max_queue_size": 1})
    spill = box._spill  # type: ignore[attr-defined]
    assert isinstance(spill, SQLiteOutbox) and spill.delete_on_close
    box.put(Message(new_ulid(), "track", "u", "a", None, None, 1))
    box.put(Message(new_ulid(), "track", "u", "b", None, None, 1))  # overflows to the file
    assert os.path.exists(spill.path)
    box.close()
    assert not os.path.exists(spill.path)


def test_memory_spill_to_a_named_file(tmp_path: Path) -> None:
    path = tmp_path / "spill.db"
    box = open_outbox(f"memory?spill={path}", **{**DEFAULTS, "queue_full": "spill"})
    assert isinstance(box._spill, SQLiteOutbox)  # type: ignore[attr-defined]
    assert box._spill.path == str(path)  # type: ignore[attr-defined]
    box.close()


def test_sqlite_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = open_outbox("sqlite:///rel/q.db", **DEFAULTS)
    assert isinstance(rel, SpilledOutbox) and isinstance(rel.primary, SQLiteOutbox)
    assert rel.primary.path == "rel/q.db" and rel.durable
    assert (tmp_path / "rel" / "q.db").exists()
    rel.close()
    absolute = tmp_path / "abs.db"
    box = open_outbox(f"sqlite:///{absolute}", **{**DEFAULTS, "durability": "batched"})
    assert isinstance(box, SpilledOutbox) and isinstance(box.primary, SQLiteOutbox)
    assert Path(box.primary.path) == absolute and box.primary.durability == "batched"
    box.close()


def test_default_spill_path_is_per_queue_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is written until a put spills; the path names the queue, not the process."""
    monkeypatch.chdir(tmp_path)
    a = open_outbox("sqlite:///a.db", **DEFAULTS)
    b = open_outbox("sqlite:///b.db", **DEFAULTS)
    assert isinstance(a, SpilledOutbox) and isinstance(b, SpilledOutbox)
    assert Path(a.spill.path).parent == tmp_path / ".opencdp-spill"
    assert a.spill.path != b.spill.path
    assert a.spill.path == default_spill_path(f"sqlite:{tmp_path / 'a.db'}")
    assert not (tmp_path / ".opencdp-spill").exists()
    a.close()
    b.close()
    named = open_outbox("sqlite:///c.db", **DEFAULTS, spill_path=str(tmp_path / "s" / "x.db"))
    assert isinstance(named, SpilledOutbox) and named.spill.path == str(tmp_path / "s" / "x.db")
    named.close()


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "0.05", True, 61])
def test_bad_queue_timeout_is_named(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="queue_timeout"):
        open_outbox("memory", **DEFAULTS, queue_timeout=value)


@pytest.mark.parametrize("value", [0, -5, 1.5, "10", True])
def test_bad_max_queue_bytes_is_named(value: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_queue_bytes"):
        open_outbox("memory", **DEFAULTS, max_queue_bytes=value)


def test_bad_spill_path_is_named() -> None:
    with pytest.raises(ConfigurationError, match="spill_path"):
        open_outbox("memory", **DEFAULTS, spill_path="  ")


@pytest.mark.redis
def test_redis(redis_url: str) -> None:
    from opencdp.outbox.redis import RedisOutbox

    box = open_outbox(redis_url + "?prefix=urltest&timeout=0.5", **DEFAULTS, queue_timeout=0.02)
    assert isinstance(box, SpilledOutbox)
    primary = box.primary
    assert isinstance(primary, RedisOutbox) and primary.prefix == "urltest" and box.durable
    assert primary._socket_timeout == 0.5 and primary._put_timeout == 0.02
    assert box.shared_state() == primary.shared_state() and box.shared_state() is not None
    box.close()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", "empty"),
        ("kafka://broker:9092", "not supported"),
        ("sqlite://host/q.db", "no host"),
        ("sqlite:///", "names no database file"),
        ("sqlite:///q.db?mode=ro", "unknown option"),
        ("memory?size=3", "unknown option"),
        ("redis://", "names no Redis host"),
        ("redis://127.0.0.1:6379/zero", "database number"),
        ("redis://127.0.0.1:notaport/0", "bad port"),
        ("redis://127.0.0.1:6379/0?timeout=-1", "timeout must be"),
    ],
)
def test_bad_urls_are_named(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        open_outbox(url, **DEFAULTS)


def test_passwords_never_appear_in_errors() -> None:
    with pytest.raises(ConfigurationError) as info:
        open_outbox("redis://:hunter2@127.0.0.1:6379/zero", **DEFAULTS)
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)
    assert safe_url("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert safe_url("redis://h:1/0") == "redis://h:1/0"


def test_bad_durability() -> None:
    with pytest.raises(ConfigurationError, match="durability"):
        open_outbox("memory", **{**DEFAULTS, "durability": "eventually"})


def test_unreachable_redis_fails_within_the_timeout() -> None:
    """A Redis that is not there at start is a clear error after the URL's timeout, not a
    hang (once running, an outage spills instead: see test_spill)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        start = time.monotonic()
        with pytest.raises(OpenCDPError, match="Redis outbox failed"):
            open_outbox(f"redis://127.0.0.1:{port}/0?timeout=0.5", **DEFAULTS)
        assert time.monotonic() - start < 5


def test_a_closed_durable_queue_refuses_puts(tmp_path: Path) -> None:
    """After close, neither the queue nor the spill takes a message: the call is told."""
    box = open_outbox(f"sqlite:///{tmp_path / 'q.db'}", **DEFAULTS,
                      spill_path=str(tmp_path / "spill.db"))
    box.close()
    with pytest.raises(OpenCDPError, match="not queued"):
        box.put(Message(new_ulid(), "track", "u", "a", None, None, 3))
    assert not (tmp_path / "spill.db").exists()


class Collector:
    """A logger that is not a ``logging.Logger``, as the client's ``logger=`` allows."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def warning(self, text: str) -> None:
        self.lines.append(("warning", text))

    def error(self, text: str) -> None:
        self.lines.append(("error", text))


def test_memory_drops_are_logged_once_per_interval_to_any_logger() -> None:
    logger = Collector()
    box = open_outbox("memory", **{**DEFAULTS, "max_queue_size": 5}, logger=logger)
    for i in range(100):
        box.put(Message(new_ulid(), "track", "u", f"e{i}", None, None, 3))
    assert box.stats(time.time())["opencdp"].dropped == {"drop_oldest": 95}
    assert [(level, text.split()[1]) for level, text in logger.lines] == [
        ("warning", "OCDP301"), ("warning", "OCDP301")]  # one per destination
    assert "opencdp memory queue is full (5 messages)" in logger.lines[0][1]
    box.close()


def test_spill_reports_reach_any_logger(tmp_path: Path) -> None:
    logger = Collector()
    box = open_outbox(f"sqlite:///{tmp_path / 'q.db'}", **DEFAULTS, logger=logger,
                      spill_path=str(tmp_path / "spill.db"))
    assert isinstance(box, SpilledOutbox)
    box.primary.close()  # the queue fails every write from now on
    box.put(Message(new_ulid(), "track", "u", "a", None, None, 3))
    box.put(Message(new_ulid(), "track", "u", "b", None, None, 3))
    assert [text.split()[1] for _, text in logger.lines] == ["OCDP320"]
    assert box.spill.counts()[0] == 2
    box.close()
