"""``opencdp migrate status`` says no while dead letters wait, yes once they are replayed and
delivered; its exit status gates a CI job (0 ready, 1 not, 2 usage)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opencdp import Client
from opencdp.config import BreakerConfig, RetryConfig
from opencdp.migrate import checkpoint
from opencdp.migrate.status import migration_status, reason_key
from support.waiting import wait_for

LOSSY = {"retry": RetryConfig(base_delay=0.01, max_delay=0.05, max_attempts=1),
         "breaker": BreakerConfig(failure_threshold=1000, reset_timeout=0.2)}


def status(*args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "opencdp", "migrate", "status", "--json", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def queue_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'queue.db'}"


def test_no_while_dead_letters_wait_yes_after_replay(
        make_client: Callable[..., Client], sandbox: Any, queue_url: str) -> None:
    client = make_client(queue=queue_url, **LOSSY)
    for i in range(5):
        client.identify(f"user_{i}", {"plan": "pro"})
    assert client.flush(timeout=10)
    sandbox.set_faults({"customerio": {"down": True, "down_status": 500}})
    for i in range(7):
        client.track(f"user_{i % 5}", "page_viewed", {"n": i})
    assert client.flush(timeout=10)
    sandbox.clear_faults()

    code, found = status("--queue", queue_url, "--sandbox", sandbox.admin_url)
    assert code == 1
    assert found["ready_for_phase_3"] is False
    assert found["phase"] == 1
    cio = found["destinations"]["customerio"]
    assert (cio["delivered"], cio["dead_in_window"], cio["dead_by_reason"]) == (
        5, 7, {"HTTP 500": 7})
    assert found["destinations"]["opencdp"]["delivered"] == 12
    assert "7 Customer.io dead letter(s) for HTTP 500 in the window" in found["reasons"]
    assert "7 message(s) reached one platform only" in found["reasons"]
    assert found["parity"]["compared"] == 5
    assert found["parity"]["percent"] == pytest.approx(0.0)

    replayed = subprocess.run(
        [sys.executable, "-m", "opencdp", "queue", "replay", "--queue", queue_url,
         "--destination", "customerio", "--json"],
        capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(replayed.stdout) == {"replayed": 7}
    client.track("user_0", "nudge", {})  # wakes the lanes to lease the replayed messages
    assert client.flush(timeout=10)

    code, found = status("--queue", queue_url, "--sandbox", sandbox.admin_url)
    assert (code, found["ready_for_phase_3"], found["reasons"]) == (0, True, [])
    assert found["phase"] == 2
    assert found["parity"]["percent"] == pytest.approx(100.0)
    assert found["destinations"]["customerio"]["dead_in_window"] == 0
    assert found["destinations"]["customerio"]["delivered"] == 13


def test_an_incomplete_import_and_old_pending_messages_are_reasons(
        make_client: Callable[..., Client], sandbox: Any, queue_url: str,
        tmp_path: Path) -> None:
    client = make_client(queue=queue_url)
    client.identify("user_1", {"plan": "pro"})
    assert client.flush(timeout=10)
    path = str(tmp_path / "import.ckpt")
    checkpoint.save(path, checkpoint.Checkpoint(sources=["people.ndjson"], settings={},
                                                read=40, queued=40))
    found = migration_status(queue_url, checkpoints=[path])
    assert not found.ready
    assert found.imports == [{"checkpoint": path, "complete": False, "read": 40, "queued": 40,
                              "refused": {}}]
    assert any(r.startswith(f"the import of {path} is not complete (40 queued")
               for r in found.reasons)
    assert found.parity["source"] == "delivery records"

    done = checkpoint.load(path)
    assert done is not None
    done.complete = True
    checkpoint.save(path, done)
    assert migration_status(queue_url, checkpoints=[path]).ready

    sandbox.set_faults({"opencdp": {"down": True, "down_status": 503}})
    client.track("user_1", "waits", {})
    # in flight or waiting for its retry, its age grows past the bound within a moment
    assert wait_for(lambda: any("OpenCDP message(s) pending" in r for r in
                                migration_status(queue_url, max_pending_age=0.2).reasons), 10)
    sandbox.clear_faults()


def test_an_empty_queue_is_not_ready_and_bad_usage_exits_2(queue_url: str,
                                                           tmp_path: Path) -> None:
    Client(cdp_api_key="k", queue=queue_url, cdp_endpoint="http://127.0.0.1:9").close(0)
    found = migration_status(queue_url)
    assert found.reasons == ["nothing has been delivered to OpenCDP through this queue"]
    assert found.phase == 1 and "not on" in found.phase_label

    missing = subprocess.run(
        [sys.executable, "-m", "opencdp", "migrate", "status", "--queue", queue_url,
         "--checkpoint", str(tmp_path / "none.ckpt")],
        capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2 and "no import checkpoint" in missing.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "opencdp", "migrate", "status", "--queue",
         f"sqlite:///{tmp_path / 'absent.db'}"],
        capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2, bad.stderr


@pytest.mark.parametrize(("reason", "code", "key"), [
    ("OCDP305 event too large for Customer.io", None, "OCDP305"),
    ("HTTP 400: bad request", 400, "HTTP 400"),
    ("connection reset: peer", None, "connection reset"),
    ("", None, "unknown"),
])
def test_dead_letters_group_by_code_then_status(reason: str, code: int | None,
                                                key: str) -> None:
    assert reason_key(reason, code) == key


def test_a_held_customerio_copy_is_phase_3_and_its_wait_is_no_reason(
        make_client: Callable[..., Client], sandbox: Any, queue_url: str) -> None:
    client = make_client(queue=queue_url, send_to_customer_io="hold")
    for i in range(30):
        client.track(f"user_{i % 3}", "held_event", {"n": i})
    assert client.flush(timeout=10)
    found = migration_status(queue_url, max_pending_age=0.0)
    assert found.phase == 3 and "held" in found.phase_label
    assert found.hold is not None
    assert (found.hold["state"], found.hold["held"]) == ("held", 30)
    assert found.destinations["opencdp"]["delivered"] == 30
    assert found.destinations["customerio"]["delivered"] == 0
    assert found.reasons == []
    assert found.ready
