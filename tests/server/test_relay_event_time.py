"""Through the relay, a caller's Idempotency-Key names the event and never sets its time."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from opencdp.server import RelayServer


@pytest.mark.parametrize("key", ["00000000000000000000000000", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"])
def test_an_idempotency_key_does_not_set_customerio_event_time(
    relay: RelayServer, gateway: httpx.Client, sandbox: Any, key: str
) -> None:
    before = int(time.time())
    answer = gateway.post("/v1/persons/track", json={"identifier": "u1", "eventName": "paid"},
                          headers={"Idempotency-Key": key})
    assert answer.status_code == 202, answer.text
    client = relay.relay.client
    assert client is not None and client.flush(10)
    after = int(time.time())
    (cio,) = sandbox.person("customerio", "u1")["events"]
    (cdp,) = sandbox.person("opencdp", "u1")["events"]
    assert cio["id"] == key
    assert cio["timestamp"] not in (0, 281474976710)
    assert before <= cio["timestamp"] <= after
    assert before <= cdp["timestamp"] <= after
    assert client.dead_letters() == []
