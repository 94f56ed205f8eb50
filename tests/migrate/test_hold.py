"""Hold then rollback: phase 3 with a way back, on real SQLite and a real Redis, against the
sandbox over loopback HTTP. ``migrate rollback`` and ``migrate finish`` run as the user runs
them, as subprocesses; every count is exact on both platforms."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from health.support import client_options
from opencdp import Client, ConfigurationError
from opencdp.clock import ManualClock, use
from opencdp.health import render
from opencdp.outbox.command import open_for_inspection
from support.stored import stored
from support.waiting import wait_for

CALLS = 1000
USER = "u-hold"

pytestmark = pytest.mark.timeout(300)


class Lines:
    """A logger that keeps what it is told (the client's ``logger=`` option)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        self.lines.append(msg)

    def warning(self, msg: str) -> None:
        self.lines.append(msg)

    def error(self, msg: str) -> None:
        self.lines.append(msg)

    def having(self, code: str) -> list[str]:
        return [line for line in self.lines if code in line]


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    url: str = request.getfixturevalue("redis_url")
    return f"{url}?prefix=hold{secrets.token_hex(5)}"


def _env(sandbox: Any, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENCDP_", "CUSTOMERIO_", "CDP_"))}
    env.update({
        "CDP_API_KEY": "cdp-test-key",
        "OPENCDP_ENDPOINT": sandbox.opencdp_url,
        "CUSTOMERIO_SITE_ID": "sandbox-site",
        "CUSTOMERIO_TRACK_API_KEY": "sandbox-track-key",
        "CUSTOMERIO_TRACK_URL": sandbox.track_url,
    })
    env.update(extra)
    return env


def _cli(sandbox: Any, *args: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opencdp", "migrate", *args],
                          env=env if env is not None else _env(sandbox), capture_output=True,
                          text=True, timeout=120, check=False)


def _client(sandbox: Any, queue: str, **extra: Any) -> Client:
    return Client(**client_options(sandbox, **{"send_to_customer_io": "hold", "queue": queue,
                                               "silence": {"OCDP115"}, **extra}))


def _order(sandbox: Any) -> list[int]:
    person = sandbox.person("customerio", USER)
    return [] if person is None else [e["data"]["seq"] for e in person["events"]]


def _track(client: Client, seqs: range) -> None:
    for seq in seqs:
        client.track(USER, "held_event", {"seq": seq})


def test_a_thousand_calls_held_then_rolled_back_in_order_with_no_gap(
        sandbox: Any, queue_url: str) -> None:
    log = Lines()
    client = _client(sandbox, queue_url, logger=log)
    try:
        started = time.time()
        _track(client, range(CALLS))
        assert client.flush(60), "a held destination must not hold up flush()"
        made = time.time() - started

        assert stored(sandbox, "opencdp") == Counter(range(CALLS))
        assert sandbox.stats()["customerio"]["events"] == 0
        assert _order(sandbox) == []
        health = client.health()
        cio = health.destinations["customerio"]
        assert (cio.state, cio.held, cio.held_count) == ("held", True, CALLS)
        assert cio.oldest_pending_age is not None
        assert 0.0 <= cio.oldest_pending_age <= made + (time.time() - started) + 1.0
        assert cio.stalled is None and cio.healthy
        assert health.status == "ok"
        assert render(health)[0] == 200 and render(health, "customerio")[0] == 200
        held = render(health, "customerio")[1]["customerio"]
        assert held["state"] == "held" and held["held"]["count"] == CALLS
        assert len(log.having("OCDP365")) == 1

        result = _cli(sandbox, "rollback", "--queue", queue_url, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert (report["delivered"], report["dead_lettered"], report["released"]) == (
            CALLS, 0, True)
        assert report["held_before"] == CALLS
        assert _order(sandbox) == list(range(CALLS))
        assert sandbox.stats()["customerio"]["duplicates"] == 0

        assert wait_for(lambda: client.health().destinations["customerio"].state == "ok", 10)
        assert len(log.having("OCDP367")) == 1
        _track(client, range(CALLS, CALLS + 200))
        assert client.flush(60)
        seqs = _order(sandbox)
        assert Counter(seqs) == Counter(range(CALLS + 200)), "a gap or a duplicate"
        assert seqs[:CALLS] == list(range(CALLS))
        assert stored(sandbox, "opencdp") == Counter(range(CALLS + 200))
        assert sandbox.stats()["customerio"]["duplicates"] == 0
        cio = client.health().destinations["customerio"]
        assert (cio.state, cio.held_count, cio.pending) == ("ok", 0, 0)
    finally:
        client.close(timeout=5)

    again = _cli(sandbox, "rollback", "--queue", queue_url)
    assert again.returncode == 1 and "NothingHeldError" in again.stderr, again.stderr


def test_finish_purges_the_held_copies_and_ends_the_hold(sandbox: Any, queue_url: str) -> None:
    log = Lines()
    client = _client(sandbox, queue_url, logger=log)
    try:
        _track(client, range(300))
        assert client.flush(30)
        assert client.health().destinations["customerio"].held_count == 300

        result = _cli(sandbox, "finish", "--queue", queue_url, "--yes", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"purged": 300, "already_finished": False,
                                             "queue": queue_url}
        assert wait_for(lambda: client.health().destinations["customerio"].state
                        == "disabled", 10)
        _track(client, range(300, 350))
        assert client.flush(30)
        assert wait_for(lambda: client.health().destinations["customerio"].held_purged == 50, 10)
        cio = client.health().destinations["customerio"]
        assert (cio.state, cio.held, cio.pending) == ("disabled", False, 0)
        assert client.health().status == "ok"
        assert stored(sandbox, "opencdp") == Counter(range(350))
        assert sandbox.stats()["customerio"]["events"] == 0
        assert log.having("OCDP368")
    finally:
        client.close(timeout=5)

    rollback = _cli(sandbox, "rollback", "--queue", queue_url)
    assert rollback.returncode == 1 and "HoldFinishedError" in rollback.stderr
    twice = _cli(sandbox, "finish", "--queue", queue_url, "--yes", "--json")
    assert twice.returncode == 0 and json.loads(twice.stdout)["already_finished"] is True
    assert sandbox.stats()["customerio"]["events"] == 0


def test_retention_purges_exactly_the_copies_older_than_it(sandbox: Any, queue_url: str
                                                            ) -> None:
    log = Lines()
    manual = ManualClock()
    retention = 3600.0
    with use(manual):
        client = _client(sandbox, queue_url, logger=log, hold_retention=retention)
        try:
            _track(client, range(100))
            assert client.flush(30)
            # Redis stamps entries with its own clock: real intervals either side of the
            # cut, wider than the second housekeeping may take to purge after the step.
            time.sleep(2.5)
            middle = manual.time()
            time.sleep(2.5)
            _track(client, range(100, 150))
            assert client.flush(30)
            assert client.health().destinations["customerio"].held_count == 150
            manual.advance(retention - 1.0 - (manual.time() - middle))
            assert wait_for(
                lambda: client.health().destinations["customerio"].held_purged >= 100, 15)
            time.sleep(1.2)  # one more housekeeping pass: nothing else goes
            cio = client.health().destinations["customerio"]
            assert (cio.state, cio.held_purged, cio.held_count) == ("held", 100, 50)
            purged = log.having("OCDP366")
            assert len(purged) == 1 and "purged 100 held customerio" in purged[0]
        finally:
            client.close(timeout=5)
    result = _cli(sandbox, "rollback", "--queue", queue_url, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["delivered"] == 50
    assert _order(sandbox) == list(range(100, 150))


_HOLDER = textwrap.dedent("""
    import sys, time
    from opencdp import Client
    from opencdp.config import CustomerIO
    opencdp_url, track_url, queue = sys.argv[1:4]
    client = Client(cdp_api_key="cdp-test-key", cdp_endpoint=opencdp_url,
                    cdp_fallback_endpoints=[], register_atexit=False, silence={"OCDP115"},
                    customer_io=CustomerIO("sandbox-site", "sandbox-track-key",
                                           track_url=track_url),
                    send_to_customer_io="hold", queue=queue)
    for seq in range(500):
        client.track("u-hold", "held_event", {"seq": seq})
    client.flush(30)
    print("ready", flush=True)
    time.sleep(120)
""")


def test_a_held_client_killed_and_restarted_keeps_every_held_copy(
        sandbox: Any, queue_url: str, tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, sandbox.opencdp_url,
                             sandbox.track_url, queue_url], stdout=subprocess.PIPE, text=True,
                            env=_env(sandbox), cwd=tmp_path)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert stored(sandbox, "opencdp") == Counter(range(500))

    client = _client(sandbox, queue_url)
    try:
        cio = client.health().destinations["customerio"]
        assert (cio.state, cio.held_count) == ("held", 500)
        time.sleep(1.5)  # housekeeping runs; the restarted client still sends nothing
        assert sandbox.stats()["customerio"]["events"] == 0
        result = _cli(sandbox, "rollback", "--queue", queue_url, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["delivered"] == 500
        assert _order(sandbox) == list(range(500))
        assert wait_for(lambda: client.health().destinations["customerio"].state == "ok", 10)
    finally:
        client.close(timeout=5)


def test_a_blocking_call_does_not_wait_for_a_held_copy(sandbox: Any, tmp_path: Path) -> None:
    client = _client(sandbox, f"sqlite:///{tmp_path / 'q.db'}", delivery="blocking",
                     blocking_timeout=5.0, fail_on_exception=True)
    try:
        started = time.monotonic()
        client.track(USER, "held_event", {"seq": 0})
        assert time.monotonic() - started < 3.0
        assert stored(sandbox, "opencdp") == Counter([0])
        assert client.health().destinations["customerio"].held_count == 1
    finally:
        client.close(timeout=5)


def test_the_held_gauge_counts_the_held_copies(sandbox: Any, tmp_path: Path) -> None:
    from opencdp.metrics import OpenCDPCollector

    client = _client(sandbox, f"sqlite:///{tmp_path / 'q.db'}")
    try:
        _track(client, range(25))
        assert client.flush(30)
        samples = {(s.name, s.labels.get("destination")): s.value
                   for family in OpenCDPCollector(client).collect() for s in family.samples}
        assert samples[("opencdp_queue_held", "customerio")] == 25
        assert samples[("opencdp_queue_held", "opencdp")] == 0
    finally:
        client.close(timeout=5)


# --- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("queue", ["memory", "memory?spill=/tmp/x.db", "Memory://"])
def test_a_memory_queue_with_hold_is_refused(sandbox: Any, queue: str) -> None:
    with pytest.raises(ConfigurationError, match="needs a durable queue") as info:
        _client(sandbox, queue)
    assert info.value.option == "send_to_customer_io"


@pytest.mark.parametrize(("option", "value", "says"), [
    ("hold_retention", "14d", "hold_retention must be a number of seconds"),
    ("hold_retention", 0, "hold_retention must be a finite number of seconds > 0, got 0"),
    ("hold_retention", -5.0, "> 0"),
    ("hold_retention", True, "got bool True"),
    ("hold_retention", float("inf"), "finite"),
    ("send_to_customer_io", "Hold", "or 'hold'"),
    ("send_to_customer_io", "yes", "must be True or False, got the string 'yes'"),
    ("send_to_customer_io", 1, "must be True or False"),
])
def test_wrong_option_types_are_refused_by_name(sandbox: Any, tmp_path: Path, option: str,
                                                value: Any, says: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        _client(sandbox, f"sqlite:///{tmp_path / 'q.db'}", **{option: value})
    assert info.value.option == option
    assert says in str(info.value)


def test_hold_needs_customer_io_and_reads_from_the_environment(tmp_path: Path) -> None:
    from opencdp.config import ClientConfig

    with pytest.raises(ConfigurationError, match="'hold' needs customer_io") as info:
        ClientConfig(cdp_api_key="key-1234", send_to_customer_io="hold",
                     queue=f"sqlite:///{tmp_path / 'q.db'}")
    assert info.value.option == "send_to_customer_io"
    config = ClientConfig.from_env({
        "CDP_API_KEY": "key-1234", "CUSTOMERIO_SITE_ID": "site",
        "CUSTOMERIO_TRACK_API_KEY": "track-1234", "OPENCDP_SEND_TO_CUSTOMER_IO": "hold",
        "OPENCDP_QUEUE_URL": f"sqlite:///{tmp_path / 'q.db'}"})
    assert config.send_to_customer_io == "hold" and config.customerio_held
    assert config.hold_retention == 14 * 86400.0


def test_the_commands_refuse_bad_states_and_queues_by_name(sandbox: Any, tmp_path: Path
                                                           ) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    normal = Client(**client_options(sandbox, queue=url, silence={"OCDP115"}))
    normal.close(timeout=5)  # a queue file that was never held

    nothing = _cli(sandbox, "rollback", "--queue", url)
    assert nothing.returncode == 1 and "NothingHeldError" in nothing.stderr
    assert "OCDP369" in nothing.stderr
    finish = _cli(sandbox, "finish", "--queue", url, "--yes")
    assert finish.returncode == 1 and "NothingHeldError" in finish.stderr

    for args in (["finish", "--queue", "memory", "--yes"], ["rollback", "--queue", "memory"],
                 ["rollback", "--queue", "postgres://db/x"],
                 ["finish", "--queue", f"sqlite:///{tmp_path / 'missing.db'}", "--yes"]):
        result = _cli(sandbox, *args)
        assert result.returncode == 2, (args, result.stderr)
    memory = _cli(sandbox, "finish", "--queue", "memory", "--yes")
    assert "memory queue" in memory.stderr

    no_cio = {k: v for k, v in _env(sandbox).items() if not k.startswith("CUSTOMERIO_")}
    result = _cli(sandbox, "rollback", "--queue", url, env=no_cio)
    assert result.returncode == 2 and "CUSTOMERIO_SITE_ID" in result.stderr
    box = open_for_inspection(url)
    try:
        assert box.hold_mark("customerio") is None  # nothing was changed by the refusals
    finally:
        box.close()
