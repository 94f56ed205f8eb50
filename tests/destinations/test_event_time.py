"""An event id names an event, never its time: both platforms store the call's time."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from opencdp import Client
from opencdp.destinations import customerio as cio
from opencdp.message import Message, dumps_message, loads_message, parse_ulid
from opencdp.outbox.base import Leased

ZEROS = "00000000000000000000000000"  # an id time of 0 (1970)
HIGHEST = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"  # an id time of 281474976710 s (year 10889)
OLD = "01HZX3Q4T0V5B8K2M7N9P6R1S3"  # a real ULID minted in 2024


def _event(sandbox: Any, service: str, user: str) -> dict[str, Any]:
    person = sandbox.person(service, user)
    assert person is not None
    (event,) = person["events"]
    return dict(event)


@pytest.mark.parametrize("event_id", [ZEROS, HIGHEST, OLD])
def test_an_event_id_does_not_set_the_event_time(make_client: Any, sandbox: Any,
                                                 event_id: str) -> None:
    client: Client = make_client()
    before = int(time.time())
    assert client.track("u1", "purchase", {"n": 1}, event_id=event_id) == event_id
    assert client.flush(10)
    after = int(time.time())
    stored_cio = _event(sandbox, "customerio", "u1")
    stored_cdp = _event(sandbox, "opencdp", "u1")
    assert stored_cio["id"] == event_id
    assert before <= stored_cio["timestamp"] <= after
    assert before <= stored_cdp["timestamp"] <= after
    assert client.dead_letters() == []


def test_a_strict_customerio_takes_the_highest_id_without_a_dead_letter() -> None:
    from opencdp.sandbox import Sandbox
    from opencdp.testing import sandbox_options

    with Sandbox(port=0, strict=True) as sandbox:
        client = Client(**sandbox_options(sandbox))
        try:
            before = int(time.time())
            client.track("u1", "purchase", event_id=HIGHEST)
            client.track_anonymous("a1", "viewed", event_id=HIGHEST[:-1] + "Y")
            assert client.flush(10)
            after = int(time.time())
            assert client.dead_letters() == []
            stored = _event(sandbox, "customerio", "u1")
            assert stored["timestamp"] != 281474976710
            assert before <= stored["timestamp"] <= after
            assert sandbox.stats()["customerio"]["anonymous_events"] == 1
        finally:
            client.close(timeout=5)


def test_an_explicit_timestamp_wins_over_the_event_id(make_client: Any, sandbox: Any) -> None:
    client: Client = make_client()
    client.track("u2", "purchase", timestamp=1_700_000_000, event_id=ZEROS)
    assert client.flush(10)
    assert _event(sandbox, "customerio", "u2")["timestamp"] == 1_700_000_000


def _op(message: Message) -> dict[str, Any]:
    (request,), _ = cio.encode([Leased(message)])
    body = orjson.loads(request.body or b"")
    return dict(body["batch"][0] if "batch" in body else body)


def test_a_queued_message_keeps_its_own_time_and_old_ones_still_decode() -> None:
    carried = Message(parse_ulid(HIGHEST), "track", "u1", "purchase", None, 1_700_000_000, 3)
    assert _op(loads_message(dumps_message(carried)))["timestamp"] == 1_700_000_000
    # A queue written before messages carried their time: an implausible id time is left
    # out, so Customer.io uses the time of receipt; a plausible one is kept.
    for text in (ZEROS, HIGHEST):
        legacy = loads_message(orjson.dumps([text, "track", "u1", "purchase", None, None, 3]))
        assert legacy.ts is None
        assert "timestamp" not in _op(legacy)
        anonymous = legacy._replace(kind="track_anonymous")
        assert "timestamp" not in _op(anonymous)
    minted = loads_message(orjson.dumps([OLD, "track", "u1", "purchase", None, None, 3]))
    assert _op(minted)["timestamp"] == (parse_ulid(OLD) >> 80) // 1000
