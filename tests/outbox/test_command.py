"""``opencdp queue ...`` against real SQLite and Redis queues, through the top-level CLI."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from opencdp.cli import main
from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid
from opencdp.outbox.base import DeadItem
from opencdp.outbox.command import parse_since
from opencdp.outbox.url import open_outbox


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("cluster", marks=pytest.mark.redis)])
def queue_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'q.db'}"
    if request.param == "cluster":
        return (request.getfixturevalue("redis_cluster").url + "?partitions=4&prefix=cli"
                + secrets.token_hex(5))
    return request.getfixturevalue("redis_url") + "?prefix=cli" + secrets.token_hex(5)


def seed(url: str) -> dict[str, Any]:
    """Two delivered to OpenCDP, one dead there (old), one dead at Customer.io (recent)."""
    # A put's bound is generous here: on a loaded machine a 50 ms put (the default) spills,
    # and a spilled message cannot be leased in this seed.
    box = open_outbox(url, max_queue_size=1, queue_full="drop_oldest", queue_full_timeout=0,
                      durability="durable", queue_timeout=2.0)
    msgs = [Message(new_ulid(), "track", f"user-{i}", "Paid", {"amount": i}, None,
                    OPENCDP | CUSTOMERIO) for i in range(4)]
    for m in msgs:
        box.put(m)
    now = time.time()
    box.lease("opencdp", 10, now, 60)
    box.lease("customerio", 10, now, 60)
    box.ack("opencdp", [msgs[0].id, msgs[1].id])
    box.dead("opencdp", [DeadItem(msgs[2].id, "HTTP 400: bad", 400)], now - 7200)
    box.dead("customerio", [DeadItem(msgs[3].id, "HTTP 401: key", 401)], now)
    box.close()
    return {"msgs": msgs, "now": now}


def run(*args: str, input: str | None = None) -> Any:
    result = CliRunner().invoke(main, ["queue", *args], input=input, catch_exceptions=False)
    return result


def test_stats_json(queue_url: str) -> None:
    seed(queue_url)
    result = run("stats", "--queue", queue_url, "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert {k: stats["opencdp"][k] for k in ("pending", "in_flight", "dead", "delivered")} == {
        "pending": 0, "in_flight": 1, "dead": 1, "delivered": 2}
    assert stats["customerio"]["dead"] == 1 and stats["customerio"]["in_flight"] == 3


def test_stats_table_reads_the_environment(queue_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(queue_url)
    monkeypatch.setenv("OPENCDP_QUEUE_URL", queue_url)
    result = run("stats")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:5] == ["destination", "pending", "in_flight", "dead", "delivered"]
    assert lines[1].split()[:5] == ["opencdp", "0", "1", "1", "2"]


def test_list_filters(queue_url: str) -> None:
    seeded = seed(queue_url)
    result = run("list", "--queue", queue_url, "--json")
    letters = json.loads(result.output)
    assert [d["destination"] for d in letters] == ["customerio", "opencdp"]
    assert letters[1]["id"] == seeded["msgs"][2].ulid and letters[1]["status"] == 400
    only = json.loads(run("list", "--queue", queue_url, "--json", "--since", "1h").output)
    assert [d["reason"] for d in only] == ["HTTP 401: key"]
    cdp = json.loads(run("list", "--queue", queue_url, "--json", "--destination",
                         "opencdp").output)
    assert [d["reason"] for d in cdp] == ["HTTP 400: bad"]
    text = run("list", "--queue", queue_url).output
    assert seeded["msgs"][3].ulid in text and "HTTP 401: key" in text


def test_list_table_has_a_header_and_the_person(queue_url: str) -> None:
    seeded = seed(queue_url)
    lines = run("list", "--queue", queue_url).output.splitlines()
    assert lines[0].split() == ["ID", "DESTINATION", "DEAD", "AT", "STATUS", "TRIES", "PERSON",
                                "CALL", "REASON"]
    first = lines[1].split()
    assert first[:2] == [seeded["msgs"][3].ulid, "customerio"]
    assert first[3:7] == ["401", "1", "user-3", "track:Paid"]
    assert lines[1].endswith("HTTP 401: key")
    assert lines[0].index("PERSON") == lines[1].index("user-3"), "columns are aligned"
    assert json.loads(run("list", "--queue", queue_url, "--json").output)[0]["person"] == "user-3"


def test_show(queue_url: str) -> None:
    seeded = seed(queue_url)
    target = seeded["msgs"][3]
    result = run("show", target.ulid, "--queue", queue_url, "--json")
    (letter,) = json.loads(result.output)
    assert letter["data"] == {"amount": 3} and letter["attempts"] == 1
    assert letter["destinations"] == ["opencdp", "customerio"]
    text = run("show", target.ulid, "--queue", queue_url).output
    assert "amount" in text
    assert "destinations: opencdp, customerio" in text and "destinations: 3" not in text
    missing = run("show", Message(new_ulid(), "track", "u", None, None, None, 1).ulid,
                  "--queue", queue_url)
    assert missing.exit_code == 1 and "no dead letter" in missing.output
    bad = run("show", "not-a-ulid", "--queue", queue_url)
    assert bad.exit_code == 2 and "26 characters" in bad.output


def test_replay_then_purge(queue_url: str) -> None:
    seeded = seed(queue_url)
    result = run("replay", "--queue", queue_url, "--destination", "customerio", "--json")
    assert json.loads(result.output) == {"replayed": 1}
    box = open_outbox(queue_url, max_queue_size=1, queue_full="drop_oldest",
                      queue_full_timeout=0, durability="durable")
    try:
        leased = box.lease("customerio", 10, time.time(), 60)
        assert [(x.message.id, x.attempt) for x in leased] == [(seeded["msgs"][3].id, 0)]
    finally:
        box.close()
    refused = run("purge", "--queue", queue_url, input="n\n")
    assert refused.exit_code == 1  # aborted at the prompt
    result = run("purge", "--queue", queue_url, "--yes")
    assert result.exit_code == 0 and "purged 1 dead letter(s) of any age" \
        in result.output
    assert json.loads(run("list", "--queue", queue_url, "--json").output) == []


def remaining(queue_url: str) -> list[str]:
    return [d["destination"] for d in json.loads(run("list", "--queue", queue_url,
                                                     "--json").output)]


def test_purge_refuses_since_and_names_both_directions(queue_url: str) -> None:
    seed(queue_url)
    result = run("purge", "--queue", queue_url, "--since", "30d", "--yes")
    assert result.exit_code == 2
    assert "--older-than 30d" in result.output and "--newer-than 30d" in result.output
    assert remaining(queue_url) == ["customerio", "opencdp"], "nothing may be deleted"


def test_purge_confirmation_shows_the_count_and_the_window(queue_url: str) -> None:
    seed(queue_url)
    asked = run("purge", "--queue", queue_url, "--older-than", "1h", input="n\n")
    assert asked.exit_code == 1
    assert "Delete 1 dead letter(s) that died before " in asked.output
    assert "(older than 1h)?" in asked.output
    asked = run("purge", "--queue", queue_url, "--destination", "customerio", input="n\n")
    assert "Delete 1 dead letter(s) for customerio of any age?" in asked.output
    asked = run("purge", "--queue", queue_url, input="n\n")
    assert "Delete 2 dead letter(s) of any age?" in asked.output
    assert remaining(queue_url) == ["customerio", "opencdp"]
    nothing = run("purge", "--queue", queue_url, "--older-than", "30d")
    assert nothing.exit_code == 0, "no prompt when nothing matches"
    assert "nothing to purge: no dead letter that died before" in nothing.output


def test_purge_newer_than_deletes_only_the_recent_window(queue_url: str) -> None:
    seed(queue_url)
    result = run("purge", "--queue", queue_url, "--newer-than", "1h", "--yes", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["purged"] == 1 and body["dead_before"] is None and body["dead_since"]
    assert remaining(queue_url) == ["opencdp"]


def test_purge_older_than_is_the_retention_clean_up(queue_url: str) -> None:
    seed(queue_url)
    result = run("purge", "--queue", queue_url, "--older-than", "1h", "--yes")
    assert result.exit_code == 0, result.output
    assert "purged 1 dead letter(s) that died before" in result.output
    assert remaining(queue_url) == ["customerio"], "the recent dead letter must stay"


@pytest.mark.parametrize(("args", "message"), [
    (["--older-than", "yesterday"], "not an age"),
    (["--newer-than", "5"], "not an age"),
    (["--older-than", "1h", "--newer-than", "30m"], "window is empty"),
])
def test_purge_bad_windows_are_usage_errors(queue_url: str, args: list[str],
                                            message: str) -> None:
    seed(queue_url)
    result = run("purge", "--queue", queue_url, "--yes", *args)
    assert result.exit_code == 2 and message in result.output
    assert remaining(queue_url) == ["customerio", "opencdp"]


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    result = run("stats", "--queue", f"sqlite:///{tmp_path / 'typo.db'}")
    assert result.exit_code == 2 and "no queue file" in result.output
    assert not (tmp_path / "typo.db").exists()


def test_memory_and_bad_urls_are_usage_errors() -> None:
    result = run("stats", "--queue", "memory")
    assert result.exit_code == 2 and "inside the application's process" in result.output
    result = run("stats", "--queue", "ftp://x")
    assert result.exit_code == 2 and "not supported" in result.output


def test_parse_since() -> None:
    now = 1_700_000_000.0
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2d", now) == now - 2 * 86400
    assert parse_since("1699990000", now) == 1699990000.0
    assert parse_since("2023-11-14T22:13:20Z", now) == 1700000000.0
    assert parse_since(None, now) is None
    with pytest.raises(Exception, match="not Unix seconds"):
        parse_since("yesterday", now)
