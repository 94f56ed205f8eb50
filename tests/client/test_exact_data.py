"""What reaches each platform is exactly what the caller meant: state changes, dual-write
configuration, and old event ids, through the sandbox on both facades."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from opencdp import Client, CustomerIO
from opencdp.config import ClientConfig
from opencdp.message import ulid_str


def test_repeated_state_changes_end_on_the_last_one(make: Any, sandbox: Any) -> None:
    client = make()
    for plan in ("free", "pro", "free"):
        client.identify("u1", {"email": "u1@example.com", "plan": plan})
    client.register_device("u1", "phone", "ios", apn_token="apns-token-1")
    client.remove_device("u1", "apns-token-1")
    client.register_device("u1", "phone", "ios", apn_token="apns-token-1")
    assert client.flush(timeout=10)
    for service in ("opencdp", "customerio"):
        person = sandbox.person(service, "u1")
        assert person is not None and person["attributes"]["plan"] == "free", service
    devices = sandbox.person("customerio", "u1")["devices"]
    assert [d.get("token") or d.get("id") for d in devices] == ["apns-token-1"]


def test_customer_io_given_means_dual_write_and_off_is_said(sandbox: Any, caplog: Any) -> None:
    cio = CustomerIO("sandbox-site", "sandbox-track-key", track_url=sandbox.track_url)
    config = ClientConfig.from_env({"CDP_API_KEY": "cdp-test-key"}, customer_io=cio,
                                   cdp_endpoint=sandbox.opencdp_url, register_atexit=False)
    with Client(config) as client:
        client.track("u2", "signed_up")
        assert client.flush(timeout=10)
        assert sandbox.person("customerio", "u2") is not None
    caplog.set_level(logging.WARNING, "opencdp")
    with Client(cdp_api_key="cdp-test-key", customer_io=cio, send_to_customer_io=False,
                cdp_endpoint=sandbox.opencdp_url, register_atexit=False) as off:
        off.track("u3", "signed_up")
        assert off.flush(timeout=10)
        health = off.health()
        assert health.destinations["customerio"].state == "disabled"
        assert health.status == "ok"
    assert "OCDP330" in caplog.text
    assert sandbox.person("customerio", "u3") is None


@pytest.mark.parametrize("queue", ["memory", "sqlite"])
def test_backfilled_events_with_year_old_ids_are_not_lost_to_429s(make: Any, sandbox: Any,
                                                                    tmp_path: Any,
                                                                    queue: str) -> None:
    sandbox.set_faults({"customerio": {"rate_limit_storm": 0.6, "retry_after": 0, "seed": 5}})
    url = queue if queue == "memory" else f"sqlite:///{tmp_path / 'q.db'}"
    client = make(queue=url, batch_size=5)
    year_ago_ms = 1_733_000_000_000
    ids = [ulid_str(((year_ago_ms + i) << 80) | 7) for i in range(40)]
    for seq, event_id in enumerate(ids):
        client.track("backfill", "imported", {"seq": seq}, event_id=event_id)
    assert client.flush(timeout=60)
    assert client.dead_letters() == []
    events = sandbox.person("customerio", "backfill")["events"]
    assert sorted(e["id"] for e in events) == sorted(ids)
