"""Rollback while Customer.io misbehaves: failed requests are retried in place, so order holds;
an outage stops the rollback with the copies still held, and a second run resumes it."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from health.support import client_options
from migrate.test_hold import _cli, _client, _order, _track
from opencdp.config import ClientConfig, RetryConfig
from opencdp.migrate.hold import RollbackIncompleteError, rollback
from opencdp.outbox.command import open_for_inspection
from support.waiting import wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    url: str = request.getfixturevalue("redis_url")
    return f"{url}?prefix=holdf{secrets.token_hex(5)}"


def _drain_config(sandbox: Any, queue: str, attempts: int) -> ClientConfig:
    return ClientConfig(**client_options(
        sandbox, queue=queue, batch_size=40, register_atexit=False, start_worker=False,
        retry=RetryConfig(base_delay=0.0, max_delay=0.0, max_attempts=attempts)))


def test_failed_requests_are_retried_in_place_and_order_holds(sandbox: Any, queue_url: str
                                                             ) -> None:
    client = _client(sandbox, queue_url)
    try:
        _track(client, range(400))
        assert client.flush(30)
        sandbox.set_faults({"customerio": {"error_rate": 0.3, "statuses": [503, 500],
                                           "reset_after_store_rate": 0.15, "seed": 11}})
        box = open_for_inspection(queue_url)
        try:
            report = rollback(box, _drain_config(sandbox, queue_url, attempts=30))
        finally:
            box.close()
        stats = sandbox.stats()["customerio"]
        assert stats["faults"], "the faults must have fired for this test to mean anything"
        assert (report.delivered, report.dead_lettered, report.released) == (400, 0, True)
        assert _order(sandbox) == list(range(400))  # stored-then-reset batches: once each
        assert wait_for(lambda: client.health().destinations["customerio"].state == "ok", 10)
    finally:
        sandbox.clear_faults()
        client.close(timeout=5)


def test_an_outage_stops_the_rollback_with_the_copies_held_and_a_rerun_resumes(
        sandbox: Any, queue_url: str) -> None:
    client = _client(sandbox, queue_url)
    try:
        _track(client, range(200))
        assert client.flush(30)
        sandbox.set_faults({"customerio": {"down": True}})
        box = open_for_inspection(queue_url)
        try:
            with pytest.raises(RollbackIncompleteError, match="OCDP369"):
                rollback(box, _drain_config(sandbox, queue_url, attempts=3))
            mark = box.hold_mark("customerio")
            assert mark is not None and mark.state == "draining"
        finally:
            box.close()
        cio = client.health().destinations["customerio"]
        assert (cio.state, cio.held_count) == ("held", 200)
        finish = _cli(sandbox, "finish", "--queue", queue_url, "--yes")
        assert finish.returncode == 1 and "RollbackInProgressError" in finish.stderr
        _track(client, range(200, 220))  # calls made meanwhile are held too
        assert client.flush(30)
        sandbox.clear_faults()

        result = _cli(sandbox, "rollback", "--queue", queue_url, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert (report["resumed"], report["delivered"], report["released"]) == (True, 220, True)
        seqs = _order(sandbox)
        assert Counter(seqs) == Counter(range(220))
        if queue_url.startswith("sqlite"):
            # handed back due at their first queueing: taken first again
            assert seqs == list(range(220))
        else:
            # Redis parks the batch that was in flight and brings it back behind the
            # others (docs/hold.md, "Order"); the rest keeps call order.
            assert [s for s in seqs if s >= 40] == list(range(40, 220))
        assert sandbox.stats()["customerio"]["duplicates"] == 0
        ok = wait_for(lambda: client.health().destinations["customerio"].state == "ok", 10)
        assert ok, client.health().destinations["customerio"]
    finally:
        sandbox.clear_faults()
        client.close(timeout=5)


def test_a_second_outbox_closed_in_the_process_leaves_the_live_log_alone(tmp_path: Path
                                                                        ) -> None:
    """An operator's rollback drill opens the queue beside a running client; closing that
    second outbox must not drop the client's locks, or the next process to close the file
    deletes the write-ahead log under the client (which then writes where nobody reads)."""
    import subprocess
    import sys

    from opencdp.outbox.sqlite import SQLiteOutbox

    path = tmp_path / "queue.db"
    live = SQLiteOutbox(path)
    try:
        live.set_hold_mark("customerio", "held", 1.0, (None,))
        SQLiteOutbox(path).close()
        code = ("import sys; from opencdp.outbox.sqlite import SQLiteOutbox; "
                "box = SQLiteOutbox(sys.argv[1]); "
                "box.set_hold_mark('customerio', 'released', 2.0, ('held',)); box.close()")
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
        assert (tmp_path / "queue.db-wal").exists()
        mark = live.hold_mark("customerio")
        assert mark is not None and mark.state == "released"
    finally:
        live.close()
