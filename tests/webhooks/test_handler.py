"""The handler without HTTP: receiving, replay protection, built-ins, user handlers, errors."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from opencdp.errors import ConfigurationError, ValidationError
from opencdp.webhooks import (
    MemoryReplayStore,
    ReplayStore,
    WebhookEvent,
    WebhookHandler,
    parse_event,
)

from .support import KEY, RecordingClient, payload, signed


def _event(metric: str = "bounced", object_type: str = "email", **kw: Any) -> WebhookEvent:
    return parse_event(payload(metric, object_type, **kw))


# -- receive ----------------------------------------------------------------------------------


def test_receive_accepts_a_signed_event_without_running_handlers() -> None:
    client = RecordingClient()
    handler = WebhookHandler(KEY, client=client)
    body = payload()
    response = handler.receive(signed(body), body)
    assert response.status == 200
    assert response.payload == {"status": "accepted", "event_id": "01E4C4CT6YDC7Y5M7FE1GWWPQJ"}
    assert response.event is not None and response.event.name == "email_bounced"
    assert client.calls == []
    assert handler.stats() == {"accepted": 1}


def test_header_names_are_case_insensitive_and_pairs_work() -> None:
    handler = WebhookHandler(KEY)
    body = payload()
    headers = {k.upper(): v for k, v in signed(body).items()}
    assert handler.receive(headers, body).status == 200
    body = payload(event_id="other")
    assert handler.receive(list(signed(body).items()), body).status == 200


def test_replays_are_refused_even_when_freshly_signed() -> None:
    handler = WebhookHandler(KEY)
    body = payload()
    assert handler.receive(signed(body), body).payload["status"] == "accepted"
    again = handler.receive(signed(body), body)
    assert (again.status, again.payload["status"], again.event) == (200, "duplicate", None)
    other_body_same_id = payload("delivered")
    assert handler.receive(signed(other_body_same_id), other_body_same_id).payload["status"] == (
        "duplicate"
    )
    assert handler.stats() == {"accepted": 1, "duplicate": 2}


def test_rejections_carry_status_and_reason() -> None:
    handler = WebhookHandler(KEY, max_body_bytes=64)
    body = payload()
    assert handler.receive(signed(body), body).status == 413
    handler = WebhookHandler(KEY)
    bad = handler.receive({"x-cio-timestamp": "1"}, body)
    assert (bad.status, bad.payload) == (
        401,
        {"error": "invalid_signature", "reason": "missing_signature"},
    )
    junk = b"{]"
    refused = handler.receive(signed(junk), junk)
    assert refused.status == 400
    assert refused.payload["field"] == "body"
    assert handler.stats() == {"rejected_missing_signature": 1, "rejected_payload": 1}


def test_a_failing_replay_store_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def add(self, key: str, ttl: float) -> bool:
            raise ConnectionError("store down")

    handler = WebhookHandler(KEY, replay_store=Broken())
    body = payload()
    with caplog.at_level(logging.ERROR, logger="opencdp.webhooks"):
        assert handler.receive(signed(body), body).payload["status"] == "accepted"
    assert "replay store failed" in caplog.text


def test_injected_clock_drives_the_window() -> None:
    handler = WebhookHandler(KEY, clock=lambda: 1_000_000.0, tolerance=60)
    body = payload()
    assert handler.receive(signed(body, ts=1_000_000 - 60), body).status == 200
    late = handler.receive(signed(body, ts=1_000_000 - 61), body)
    assert late.payload == {"error": "invalid_signature", "reason": "stale_timestamp"}


# -- built-ins --------------------------------------------------------------------------------


def test_bounce_marks_then_suppresses() -> None:
    client = RecordingClient()
    WebhookHandler(KEY, client=client).dispatch(_event("bounced"))
    assert client.calls == [
        ("identify", "42", {"email_bounced": True, "email_bounced_at": 1613063089}),
        ("suppress", "42"),
    ]


def test_spam_complaint_marks_then_suppresses() -> None:
    client = RecordingClient()
    WebhookHandler(KEY, client=client).dispatch(_event("spammed"))
    assert client.calls == [
        ("identify", "42", {"email_spam_complaint": True, "email_spam_complaint_at": 1613063089}),
        ("suppress", "42"),
    ]


@pytest.mark.parametrize(
    ("switch", "metric", "expected"),
    [
        ("suppress_on_bounce", "bounced", ["identify"]),
        ("mark_on_bounce", "bounced", ["suppress"]),
        ("suppress_on_spam", "spammed", ["identify"]),
        ("mark_on_spam", "spammed", ["suppress"]),
        ("suppress_on_spam", "bounced", ["identify", "suppress"]),
        ("mark_on_bounce", "spammed", ["identify", "suppress"]),
    ],
)
def test_each_builtin_switches_off_alone(switch: str, metric: str, expected: list[str]) -> None:
    client = RecordingClient()
    options: dict[str, Any] = {switch: False}
    WebhookHandler(KEY, client=client, **options).dispatch(_event(metric))
    assert [call[0] for call in client.calls] == expected


@pytest.mark.parametrize(
    ("metric", "object_type"),
    [("bounced", "sms"), ("bounced", "push"), ("delivered", "email"), ("unsubscribed", "email")],
)
def test_builtins_only_act_on_email_bounces_and_complaints(metric: str, object_type: str) -> None:
    client = RecordingClient()
    WebhookHandler(KEY, client=client).dispatch(_event(metric, object_type))
    assert client.calls == []


def test_event_without_person_id_is_skipped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    client = RecordingClient()
    handler = WebhookHandler(KEY, client=client)
    with caplog.at_level(logging.WARNING, logger="opencdp.webhooks"):
        handler.dispatch(_event(person=None))
    assert client.calls == []
    assert handler.stats()["skipped_no_person"] == 1
    assert "names no person id" in caplog.text


def test_resolve_person_serves_email_only_workspaces() -> None:
    client = RecordingClient()
    handler = WebhookHandler(KEY, client=client, resolve_person=lambda e: e.email)
    handler.dispatch(_event(person=None))
    assert [c[1] for c in client.calls] == ["ada@example.com", "ada@example.com"]


def test_alert_hook_gets_matching_events() -> None:
    seen: list[str] = []
    handler = WebhookHandler(KEY, alert=lambda e: seen.append(e.name))
    for metric in ("bounced", "spammed", "delivered"):
        handler.dispatch(_event(metric))
    assert seen == ["email_bounced", "email_spammed"]
    custom = WebhookHandler(KEY, alert=lambda e: seen.append(e.name), alert_on={"sms_failed"})
    custom.dispatch(_event("failed", "sms"))
    custom.dispatch(_event("bounced"))
    assert seen[2:] == ["sms_failed"]


# -- user handlers ----------------------------------------------------------------------------


def test_handlers_match_by_channel_metric_and_wildcards_in_order() -> None:
    calls: list[str] = []
    client = RecordingClient()
    handler = WebhookHandler(KEY, client=client, alert=lambda e: calls.append("alert"))
    handler.on("email", "bounced")(lambda e: calls.append("email bounced"))
    handler.on("bounced")(lambda e: calls.append("any bounced"))
    handler.on("email", "*")(lambda e: calls.append("any email"))
    handler.on("*")(lambda e: calls.append("everything"))
    handler.on("sms", "bounced")(lambda e: calls.append("sms bounced"))
    handler.on("email", "opened")(lambda e: calls.append("email opened"))

    handler.dispatch(_event("bounced"))
    assert [c[0] for c in client.calls] == ["identify", "suppress"]
    assert calls == ["alert", "email bounced", "any bounced", "any email", "everything"]
    calls.clear()
    handler.dispatch(_event("bounced", "sms"))
    assert calls == ["any bounced", "everything", "sms bounced"]


def test_on_returns_the_function_for_decorator_use() -> None:
    handler = WebhookHandler(KEY)

    @handler.on("customer", "unsubscribed")
    def unsubscribed(event: WebhookEvent) -> None:
        pass

    assert callable(unsubscribed) and unsubscribed.__name__ == "unsubscribed"


@pytest.mark.parametrize(
    ("args", "field", "text"),
    [
        (("complained",), "metric", "'spammed'"),
        (("email", "complained"), "metric", "'spammed'"),
        (("emails", "bounced"), "object_type", "unknown webhook object_type"),
        (("customer", "bounced"), "metric", "for 'customer'"),
        (("in_app", "bounced"), "metric", "for 'in_app'"),
        (("bouncd",), "metric", "unknown webhook metric 'bouncd'"),
    ],
)
def test_on_refuses_names_customerio_never_sends(
    args: tuple[str, ...], field: str, text: str
) -> None:
    with pytest.raises(ValidationError) as info:
        WebhookHandler(KEY).on(*args)
    assert info.value.field == field
    assert text in str(info.value)


def test_on_refuses_non_callables() -> None:
    with pytest.raises(ValidationError):
        WebhookHandler(KEY).on("sent")("not a function")  # type: ignore[type-var]


def test_handler_errors_are_contained_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    client = RecordingClient()
    handler = WebhookHandler(KEY, client=client)
    after: list[str] = []

    @handler.on("bounced")
    def broken(event: WebhookEvent) -> None:
        raise RuntimeError("boom")

    handler.on("bounced")(lambda e: after.append(e.event_id))
    with caplog.at_level(logging.ERROR, logger="opencdp.webhooks"):
        handler.dispatch(_event())
    assert after == ["01E4C4CT6YDC7Y5M7FE1GWWPQJ"]
    assert handler.stats()["handler_errors"] == 1
    assert "broken failed for event 01E4C4CT6YDC7Y5M7FE1GWWPQJ" in caplog.text
    assert KEY not in caplog.text


def test_a_failing_client_call_does_not_stop_the_rest() -> None:
    class Flaky(RecordingClient):
        def identify(self, person_id: str, attributes: dict[str, Any]) -> None:
            raise ConnectionError("gateway down")

    client = Flaky()
    handler = WebhookHandler(KEY, client=client)
    handler.dispatch(_event())
    assert client.calls == [("suppress", "42")]
    assert handler.stats()["handler_errors"] == 1


class AsyncRecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def suppress(self, person_id: str) -> None:
        await asyncio.sleep(0)
        self.calls.append(("suppress", person_id))

    async def identify(self, person_id: str, attributes: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self.calls.append(("identify", person_id, attributes))


def test_async_handlers_and_client_in_sync_dispatch() -> None:
    client = AsyncRecordingClient()
    handler = WebhookHandler(KEY, client=client)
    seen: list[str] = []

    @handler.on("bounced")
    async def on_bounce(event: WebhookEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.metric)

    handler.dispatch(_event())
    assert [c[0] for c in client.calls] == ["identify", "suppress"]
    assert seen == ["bounced"]


def test_dispatch_async_awaits_async_and_threads_sync_work() -> None:
    client = AsyncRecordingClient()
    handler = WebhookHandler(KEY, client=client)
    threads: list[str] = []

    @handler.on("bounced")
    def sync_handler(event: WebhookEvent) -> None:
        threads.append(threading.current_thread().name)

    @handler.on("bounced")
    async def async_handler(event: WebhookEvent) -> None:
        threads.append("loop:" + threading.current_thread().name)

    asyncio.run(handler.dispatch_async(_event()))
    assert [c[0] for c in client.calls] == ["identify", "suppress"]
    assert threads[0] != threading.current_thread().name
    assert threads[1] == "loop:" + threading.current_thread().name


def test_handle_and_handle_async_dispatch_before_returning() -> None:
    client = RecordingClient()
    handler = WebhookHandler(KEY, client=client)
    body = payload()
    assert handler.handle(signed(body), body).status == 200
    assert len(client.calls) == 2
    body = payload("spammed", event_id="second")
    response = asyncio.run(handler.handle_async(signed(body), body))
    assert response.status == 200
    assert len(client.calls) == 4


# -- construction -----------------------------------------------------------------------------


def test_from_env_reads_the_signing_key() -> None:
    handler = WebhookHandler.from_env({"CUSTOMERIO_WEBHOOK_SIGNING_KEY": KEY}, tolerance=10)
    body = payload()
    assert handler.receive(signed(body), body).status == 200
    with pytest.raises(ConfigurationError, match="CUSTOMERIO_WEBHOOK_SIGNING_KEY"):
        WebhookHandler.from_env({})


@pytest.mark.parametrize(
    "options",
    [
        {"tolerance": -1},
        {"replay_ttl": 0},
        {"max_body_bytes": 0},
        {"alert_on": "email_bounced"},
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        WebhookHandler(KEY, **options)


def test_empty_key_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        WebhookHandler("")


def test_repr_never_shows_the_key() -> None:
    handler = WebhookHandler(KEY, client=RecordingClient())
    assert KEY not in repr(handler)
    assert "RecordingClient" in repr(handler)


# -- replay store -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_memory_store_remembers_for_ttl_only() -> None:
    clock = FakeClock()
    store = MemoryReplayStore(clock=clock)
    assert isinstance(store, ReplayStore)
    assert store.add("a", 10)
    assert not store.add("a", 10)
    clock.now = 9.9
    assert not store.add("a", 10)
    clock.now = 10.0
    assert store.add("a", 10)
    assert len(store) == 1


def test_memory_store_is_bounded_and_counts_evictions() -> None:
    clock = FakeClock()
    store = MemoryReplayStore(max_entries=3, clock=clock)
    for key in "abcd":
        assert store.add(key, 100)
    assert len(store) == 3
    assert store.evicted == 1
    assert store.add("a", 100)  # the oldest was forgotten
    assert not store.add("d", 100)


def test_memory_store_purges_expired_entries() -> None:
    clock = FakeClock()
    store = MemoryReplayStore(clock=clock)
    for i in range(100):
        store.add(str(i), 5)
    clock.now = 6
    store.add("fresh", 5)
    assert len(store) == 1


def test_memory_store_admits_one_of_concurrent_duplicates() -> None:
    store = MemoryReplayStore()
    barrier = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait(timeout=5)
        outcome = store.add("same", 60)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(results) == [False] * 7 + [True]


def test_memory_store_rejects_a_zero_size() -> None:
    with pytest.raises(ConfigurationError):
        MemoryReplayStore(max_entries=0)
