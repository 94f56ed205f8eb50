"""A file appended to after a complete import: a re-run imports what was appended, and
nothing twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.import_support import distinct_keys, env_for, run_import, stored_events, summary


def _lines(path: Path, start: int, stop: int) -> None:
    with open(path, "a") as fh:
        for n in range(start, stop):
            fh.write(f'{{"type": "track", "user_id": "u-{n % 7}", "event": "e", '
                     f'"properties": {{"n": {n}}}, "timestamp": {1_600_000_000 + n}}}\n')


def test_appended_records_are_imported_by_a_re_run(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "events.ndjson"
    _lines(source, 0, 100)
    env = env_for(sandbox)
    args = [str(source), "--to", "both", "--queue", f"sqlite:///{tmp_path / 'queue.db'}"]
    code, events, err = run_import(args, env, tmp_path)
    assert code == 0, err
    assert summary(events)["queued"] == 100

    _lines(source, 100, 150)
    code, events, err = run_import(args, env, tmp_path)
    assert code == 0, err
    final = summary(events)
    assert (final["skipped"], final["read"], final["queued"]) == (100, 50, 50)
    cio = stored_events(sandbox, "customerio")
    assert len(cio) == len(set(cio)) == 150
    assert distinct_keys(sandbox) == 150

    code, events, err = run_import(args, env, tmp_path)
    assert code == 0, err
    assert (summary(events)["read"], summary(events)["queued"]) == (0, 0)
    assert len(stored_events(sandbox, "customerio")) == 150
