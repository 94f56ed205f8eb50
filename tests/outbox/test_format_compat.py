"""A queue written before the destination registry reads unchanged after it.

``data/queue-head.db`` and ``data/stream-head.json`` were written by the code at commit
1d9097f (before destinations were registered by name), with its own queues: the SQLite
file as it left it (an ack, a dead letter, leases still held, a message not yet fanned out)
and the Redis stream's keys dumped as stored (entries, consumer groups, counters), which
the test writes back verbatim. The built-ins keep bits 1 and 2, so both read as before.
"""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from opencdp.message import CUSTOMERIO, OPENCDP, Message
from opencdp.outbox.redis import RedisOutbox
from opencdp.outbox.sqlite import SQLiteOutbox

DATA = Path(__file__).parent / "data"
T = 1_700_000_000_000


def written(n: int, dests: int) -> Message:
    """The messages the old code was given, rebuilt."""
    return Message((T + n) << 80 | n, "track", f"user-{n}", "signed_up", {"n": n},
                   1_700_000_000 + n, dests)


BOTH = OPENCDP | CUSTOMERIO


def test_a_sqlite_file_written_before_reads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    shutil.copyfile(DATA / "queue-head.db", path)
    box = SQLiteOutbox(path)
    try:
        now = time.time()
        stats = box.stats(now)
        assert set(stats) >= {"opencdp", "customerio"}
        assert stats["customerio"].dead == 1
        opencdp = box.lease("opencdp", 10, now, 30.0)
        assert [x.message for x in opencdp] == [written(3, BOTH), written(4, BOTH),
                                                written(5, BOTH)]
        customerio = box.lease("customerio", 10, now, 30.0)
        assert [x.message for x in customerio] == [written(4, BOTH), written(5, BOTH)]
        (letter,) = box.dead_letters("customerio")
        assert letter.message == written(2, CUSTOMERIO)
        assert (letter.destination, letter.reason, letter.status) == ("customerio",
                                                                     "HTTP 400", 400)
        box.ack("opencdp", [x.message.id for x in opencdp])
        box.ack("customerio", [x.message.id for x in customerio])
        assert box.pending_messages() == 0
    finally:
        box.close()


def _restore(url: str, dump: dict[str, Any]) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key, value in dump.items():
            if value["type"] == "stream":
                for entry_id, fields in value["entries"]:
                    client.xadd(key, {f: base64.b64decode(v) for f, v in fields.items()},
                                id=entry_id)
                for group, last in value["groups"]:
                    client.xgroup_create(key, group, id=last)
            elif value["type"] == "hash":
                client.hset(key, mapping=value["fields"])
            elif value["type"] == "string":
                client.set(key, value["value"])
            else:
                raise AssertionError(f"the dump holds a {value['type']} the test cannot write")
    finally:
        client.close()


@pytest.mark.redis
def test_a_redis_stream_written_before_reads_unchanged(redis_url: str) -> None:
    dump = orjson.loads((DATA / "stream-head.json").read_bytes())
    prefix = f"compat{time.time_ns() % 10**9}"
    dump = {key.replace("{head}", "{" + prefix + "}"): value for key, value in dump.items()}
    _restore(redis_url, dump)
    box = RedisOutbox(redis_url, prefix=prefix)
    try:
        now = time.time()
        stats = box.stats(now)
        assert (stats["opencdp"].pending, stats["customerio"].pending) == (4, 4)
        opencdp = box.lease("opencdp", 10, now, 30.0)
        assert [x.message for x in opencdp] == [
            written(1, OPENCDP), written(3, BOTH), written(4, BOTH), written(5, BOTH)]
        customerio = box.lease("customerio", 10, now, 30.0)
        assert [x.message for x in customerio] == [
            written(2, CUSTOMERIO), written(3, BOTH), written(4, BOTH), written(5, BOTH)]
        box.ack("opencdp", [x.message.id for x in opencdp])
        box.ack("customerio", [x.message.id for x in customerio])
        after = box.stats(now)
        assert (after["opencdp"].pending, after["opencdp"].in_flight) == (0, 0)
        assert (after["customerio"].pending, after["customerio"].in_flight) == (0, 0)
    finally:
        box.close()
