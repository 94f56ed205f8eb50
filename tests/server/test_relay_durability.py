"""The relay never answers 2xx for what it did not store, and stores what only one platform
refuses for the other."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from opencdp.message import new_ulid, ulid_str
from support.servers import wait_until
from support.stored import stored

from .conftest import StartRelay
from .support import RELAY_KEY


def _track(http: httpx.Client, seq: int, key: str) -> httpx.Response:
    return http.post("/v1/persons/track", headers={"Idempotency-Key": key},
                     json={"identifier": "r1", "eventName": "relayed", "properties": {"seq": seq}})


@pytest.fixture
def redis_server(redis_url: str) -> Any:
    helper = sys.modules["opencdp_tests_redis_server"]
    server = helper.RestartableRedis().start()
    yield server
    server.close()


@pytest.mark.redis
@pytest.mark.parametrize("spill", [True, False], ids=["spill", "no-spill"])
def test_redis_down_is_stored_locally_or_refused_with_503(start_relay: StartRelay,
                                                          sandbox: Any, redis_server: Any,
                                                          tmp_path: Path, spill: bool) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    spill_path = tmp_path / "spill.db" if spill else blocker / "spill.db"
    relay = start_relay(queue=redis_server.url,
                        client={"spill_path": str(spill_path), "queue_timeout": 0.05})
    keys = [ulid_str(new_ulid()) for _ in range(50)]
    with httpx.Client(base_url=str(relay.urls["gateway"]), trust_env=False, timeout=10.0,
                      headers={"Authorization": RELAY_KEY}) as http:
        redis_server.stop()
        answers = [_track(http, seq, key) for seq, key in enumerate(keys)]
        statuses = Counter(a.status_code for a in answers)
        if spill:
            assert statuses == {202: 50}, "stored in the local spill"
        else:
            assert statuses == {503: 50}, "nothing was stored: never a 2xx"
            assert all(a.headers.get("retry-after") for a in answers)
        redis_server.start()  # back, and empty: no streams, no groups
        if not spill:
            for seq, key in enumerate(keys):  # the SDK's retry, with the same key
                assert _track(http, seq, key).status_code == 202
    for service in ("opencdp", "customerio"):
        wait_until(lambda s=service: len(stored(sandbox, s)) == 50, timeout=30,
                   what=f"50 events in {service}")
    assert max(stored(sandbox, "customerio").values()) == 1


def test_a_customerio_only_limit_is_accepted_and_costs_only_that_copy(
        start_relay: StartRelay, sandbox: Any) -> None:
    relay = start_relay()
    with httpx.Client(base_url=str(relay.urls["gateway"]), trust_env=False, timeout=10.0,
                      headers={"Authorization": RELAY_KEY}) as http:
        answer = http.post("/v1/persons/identify", json={
            "identifier": "big", "properties": {"email": "b@example.com", "bio": "x" * 1200}})
        assert answer.status_code == 202
        refused = http.post("/v1/persons/identify", json={"identifier": "x" * 300})
        assert refused.status_code == 400
    wait_until(lambda: sandbox.person("opencdp", "big") is not None, timeout=10,
               what="OpenCDP stores it")
    client = relay.relay.client
    assert client is not None
    wait_until(lambda: len(client.dead_letters("customerio")) == 1, timeout=10,
               what="the Customer.io copy dead-lettered")
    (letter,) = client.dead_letters("customerio")
    assert letter.reason.startswith("OCDP135")
    assert client.dead_letters("opencdp") == []
