"""Any stream of records, any crash point, any checkpoint interval: after the resume, the queue
holds every valid record under its one id, and repeats only of what the crash left unsaved."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opencdp import Client
from opencdp.calls import Calls
from opencdp.migrate.checkpoint import Checkpoint, load
from opencdp.migrate.importing import Importer, import_config
from opencdp.migrate.records import RecordError, to_call
from opencdp.migrate.sources import Unreadable, identify_source, read_files
from opencdp.outbox.url import open_outbox

ENV = {"CDP_API_KEY": "cdp-test-key", "OPENCDP_ENDPOINT": "http://127.0.0.1:9/gateway"}

_users = st.sampled_from(["u1", "u2", "u3", ""])
_records = st.one_of(
    st.builds(lambda u, n, ts: {"type": "identify", "user_id": u, "attributes": {"n": n},
                                "timestamp": ts},
              _users, st.integers(0, 9), st.sampled_from([1_600_000_000, None, "bad"])),
    st.builds(lambda u, e, ts: {"type": "track", "user_id": u, "event": e, "timestamp": ts},
              _users, st.sampled_from(["order_placed", "signed_up", ""]),
              st.sampled_from([1_500_000_000, 1_700_000_000_000, None])),
    st.just("not json"),
)


class Crash(Exception):
    pass


def _crashing(items: Any, at: int) -> Any:
    for index, item in enumerate(items):
        if index == at:
            raise Crash
        yield item


def _client(queue: str) -> Client:
    return Client(config=import_config(queue, "opencdp", False, ENV).with_options(
        start_worker=False, cdp_fallback_endpoints=[]))


def _expected(path: str) -> set[int]:
    """The ids of the valid records, from a dry run's own reading of the file."""
    client = Client(config=import_config(None, "opencdp", True, ENV))
    calls = Calls(client.engine)
    ids = set()
    for position, record in read_files([path], ["ndjson"]):
        if isinstance(record, Unreadable):
            continue
        try:
            ids.add(to_call(calls, record, position.base, position.offset, 1)[0].id)
        except (RecordError, ValueError):
            continue
    client.close(timeout=0)
    return ids


@settings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(records=st.lists(_records, min_size=1, max_size=30), crash=st.integers(0, 32),
       every=st.integers(1, 6))
def test_resume_after_any_crash_queues_every_record_under_one_id(
        tmp_path_factory: pytest.TempPathFactory, records: list[Any], crash: int,
        every: int) -> None:
    started = time.monotonic()
    directory = tmp_path_factory.mktemp("import")
    source = directory / "r.ndjson"
    source.write_bytes(b"".join((r.encode() if isinstance(r, str) else orjson.dumps(r)) + b"\n"
                                for r in records))
    queue = f"sqlite:///{directory / 'q.db'}"
    cp_path = str(directory / "cp.json")
    identity = identify_source(str(source))

    client = _client(queue)
    first = Importer(client, checkpoint_path=cp_path, checkpoint_every=every,
                     checkpoint=Checkpoint([identity.to_json()], {}))
    try:
        first.run(_crashing(read_files([str(source)], ["ndjson"]), crash))
    except Crash:
        pass
    client.close(timeout=1)

    saved = load(cp_path) or Checkpoint([identity.to_json()], {})
    skipped, saved_read = saved.queued, saved.read
    client = _client(queue)
    second = Importer(client, checkpoint_path=cp_path, checkpoint=saved)
    report = second.run(read_files([str(source)], ["ndjson"], after=saved.cursor))
    client.close(timeout=1)
    assert report.skipped == skipped
    assert report.complete

    outbox = open_outbox(queue, max_queue_size=10, queue_full="block",
                         queue_full_timeout=1.0, durability="durable")
    try:
        held = Counter(item.message.id for item in outbox.lease("opencdp", 10_000,
                                                                 time.time(), 60))
    finally:
        outbox.close()
    assert set(held) == _expected(str(source))
    repeats = sum(n - 1 for n in held.values())
    assert repeats <= max(0, min(crash, len(records)) - saved_read)
    assert time.monotonic() - started < 10


def test_a_checkpoint_is_never_ahead_of_the_queue(tmp_path: Path) -> None:
    """Every record before the saved cursor is in the queue when the checkpoint is read."""
    source = tmp_path / "r.ndjson"
    source.write_bytes(b"".join(orjson.dumps({"type": "identify", "user_id": f"u{i}"}) + b"\n"
                                for i in range(500)))
    queue = f"sqlite:///{tmp_path / 'q.db'}"
    client = _client(queue)
    identity = identify_source(str(source))
    importer = Importer(client, checkpoint_path=str(tmp_path / "cp.json"), checkpoint_every=37,
                        checkpoint=Checkpoint([identity.to_json()], {}))
    outbox = open_outbox(queue, max_queue_size=10, queue_full="block", queue_full_timeout=1.0,
                         durability="durable")
    seen: list[tuple[int, int]] = []

    def check(items: Any) -> Any:
        for item in items:
            saved = load(str(tmp_path / "cp.json"))
            if saved is not None and saved.queued:
                stats = outbox.stats(time.time())["opencdp"]
                seen.append((saved.queued, stats.pending))
            yield item

    try:
        importer.run(check(read_files([str(source)], ["ndjson"])))
    finally:
        client.close(timeout=1)
        outbox.close()
    assert seen
    assert all(queued <= pending for queued, pending in seen)
