"""The issue's proof at test size: an import with 1 % bad records, stopped at about half by
kill -9 (and, separately, by Ctrl-C), then resumed: every valid record stored once."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from migrate.import_support import (
    distinct_keys,
    env_for,
    lines,
    refused_lines,
    run_import,
    start_import,
    stored_events,
    summary,
    wait_queued,
    write_records,
)

RECORDS = int(os.environ.get("OPENCDP_PROOF_RECORDS", "3000"))
"""The issue's proof is 100,000 records: ``OPENCDP_PROOF_RECORDS=100000`` runs it (minutes)."""


def _check_platforms(sandbox: Any, kinds: dict[str, int]) -> None:
    valid = kinds["identify"] + kinds["track"]
    cio = stored_events(sandbox, "customerio")
    assert len(cio) == kinds["track"] == len(set(cio)), "Customer.io stores each event once"
    cdp = stored_events(sandbox, "opencdp")
    assert set(cdp) == set(cio), "both platforms hold the same events, under the same ids"
    assert distinct_keys(sandbox) == valid, "one Idempotency-Key per valid record at OpenCDP"
    people = {p["id"]: p for p in sandbox.people("opencdp")}
    assert len(people) == kinds["identify"]
    assert people["user-7"]["attributes"]["email"] == "user-7@example.com"


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_stopped_at_half_and_resumed_stores_every_record_once(
        sandbox: Any, tmp_path: Path, stop: signal.Signals) -> None:
    source = tmp_path / "history.ndjson"
    bad, kinds = write_records(source, RECORDS)
    env = env_for(sandbox)
    args = [str(source), "--to", "both", "--queue", f"sqlite:///{tmp_path / 'queue.db'}"]

    first = start_import([*args, "--rate", str(max(1500, RECORDS // 2))], env, tmp_path)
    try:
        wait_queued(tmp_path, RECORDS // 3, seconds=max(60, RECORDS / 100))
        first.send_signal(stop)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    first_events = lines(out)
    if stop == signal.SIGKILL:
        assert first.returncode == -signal.SIGKILL
    else:
        assert first.returncode == 130, err.decode()
        assert summary(first_events)["interrupted"] is True
    checkpoint = wait_queued(tmp_path, 1)
    assert 0 < checkpoint["queued"] < RECORDS - len(bad), "stopped part-way"

    code, second_events, err = run_import(args, env, tmp_path,
                                          timeout=max(120, RECORDS / 50))
    assert code == 0, err
    resumed = [e for e in second_events if e.get("event") == "resumed"]
    assert resumed and resumed[0]["skipped"] == checkpoint["queued"]
    final = summary(second_events)
    assert final["complete"] is True
    assert final["skipped"] == checkpoint["queued"]
    assert refused_lines(first_events) | refused_lines(second_events) == bad
    assert final["skipped_refused"] + final["refused_total"] == len(bad)
    _check_platforms(sandbox, kinds)


def test_running_the_same_import_twice_sends_nothing_new(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "history.ndjson"
    bad, kinds = write_records(source, 600)
    env = env_for(sandbox)
    args = [str(source), "--to", "both", "--queue", f"sqlite:///{tmp_path / 'queue.db'}"]
    code, events, err = run_import(args, env, tmp_path)
    assert code == 0, err
    assert refused_lines(events) == bad
    first = sandbox.stats()
    code, events, err = run_import(args, env, tmp_path)
    assert code == 0, err
    again = summary(events)
    assert again["read"] == again["queued"] == 0
    assert again["skipped"] == kinds["identify"] + kinds["track"]
    assert sandbox.stats() == first
    _check_platforms(sandbox, kinds)


def test_without_its_checkpoint_a_second_import_is_deduplicated_by_id(
        sandbox: Any, tmp_path: Path) -> None:
    """The checkpoint lost: every record is queued again, under the same ids."""
    source = tmp_path / "history.ndjson"
    _, kinds = write_records(source, 400)
    env = env_for(sandbox)
    for round_ in (1, 2):
        args = [str(source), "--to", "both", "--queue", f"sqlite:///{tmp_path / 'q.db'}",
                "--checkpoint", str(tmp_path / f"cp{round_}.json")]
        code, _, err = run_import(args, env, tmp_path)
        assert code == 0, err
    _check_platforms(sandbox, kinds)
