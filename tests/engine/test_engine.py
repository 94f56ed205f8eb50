"""The engine end to end through an injected transport: batching, splitting, 207s, retries,
the breaker, poison isolation, per-destination refusals, health and shutdown."""

from __future__ import annotations

import orjson
import pytest

from opencdp.destinations.base import Failure, Request, Response
from opencdp.errors import ValidationError
from opencdp.health import render
from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid, ulid_str


def _ok(request: Request) -> Response:
    return Response(200, b"{}", {})


def test_batches_stay_within_batch_size_and_everything_arrives(engine_client, recorder):
    client = engine_client(batch_size=300)
    for i in range(1000):
        client.track(f"u{i % 7}", "Order Placed", {"n": i})
    assert client.flush(10)
    batches = [r for r in recorder.to("track") if r.path == "/api/v2/batch"]
    assert all(len(r.items) <= 300 for r in batches)
    assert sorted(op["attributes"]["n"] for op in recorder.events()) == list(range(1000))
    assert len(recorder.to("gateway")) == 1000
    assert client.last_flush is not None and client.last_flush.delivered == {
        "opencdp": 1000, "customerio": 1000}


def test_a_message_the_encoder_cannot_take_costs_only_itself(engine_client, recorder):
    client = engine_client(start_worker=False)
    outbox = client.engine.outbox
    for i in range(500):
        client.track("u1", "Viewed", {"n": i})
    # Past the call-time checks on purpose: the lane must still isolate it.
    outbox.put(Message(new_ulid(), "track", "u1", "Bad", {"x": object()}, None,
                       OPENCDP | CUSTOMERIO))
    for i in range(500, 1000):
        client.track("u1", "Viewed", {"n": i})
    client.engine.dispatcher.start()
    assert client.flush(10)
    assert sorted(op["attributes"]["n"] for op in recorder.events()) == list(range(1000))
    letters = client.dead_letters()
    assert {d.destination for d in letters} == {"opencdp", "customerio"}
    assert all("OCDP309" in d.reason for d in letters)
    assert client.health().internal_errors.get("OCDP309") == 2


def test_207_dead_letters_only_the_refused_operations(engine_client, recorder):
    def handler(request: Request) -> Response:
        if request.path == "/api/v2/batch":
            errors = [{"batch_index": 3, "reason": "invalid", "field": "name",
                       "message": "bad name"}]
            return Response(207, orjson.dumps({"errors": errors}), {})
        return _ok(request)

    recorder.handler = handler
    client = engine_client(batch_size=10)
    for i in range(10):
        client.track("u1", "Viewed", {"n": i})
    assert client.flush(10)
    (letter,) = client.dead_letters("customerio")
    assert letter.message.data == {"n": 3}
    assert client.health().destinations["customerio"].delivered == 9


def test_a_whole_batch_400_is_bisected_to_the_bad_message(engine_client, recorder):
    def handler(request: Request) -> Response:
        if request.path == "/api/v2/batch" and b'"n":5' in (request.body or b""):
            return Response(400, b'{"meta":{"error":"bad"}}', {})
        return _ok(request)

    recorder.handler = handler
    client = engine_client(batch_size=16)
    for i in range(16):
        client.track("u1", "Viewed", {"n": i})
    assert client.flush(10)
    (letter,) = client.dead_letters("customerio")
    assert letter.message.data == {"n": 5}
    assert client.health().destinations["customerio"].delivered == 15


def test_5xx_are_retried_until_delivered_and_nothing_twice(engine_client, recorder):
    answers = iter([500, 502, 503] * 3)

    def handler(request: Request) -> Response:
        status = next(answers, 200) if request.service == "track" else 200
        return Response(status, b"{}", {})

    recorder.handler = handler
    client = engine_client()
    for i in range(50):
        client.track("u1", "Viewed", {"n": i})
    assert client.flush(10)
    assert sorted(op["attributes"]["n"] for op in recorder.events()
                  if op.get("attributes")) [-1] == 49
    delivered = client.health().destinations["customerio"]
    assert delivered.delivered == 50 and delivered.failed == 0


def test_the_breaker_opens_after_consecutive_failures(engine_client, recorder):
    recorder.handler = lambda r: (Failure("ClientConnectorError: refused", "connect")
                                  if r.service == "track" else _ok(r))
    client = engine_client(batch_size=1, max_concurrent_requests=1)
    for i in range(20):
        client.track("u1", "Viewed", {"n": i})
    client.flush(1)
    cio = client.stats().lanes["customerio"]
    assert cio.circuit_state in ("OPEN", "HALF_OPEN")
    assert client.health().destinations["opencdp"].delivered == 20


def test_a_customerio_only_limit_costs_only_the_customerio_copy(engine_client, recorder):
    client = engine_client()
    client.identify("u1", {"email": "a@example.com", "bio": "x" * 1200})
    assert client.flush(10)
    (letter,) = client.dead_letters()
    assert letter.destination == "customerio"
    assert [r.path for r in recorder.to("gateway")] == ["/v1/persons/identify"]
    body = orjson.loads(recorder.to("gateway")[0].body or b"{}")
    assert len(body["properties"]["bio"]) == 1200


def test_refused_credentials_make_the_destination_failing(engine_client, recorder):
    recorder.handler = lambda r: (Response(401, b"{}", {}) if r.service == "track"
                                  else _ok(r))
    client = engine_client(batch_size=1)
    for i in range(5):
        client.track("u1", "Viewed", {"n": i})
    assert client.flush(10)
    health = client.health()
    assert health.destinations["customerio"].failing
    assert health.destinations["customerio"].state == "failing"
    assert health.status != "ok"
    assert render(health)[0] == 503
    assert client.last_flush is not None and client.last_flush.dead_lettered["customerio"] == 5


def test_a_redirect_from_the_track_host_is_explained_as_a_region(engine_client, recorder):
    recorder.handler = lambda r: (
        Response(307, b"", {"location": "https://track-eu.customer.io/api/v2/batch"})
        if r.service == "track" else _ok(r))
    client = engine_client()
    client.track("u1", "Viewed")
    assert client.flush(10)
    (letter,) = client.dead_letters("customerio")
    assert "OCDP334" in letter.reason


def test_gateway_failover_and_the_send_safe_rule(engine_client, recorder):
    seen: list[str] = []

    def handler(request: Request) -> Response | Failure:
        if request.service == "gateway":
            seen.append(request.base)
        if request.base == "http://127.0.0.1:9/gateway/data-gateway":
            if request.send_safe:
                return Failure("ServerTimeoutError: no answer in time", "timeout")
            return Failure("ClientConnectorError: refused", "connect")
        return _ok(request)

    recorder.handler = handler
    client = engine_client(cdp_fallback_endpoints=["http://127.0.0.2:8/gateway/data-gateway"])
    client.track("u1", "Viewed")
    assert client.flush(10)
    assert seen == ["http://127.0.0.1:9/gateway/data-gateway",
                    "http://127.0.0.2:8/gateway/data-gateway"]
    seen.clear()
    assert client.send_push(identifiers={"id": "u1"}, transactional_message_id="7") is None
    assert seen == ["http://127.0.0.1:9/gateway/data-gateway"]  # may have arrived: not resent


def test_on_error_hears_every_dead_letter_and_cannot_break_delivery(engine_client, recorder):
    heard: list[tuple[str, str]] = []

    def on_error(message: Message, destination: str, reason: str) -> None:
        heard.append((destination, reason))
        raise RuntimeError("callback bug")

    recorder.handler = lambda r: (Response(422, b"{}", {}) if r.service == "gateway"
                                  else _ok(r))
    client = engine_client(on_error=on_error)
    for _ in range(3):
        client.track("u1", "Viewed")
    assert client.flush(10)
    client.close(5)
    assert [d for d, _ in heard] == ["opencdp"] * 3
    assert client.health().internal_errors.get("OCDP311") == 3


def test_send_false_checks_and_counts_but_delivers_nothing(engine_client, recorder):
    client = engine_client(send=False)
    event_id = client.track("u1", "Viewed", {"n": 1})
    assert len(event_id) == 26
    assert client.send_push(identifiers={"id": "u1"}, transactional_message_id="7") == {
        "sent": False}
    with pytest.raises(ValidationError):
        client.track("u1", "Viewed", {"n": float("nan")})  # still checked
    assert client.flush(1)
    assert recorder.requests == []
    assert client.health().not_sent == 2


@pytest.mark.parametrize("blocking", [False, True])
def test_repeated_state_changes_all_arrive(engine_client, recorder, blocking):
    client = engine_client(delivery="blocking" if blocking else "background")
    for plan in ("free", "pro", "free"):
        client.identify("u1", {"email": "a@example.com", "plan": plan})
    client.register_device("u1", "d1", "ios", apn_token="tok")
    client.remove_device("u1", "tok")
    client.register_device("u1", "d1", "ios", apn_token="tok")
    assert client.flush(10)
    actions = [(op["action"], (op.get("attributes") or {}).get("plan"))
               for op in recorder.events()]
    assert actions == [("identify", "free"), ("identify", "pro"), ("identify", "free"),
                       ("add_device", None), ("delete_device", None), ("add_device", None)]


def test_a_backfilled_event_id_keeps_its_retry_budget(engine_client, recorder):
    year_ago_ms = 1_700_000_000_000
    answers = iter([429, 500])
    recorder.handler = lambda r: Response(next(answers, 200), b"{}", {"retry-after": "0"})
    client = engine_client(batch_size=1)
    event_id = ulid_str((year_ago_ms << 80) | 12345)
    client.track("u1", "Imported", event_id=event_id)
    assert client.flush(10)
    assert client.dead_letters() == []
    assert [op["id"] for op in recorder.events()] == [event_id]


def test_a_retried_call_with_the_same_event_id_is_dropped_once_queued(engine_client, recorder):
    client = engine_client()
    event_id = ulid_str(new_ulid())
    assert client.track("u1", "Viewed", event_id=event_id) == event_id
    assert client.track("u1", "Viewed", event_id=event_id) == event_id
    assert client.flush(10)
    assert len(recorder.events()) == 1
    assert client.health().idempotency_suppressed == 1


def test_close_drains_what_is_queued(engine_client, recorder):
    client = engine_client()
    for i in range(200):
        client.track("u1", "Viewed", {"n": i})
    assert client.close(10)
    assert len(recorder.events()) == 200


def test_keys_echoed_by_an_upstream_never_reach_letters_logs_or_errors(engine_client, recorder,
                                                                      caplog):
    from opencdp.errors import SendError

    def echo(request: Request) -> Response:
        headers = orjson.dumps(request.headers)
        return Response(400, b'{"echo":' + headers + b"}", {})

    recorder.handler = echo
    client = engine_client(fail_on_exception=True)
    client.track("u1", "Viewed")
    assert client.flush(10)
    with pytest.raises(SendError) as info:
        client.send_push(identifiers={"id": "u1"}, transactional_message_id="7")
    secrets = ["cdp-key-for-tests", "track-key"]
    texts = [d.reason for d in client.dead_letters()] + [str(info.value), caplog.text,
                                                         repr(client.health().to_dict())]
    from opencdp.destinations.customerio import basic_auth

    secrets.append(basic_auth("site", "track-key"))
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_the_dead_letter_line_says_how_many_share_its_reason(engine_client, recorder, caplog):
    """Dead letters with one reason are logged once a minute; the line counts them all so far,
    so "dead-lettered 4" never hides the other six."""
    import logging

    def handler(request: Request) -> Response:
        if request.path == "/api/v2/batch":
            return Response(400, b'{"meta": {"error": "bad"}}', {})
        return _ok(request)

    recorder.handler = handler
    client = engine_client(batch_size=1)
    with caplog.at_level(logging.WARNING, logger="opencdp"):
        for i in range(4):
            client.track("u1", "viewed", {"n": i})
        assert client.flush(10)
        for i in range(4, 10):
            client.track("u1", "viewed", {"n": i})
        assert client.flush(10)
        assert len(client.dead_letters("customerio")) == 10
        assert client.health().destinations["customerio"].failed == 10
        client.close(5)
    lines = [r.getMessage() for r in caplog.records if "OCDP303" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "dead-lettered 1 message(s)" in lines[0]
    assert "dead-lettered 10 message(s) in all" in lines[1]
