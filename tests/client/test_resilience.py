"""Outages, errors and the send-safe rule, against the sandbox's injected faults."""

from __future__ import annotations

from typing import Any

import pytest

from opencdp import ClientClosedError, CustomerIO, TransportError
from opencdp.config import RetryConfig
from support.servers import refused_port
from support.waiting import wait_for


def closed_port_url() -> str:
    port = refused_port()
    return f"http://127.0.0.1:{port}/gateway/data-gateway"


def test_customerio_outage_leaves_opencdp_untouched(make: Any, sandbox: Any) -> None:
    sandbox.set_faults({"customerio": {"down": True, "down_status": 500}})
    client = make()
    for i in range(40):
        client.track(f"user_{i % 4}", "page_viewed", {"n": i})
    assert not client.flush(timeout=1.5), "Customer.io is down, so not everything is done"
    assert sum(len(sandbox.person("opencdp", f"user_{u}")["events"]) for u in range(4)) == 40
    health = client.health().to_dict()
    assert health["destinations"]["opencdp"]["circuit_state"] == "CLOSED"
    assert health["destinations"]["customerio"]["circuit_state"] in ("OPEN", "HALF_OPEN")
    assert health["destinations"]["customerio"]["queue"]["pending"] > 0
    sandbox.set_faults({"customerio": {"down": False}})
    assert client.flush(timeout=15)
    assert sum(len(sandbox.person("customerio", f"user_{u}")["events"]) for u in range(4)) == 40
    assert sandbox.stats()["customerio"]["duplicates"] == 0


def test_errors_and_429s_are_retried_without_duplicates(make: Any, sandbox: Any) -> None:
    sandbox.set_faults({
        "customerio": {"error_rate": 0.3, "statuses": [500, 502, 503, 504],
                       "rate_limit_storm": 0.1, "retry_after": 0.05, "seed": 1},
        "opencdp": {"error_rate": 0.3, "statuses": [503, 521], "seed": 2},
    })
    client = make()
    for i in range(60):
        client.track("retry_user", "item_added", {"i": i})
        if i % 6 == 5:  # several Customer.io batches, so some of them meet a fault
            assert client.flush(timeout=30)
    for service in ("opencdp", "customerio"):
        events = sandbox.person(service, "retry_user")["events"]
        assert sorted(e["data"]["i"] for e in events) == list(range(60)), service
    assert sandbox.stats()["customerio"]["duplicates"] == 0
    health = client.health().to_dict()["destinations"]
    assert health["customerio"]["counters"]["retried"] > 0
    assert health["opencdp"]["counters"]["retried"] > 0


def test_send_is_not_resent_when_it_may_have_arrived(make: Any, sandbox: Any) -> None:
    port_alias = sandbox.opencdp_url.replace("127.0.0.1", "localhost")
    sandbox.set_faults({"opencdp": {"hang_rate": 1.0}})
    client = make(timeout=1.0, fail_on_exception=True, cdp_fallback_endpoints=[port_alias])
    with pytest.raises(TransportError) as info:
        client.send_email(to="ada@example.com", identifiers={"id": "u1"},
                          transactional_message_id="RESET")
    assert info.value.maybe_received is True
    sandbox.set_faults({"opencdp": {"hang_rate": 0.0}})
    assert len(sandbox.sends("opencdp")) == 1, "received once, never sent again"


def test_send_fails_over_when_the_request_never_left(make: Any, sandbox: Any) -> None:
    client = make(cdp_endpoint=closed_port_url(), cdp_fallback_endpoints=[sandbox.opencdp_url])
    answer = client.send_email(to="ada@example.com", identifiers={"id": "u1"},
                               transactional_message_id="RESET")
    assert answer is not None
    assert len(sandbox.sends("opencdp")) == 1


def test_send_refused_is_reported_not_resent(make: Any, logger: Any, sandbox: Any) -> None:
    sandbox.set_faults({"opencdp": {"error_rate": 1.0, "statuses": [502]}})
    client = make(logger=logger, cdp_fallback_endpoints=[
        sandbox.opencdp_url.replace("127.0.0.1", "localhost")])
    assert client.send_push(identifiers={"id": "u1"}, transactional_message_id="P") is None
    assert "Send push error" in logger.text("error")
    assert sandbox.stats()["opencdp"]["requests"] == 1, "a 502 may hide a queued send"


def test_wrong_track_key_is_explained_and_never_raised(
    make: Any, logger: Any, sandbox: Any
) -> None:
    client = make(logger=logger, customer_io=CustomerIO(
        "sandbox-site", "sandbox-app-key", track_url=sandbox.track_url,
        app_url=sandbox.app_url))
    client.identify("u1", {"email": "u1@example.com"})
    assert client.flush(10)
    assert sandbox.person("opencdp", "u1") is not None
    assert "OCDP305" in logger.text("error")
    assert "Track API key" in logger.text("error")
    (letter,) = client.dead_letters("customerio")
    assert letter.status == 401 and letter.message.identifier == "u1"


def test_ping(make: Any) -> None:
    assert make().ping() is True
    assert make(cdp_endpoint=closed_port_url()).ping() is False


def test_close_is_idempotent_and_final(make: Any, sandbox: Any) -> None:
    client = make()
    client.track("u1", "signed_up")
    assert client.close(timeout=5)
    assert client.close(timeout=5)
    assert sandbox.person("opencdp", "u1") is not None
    with pytest.raises(ClientClosedError):
        client.track("u1", "signed_up")


def test_breaker_closes_after_an_outage_without_new_traffic(make: Any, sandbox: Any) -> None:
    sandbox.set_faults({"customerio": {"down": True, "down_status": 500}})
    client = make(retry=RetryConfig(base_delay=0.01, max_delay=0.02, max_attempts=50))
    for i in range(6):
        client.track("idle_user", "page_viewed", {"i": i})
        client.flush(timeout=0.3)
    assert client.health().destinations["customerio"].circuit_state != "CLOSED"
    sandbox.set_faults({"customerio": {"down": False}})
    assert client.flush(timeout=10)
    assert wait_for(lambda: client.health().destinations["customerio"].circuit_state
                    == "CLOSED", 10), "idle probes should close the breaker"


def test_sporadic_429s_delay_messages_but_saturation_pauses_the_lane(make: Any,
                                                                      sandbox: Any) -> None:
    sandbox.set_faults({"customerio": {"rate_limit_storm": 1.0, "retry_after": 3}})
    client = make()
    for i in range(6):
        client.track("busy_user", "page_viewed", {"i": i})
        client.flush(timeout=0.1)
        if i == 1:
            assert client.stats().lanes["customerio"].rate_limit["paused_for"] == 0.0, \
                "two 429s are not saturation"
    assert client.stats().lanes["customerio"].rate_limit["paused_for"] > 1.0, \
        "a run of 429s pauses the whole lane"
    assert client.health().destinations["customerio"].failed == 0, "429s spend no budget"
