"""The client over each outbox: same stored result; storage failures are named, not fatal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opencdp import OutboxError
from support.servers import refused_port


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'outbox.db'}"
    base = request.getfixturevalue("redis_url").rstrip("/")
    return f"{base}?prefix=t{abs(hash(str(tmp_path))) % 10**9}"


def test_every_queue_gives_the_same_stored_result(make: Any, sandbox: Any,
                                                  queue_url: str) -> None:
    client = make(queue=queue_url)
    client.identify("q1", {"email": "q1@example.com"})
    for i in range(25):
        client.track("q1", "item_added", {"i": i})
    client.register_device("q1", "dev-1", "android", fcm_token="tok-1")
    assert client.flush(timeout=20)
    for service in ("opencdp", "customerio"):
        person = sandbox.person(service, "q1")
        assert sorted(e["data"]["i"] for e in person["events"]) == list(range(25))
        assert len(person["devices"]) == 1
    stats = client.health().to_dict()["destinations"]
    assert stats["customerio"]["queue"]["pending"] == 0


def test_an_unreachable_redis_is_a_named_error_at_construction(make: Any) -> None:
    port = refused_port()
    with pytest.raises(OutboxError, match=r"Connection refused|connecting"):
        make(queue=f"redis://127.0.0.1:{port}/0?timeout=0.2")


def test_a_failing_outbox_spills_and_only_a_failing_spill_is_logged(
        make: Any, logger: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    spilled = make(queue=f"sqlite:///{tmp_path / 's.db'}", spill_path=str(tmp_path / "sp.db"),
                   logger=logger)
    spilled.client.engine.outbox.primary.close()  # storage gone from under the client
    spilled.track("u1", "signed_up")  # durable in the local spill: returns normally
    assert spilled.client.health().intake_failures == 0
    assert "could not queue" not in logger.text()
    quiet = make(queue=f"sqlite:///{tmp_path / 'a.db'}", logger=logger,
                 spill_path=str(blocker / "spill.db"))
    quiet.client.engine.outbox.close()
    quiet.track("u1", "signed_up")
    assert "OCDP307 could not queue" in logger.text("warn")
    assert quiet.client.health().intake_failures == 1
    loud = make(queue=f"sqlite:///{tmp_path / 'b.db'}", fail_on_exception=True,
                spill_path=str(blocker / "spill2.db"))
    loud.client.engine.outbox.close()
    with pytest.raises(OutboxError):
        loud.track("u1", "signed_up")
