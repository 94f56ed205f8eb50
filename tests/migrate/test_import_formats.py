"""``opencdp import`` in-process: dry runs, CSV people and events, Customer.io's people export,
``--map``, ``--key``, a Redis queue, and the usage errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrate.import_support import env_for, refused_lines, stored_events, write_records
from opencdp.cli import main
from opencdp.migrate.sources import csv_value, read_files

_CLEARED = {k: None for k in os.environ if k.startswith(("CDP_", "CUSTOMERIO_", "OPENCDP_"))}


def _invoke(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, list[dict[str, Any]],
                                                                      str]:
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = runner.invoke(main, ["import", *args], env={**_CLEARED, **env},
                               catch_exceptions=False)
    finally:
        os.chdir(old)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, events, result.output


def _summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in events if e["event"] == "summary")


def test_dry_run_sends_nothing_and_lists_refusals(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "h.ndjson"
    bad, kinds = write_records(source, 500)
    code, events, output = _invoke([str(source), "--dry-run", "--to", "both"], {}, tmp_path)
    assert code == 0, output
    assert refused_lines(events) == bad
    final = _summary(events)
    assert final["dry_run"] is True
    assert final["queued"] == kinds["identify"] + kinds["track"]
    assert final["refused"] == {"OCDP103": len(bad) // 2, "OCDP351": len(bad) - len(bad) // 2}
    assert not list(tmp_path.glob(".*opencdp-import*")), "a dry run writes no checkpoint"
    stats = sandbox.stats()
    assert stats["opencdp"]["requests"] == stats["customerio"]["requests"] == 0


def test_a_memory_queue_is_refused(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "h.ndjson"
    write_records(source, 10)
    code, _, output = _invoke([str(source), "--queue", "memory"], env_for(sandbox), tmp_path)
    assert code == 2
    assert "OCDP350" in output


def test_csv_people_and_events_are_typed_by_the_documented_rules(
        sandbox: Any, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(
        "id,email,plan,age,score,vip,zip,tags,note\n"
        "u1,u1@example.com,pro,42,9.5,true,01234,\"[\"\"a\"\",\"\"b\"\"]\",\"two\nlines\"\n"
        "u2,u2@example.com,,7,,FALSE,90210,,\n"
        ",nobody@example.com,free,1,,,,,\n", encoding="utf-8")
    events = tmp_path / "events.csv"
    events.write_text(
        "user_id,event,timestamp,properties.total,coupon\n"
        "u1,order_placed,1700000000,99.5,SAVE10\n"
        "u2,order_placed,2023-11-14T22:13:20Z,12,\n"
        "u2,order_placed,yesterday,1,\n", encoding="utf-8")
    env = env_for(sandbox)
    queue = f"sqlite:///{tmp_path / 'q.db'}"
    code, out, output = _invoke([str(people), "--queue", queue], env, tmp_path)
    assert code == 0, output
    assert [(e["line"], e["code"]) for e in out if e["event"] == "refused"] == [(5, "OCDP110")]
    code, out, output = _invoke([str(events), "--queue", queue], env, tmp_path)
    assert code == 0, output
    assert [(e["line"], e["code"]) for e in out if e["event"] == "refused"] == [(4, "OCDP103")]
    u1 = sandbox.person("opencdp", "u1")
    assert u1 is not None
    assert u1["attributes"] == {"email": "u1@example.com", "plan": "pro", "age": 42,
                                "score": 9.5, "vip": True, "zip": "01234",
                                "tags": ["a", "b"], "note": "two\nlines"}
    u2 = sandbox.person("opencdp", "u2")
    assert u2 is not None
    assert u2["attributes"] == {"email": "u2@example.com", "age": 7, "vip": False,
                                "zip": 90210}
    assert [e["data"] for e in u1["events"]] == [{"total": 99.5, "coupon": "SAVE10"}]
    assert [e["data"] for e in u2["events"]] == [{"total": 12}]


def test_customerio_people_export_preset(sandbox: Any, tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "id,email,cio_id,created_at,unsubscribed,plan\n"
        "u1,u1@example.com,a1b2,1600000000,false,pro\n"
        ",only@example.com,c3d4,1600000001,true,free\n", encoding="utf-8")
    code, out, output = _invoke(
        [str(export), "--format", "customerio-people-csv", "--to", "both",
         "--queue", f"sqlite:///{tmp_path / 'q.db'}"], env_for(sandbox), tmp_path)
    assert code == 0, output
    assert _summary(out)["queued"] == 2
    u1 = sandbox.person("customerio", "u1")
    assert u1 is not None
    assert u1["attributes"]["created_at"] == 1600000000
    assert u1["attributes"]["unsubscribed"] is False
    assert "cio_id" not in u1["attributes"]
    assert sandbox.person("customerio", "only@example.com") is not None
    assert sandbox.person("opencdp", "u1") is not None


def test_map_renames_columns_and_key_names_records(sandbox: Any, tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    first.write_text("Customer,What,When,Order,Internal\n"
                     "u1,order_placed,1700000000,A-1,x\n"
                     "u1,order_placed,1700000100,A-2,y\n", encoding="utf-8")
    second = tmp_path / "b.csv"  # an overlapping export: A-2 again, then A-3
    second.write_text("Customer,What,When,Order,Internal\n"
                      "u1,order_placed,1700000100,A-2,y\n"
                      "u1,order_placed,1700000200,A-3,z\n", encoding="utf-8")
    env = env_for(sandbox)
    maps = ["--map", "Customer=user_id", "--map", "What=event", "--map", "When=timestamp",
            "--map", "Internal=-", "--key", "Order", "--to", "both"]
    for path in (first, second):
        code, _, output = _invoke([str(path), *maps, "--queue",
                                   f"sqlite:///{tmp_path / 'q.db'}"], env, tmp_path)
        assert code == 0, output
    events = sandbox.person("customerio", "u1")["events"]  # type: ignore[index]
    assert sorted(e["data"]["Order"] for e in events) == ["A-1", "A-2", "A-3"]
    assert all("Internal" not in e["data"] for e in events)
    assert set(stored_events(sandbox, "opencdp")) == {e["id"] for e in events}


def test_a_checkpoint_of_other_options_is_refused(sandbox: Any, tmp_path: Path) -> None:
    source = tmp_path / "h.ndjson"
    write_records(source, 50)
    env = env_for(sandbox)
    cp = str(tmp_path / "cp.json")
    queue = f"sqlite:///{tmp_path / 'q.db'}"
    code, _, output = _invoke([str(source), "--queue", queue, "--checkpoint", cp], env,
                              tmp_path)
    assert code == 0, output
    code, _, output = _invoke([str(source), "--queue", queue, "--checkpoint", cp, "--to",
                               "both"], env, tmp_path)
    assert code == 2
    assert "OCDP353" in output


@pytest.mark.redis
def test_import_into_redis(sandbox: Any, tmp_path: Path, redis_url: str) -> None:
    source = tmp_path / "h.ndjson"
    bad, kinds = write_records(source, 300)
    code, out, output = _invoke([str(source), "--to", "both", "--queue",
                                 f"{redis_url}?prefix=import-{os.getpid()}"],
                                env_for(sandbox), tmp_path)
    assert code == 0, output
    assert refused_lines(out) == bad
    cio = stored_events(sandbox, "customerio")
    assert len(cio) == len(set(cio)) == kinds["track"]


def test_csv_cells_are_typed() -> None:
    assert [csv_value(v) for v in ("42", "-7", "007", "1.5", "1e3", "true", "False",
                                   "{\"a\": 1}", "[1]", "{x", "nan", "9" * 30)] == [
        42, -7, "007", 1.5, 1000.0, True, False, {"a": 1}, [1], "{x", "nan", "9" * 30]


def test_a_resumed_read_starts_past_the_cursor(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id,note\nu1,\"a\nb\"\nu2,c\nu3,d\n", encoding="utf-8")
    items = list(read_files([str(path)], ["csv"]))
    assert [p.line for p, _ in items] == [2, 4, 5]
    rest = list(read_files([str(path)], ["csv"], after=items[0][0].cursor))
    assert [(p.line, r) for p, r in rest] == [(p.line, r) for p, r in items[1:]]
