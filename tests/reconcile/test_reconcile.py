"""Reconciliation against the sandbox: an outage that lost Customer.io data, and a clean run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from health.support import client_options
from opencdp import AsyncClient, Client
from opencdp.cli import main
from opencdp.config import BreakerConfig, RetryConfig
from opencdp.errors import ConfigurationError
from opencdp.reconcile import ReconcileReport, areconcile, reconcile

# One attempt and a breaker that stays closed: every message sent during the outage is
# dead-lettered for Customer.io, none waits for a probe.
LOSSY = {"retry": RetryConfig(base_delay=0.01, max_delay=0.05, max_attempts=1),
         "breaker": BreakerConfig(failure_threshold=1000, reset_timeout=0.2)}


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'queue.db'}"


def run_with_outage(client: Client, sandbox: Any) -> float:
    """Four people; Customer.io down while user_0 and user_1 get three events each; then
    everyone gets one more event. Returns a time after the outage."""
    for i in range(4):
        client.identify(f"user_{i}", {"plan": "pro", "seats": i})
    assert client.flush(timeout=10)
    sandbox.set_faults({"customerio": {"down": True, "down_status": 500}})
    for i in range(6):
        client.track(f"user_{i % 2}", "page_viewed", {"n": i})
    assert client.flush(timeout=10)
    sandbox.clear_faults()
    after = time.time()
    time.sleep(0.002)  # the window's edge must not share a millisecond with the outage
    for i in range(4):
        client.track(f"user_{i}", "report_opened", {"n": i})
    client.register_device("user_3", "phone_3", "ios", apn_token="apn-token-3")
    assert client.flush(timeout=10)
    return after


def test_outage_for_part_of_the_run_is_found(make_client: Callable[..., Client],
                                             sandbox: Any) -> None:
    client = make_client(**LOSSY)
    run_with_outage(client, sandbox)
    report = reconcile(client, sandbox=sandbox)

    assert not report.in_sync
    assert report.sources == ("client", "sandbox")
    cdp, cio = report.destinations["opencdp"], report.destinations["customerio"]
    assert (cdp.accepted, cdp.delivered, cdp.pending, cdp.dead_lettered) == (15, 15, 0, 0)
    assert (cio.accepted, cio.delivered, cio.pending, cio.dead_lettered) == (15, 9, 0, 6)
    assert cio.by_kind["dead"] == {"track": 6}
    assert report.platforms["opencdp"]["events"] == 10
    assert report.platforms["customerio"]["events"] == 4
    assert report.people_compared == 4
    assert report.people_differing == 2
    assert report.messages_unmatched == 6

    found = {(d.id, d.source): d for d in report.differences}
    assert set(found) == {(f"user_{u}", s) for u in (0, 1) for s in ("sandbox", "records")}
    stored = found[("user_0", "sandbox")]
    assert stored.details == {"events": {"opencdp": 4, "customerio": 1, "only_opencdp": 3,
                                         "only_customerio": 0}}
    assert stored.summary == "3 event(s) only in OpenCDP"
    records = found[("user_1", "records")].details
    assert records["missing_from"] == "customerio"
    assert records["messages"] == 3 and records["kinds"] == {"track": 3}
    assert "HTTP 500" in records["reasons"][0]

    text = report.to_text()
    assert "NOT in sync" in text and "user_0" in text and "3 event(s) only in OpenCDP" in text


def test_a_window_after_the_outage_is_in_sync(make_client: Callable[..., Client],
                                              sandbox: Any) -> None:
    client = make_client(**LOSSY)
    after = run_with_outage(client, sandbox)
    report = reconcile(client, sandbox=sandbox, since=after)
    assert report.destinations["customerio"].dead_lettered_in_window == 0
    assert report.messages_unmatched == 0
    assert report.people_differing == 0, report.differences
    assert report.in_sync
    before = reconcile(client, sandbox=sandbox, until=after)
    assert before.destinations["customerio"].dead_lettered_in_window == 6
    assert before.people_differing == 2


def test_clean_run_has_no_differences(make_client: Callable[..., Client],
                                      sandbox: Any) -> None:
    client = make_client()
    for i in range(5):
        client.identify(f"user_{i}", {"email": f"u{i}@example.com", "plan": "pro"})
        client.track(f"user_{i}", "signed_up", {"source": "ads"})
    client.register_device("user_1", "phone_1", "android", fcm_token="fcm-token-1")
    client.suppress("user_4")
    assert client.flush(timeout=10)
    report = reconcile(client, sandbox=sandbox)
    assert report.in_sync, report.to_text()
    assert report.differences == [] and report.differences_total == 0
    assert report.people_compared == 5
    assert report.suppressed_in_customerio == 1
    assert any("suppressed in Customer.io" in note for note in report.notes)
    assert report.destinations["opencdp"].delivered == 11
    assert report.destinations["customerio"].delivered == 12, "suppress is Customer.io's"
    assert "in sync" in report.to_text().splitlines()


def test_records_alone_from_a_durable_queue(make_client: Callable[..., Client], sandbox: Any,
                                            queue_url: str) -> None:
    client = make_client(queue=queue_url, **LOSSY)
    run_with_outage(client, sandbox)
    client.close(timeout=2)
    report = reconcile(queue=queue_url)
    assert report.sources == ("queue",)
    assert report.counts_scope.startswith("the queue's lifetime")
    cio = report.destinations["customerio"]
    assert (cio.accepted, cio.delivered, cio.dead_lettered, cio.retried) == (15, 9, 6, None)
    assert report.messages_unmatched == 6
    assert {d.id for d in report.differences} == {"user_0", "user_1"}
    assert report.people_compared == 0 and report.platforms == {}


def test_command_text_json_and_check(make_client: Callable[..., Client], sandbox: Any,
                                     queue_url: str) -> None:
    client = make_client(queue=queue_url, **LOSSY)
    after = run_with_outage(client, sandbox)
    client.close(timeout=2)
    runner = CliRunner()
    args = ["reconcile", "--queue", queue_url, "--sandbox", sandbox.admin_url]

    text = runner.invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "NOT in sync" in text.output
    assert "differences (showing 4 of 4)" in text.output

    as_json = runner.invoke(main, [*args, "--json", "--sample", "1"])
    assert as_json.exit_code == 0, as_json.output
    body = orjson.loads(as_json.output)
    assert body["in_sync"] is False
    assert body["sources"] == ["queue", "sandbox"]
    assert body["destinations"]["customerio"]["dead_lettered"] == 6
    assert len(body["differences"]) == 1 and body["differences_total"] == 4

    assert runner.invoke(main, [*args, "--check"]).exit_code == 1
    windowed = runner.invoke(main, [*args, "--check", "--json", "--since", repr(after)])
    assert windowed.exit_code == 0, windowed.output
    assert orjson.loads(windowed.output)["in_sync"] is True


def test_command_needs_something_to_read() -> None:
    result = CliRunner().invoke(main, ["reconcile"], env={"OPENCDP_QUEUE_URL": ""})
    assert result.exit_code == 2
    assert "--queue" in result.output
    missing = CliRunner().invoke(main, ["reconcile", "--queue", "sqlite:///does/not/exist.db"])
    assert missing.exit_code == 2 and "no queue file" in missing.output
    bad = CliRunner().invoke(main, ["reconcile", "--sandbox", "ftp://127.0.0.1/_sandbox"])
    assert bad.exit_code == 2 and "http(s)" in bad.output


def test_async_client(sandbox: Any) -> None:
    async def run() -> tuple[ReconcileReport, ReconcileReport]:
        async with AsyncClient(**client_options(sandbox)) as aclient:
            await aclient.identify("user_1", {"plan": "pro"})
            await aclient.flush(timeout=10)
            return reconcile(aclient, sandbox=sandbox), await areconcile(aclient,
                                                                         sandbox=sandbox)

    for report in asyncio.run(run()):
        assert report.in_sync and report.destinations["customerio"].delivered == 1
        assert report.sources == ("client", "sandbox")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "needs a client, a queue or a sandbox"),
    ({"queue": "memory"}, "memory queue"),
    ({"queue": "sqlite:///no/such/file.db"}, "no queue file"),
    ({"sandbox": "not a url"}, "http"),
    ({"queue": "sqlite:///x.db", "sample": -1}, "sample"),
    ({"queue": "sqlite:///x.db", "since": 10, "until": 5}, "until must be after since"),
    ({"queue": "sqlite:///x.db", "since": "yesterday"}, "Unix seconds or a datetime"),
])
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        reconcile(**kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"client": object()}, "needs an opencdp Client or AsyncClient"),
    ({"sandbox": 42}, "sandbox must be a Sandbox or its admin URL"),
    ({"queue": 3.5}, "queue must be a URL or an outbox"),
    ({"queue": "sqlite:///x.db", "sample": True}, "sample"),
])
def test_wrong_types_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        reconcile(**kwargs)


def test_counts_come_from_public_health(make_client: Callable[..., Client],
                                        sandbox: Any) -> None:
    """The client's counters as health() shows them, by_kind included."""
    client = make_client(**LOSSY)
    run_with_outage(client, sandbox)
    health = client.health().destinations["customerio"]
    assert health.by_kind["dead"] == {"track": 6}
    assert health.to_dict()["counters"]["by_kind"]["dead"] == {"track": 6}
    report = reconcile(client)
    cio = report.destinations["customerio"]
    assert (cio.delivered, cio.dead_lettered, cio.retried) == (
        health.delivered, health.failed, health.retried)
    assert cio.by_kind == health.by_kind
    assert report.sources == ("client",) and report.messages_unmatched == 6


class AsyncFacade:
    """A client whose health() and dead_letters() are coroutines, over a real client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def health(self) -> Any:
        return self.client.health()

    async def dead_letters(self, destination: str | None = None, since: float | None = None,
                           limit: int = 100) -> Any:
        return self.client.dead_letters(destination, since, limit)


def test_areconcile_awaits_an_async_client(make_client: Callable[..., Client],
                                           sandbox: Any) -> None:
    client = make_client(**LOSSY)
    run_with_outage(client, sandbox)
    facade = AsyncFacade(client)
    report = asyncio.run(areconcile(facade, sandbox=sandbox))  # type: ignore[arg-type]
    assert report.messages_unmatched == 6 and report.people_differing == 2
    assert report.destinations["customerio"].dead_lettered == 6
    with pytest.raises(ConfigurationError, match="areconcile"):
        reconcile(facade, sandbox=sandbox)  # type: ignore[arg-type]
