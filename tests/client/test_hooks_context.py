"""``before_send`` and ``context=`` through both facades and the sandbox: what each platform
receives, what the hook drops (counted by reason in health, never delivered), and the
transactional send notice's code."""

from __future__ import annotations

import os
import signal
import warnings
from typing import Any

import pytest

from opencdp import Client, ConfigurationError, MessageView, ValidationError
from opencdp.testing import sandbox_options


def _events(sandbox: Any, service: str, user: str) -> list[dict[str, Any]]:
    """A person's events in the order they were made: the gateway takes one request per
    message, in flight together, so it may store them in another."""
    person = sandbox.person(service, user)
    events = [] if person is None else list(person["events"])
    return sorted(events, key=lambda e: e["id"]) if service == "opencdp" else events


def test_before_send_scrubs_enriches_and_drops_exactly(make: Any, sandbox: Any) -> None:
    """Scrubbed and enriched on both platforms; dropped ones nowhere, counted in health."""

    def hook(view: MessageView) -> MessageView | None:
        if view["name"] == "internal_ping":
            return None
        view["data"].pop("ssn", None)
        view["data"]["app"] = "shop"
        return view

    client = make(before_send=hook)
    client.identify("u1", {"email": "u1@example.com", "ssn": "123-45-6789"})
    kept = [client.track("u1", "bought", {"sku": f"A{i}", "ssn": "123-45-6789"})
            for i in range(3)]
    dropped = [client.track("u1", "internal_ping") for _ in range(2)]
    assert all(len(i) == 26 for i in kept + dropped)
    assert client.flush(timeout=10)
    for service in ("opencdp", "customerio"):
        events = _events(sandbox, service, "u1")
        assert [e["name"] for e in events] == ["bought"] * 3, service
        assert [e["data"] for e in events] == [{"sku": f"A{i}", "app": "shop"}
                                               for i in range(3)], service
        attributes = sandbox.person(service, "u1")["attributes"]
        assert "ssn" not in attributes and attributes["app"] == "shop", service
    health = client.health()
    assert health.dropped_by_hook == {"returned_none": 2}
    assert health.to_dict()["dropped_by_hook"] == {"returned_none": 2}
    assert client.dead_letters() == []


def test_before_send_sees_each_call_once_as_a_typed_view(make: Any) -> None:
    seen: list[MessageView] = []

    def hook(view: MessageView) -> MessageView:
        seen.append(dict(view))  # type: ignore[arg-type]
        return view

    client = make(before_send=hook)
    first = client.track("u1", "bought", {"n": 1}, timestamp=1_700_000_000)
    client.track_by({"id": "u1"}, "bought")  # builds on track: still one view
    client.identify_by({"id": "u1"}, {"plan": "pro"})
    client.track_by({"email": "u1@example.com"}, "bought")
    assert [v["kind"] for v in seen] == ["track", "track", "identify", "track:email"]
    assert seen[0] == {"id": first, "kind": "track", "identifier": "u1", "name": "bought",
                       "data": {"n": 1}, "timestamp": 1_700_000_000,
                       "destinations": ("opencdp", "customerio")}
    assert seen[3]["destinations"] == ("customerio",)
    assert client.flush(timeout=10)


def test_a_hook_that_raises_or_breaks_the_rules_drops_and_logs(make: Any, sandbox: Any,
                                                               logger: Any) -> None:
    """Fail closed: a scrubber that breaks must not let the unscrubbed message through."""

    def hook(view: MessageView) -> Any:
        name = view["name"]
        if name == "boom":
            raise KeyError("email")
        if name == "bad_value":
            view["data"]["when"] = {1, 2}  # a set: no platform takes it
        if name == "renamed":
            view["name"] = "other"
        if name == "not_a_view":
            return "yes"
        return view

    client = make(before_send=hook, logger=logger)
    for name in ("boom", "boom", "bad_value", "renamed", "not_a_view", "fine"):
        client.track("u2", name)
    assert client.flush(timeout=10)
    for service in ("opencdp", "customerio"):
        assert [e["name"] for e in _events(sandbox, service, "u2")] == ["fine"], service
    assert client.health().dropped_by_hook == {"raised": 2, "invalid": 3}
    warnings = logger.text("warn")
    assert "OCDP344 before_send raised KeyError" in warnings
    assert "changed name; only data may change" in warnings
    assert "returned str, not the message or None" in warnings
    assert warnings.count("OCDP344 before_send raised") == 1  # once per cause


def test_a_hook_may_read_but_not_change_structural_data(make: Any, sandbox: Any) -> None:
    def hook(view: MessageView) -> MessageView:
        if view["kind"] == "add_device":
            view["data"]["platform"] = "web"
        return view

    client = make(before_send=hook)
    client.register_device("u3", "phone", "ios", apn_token="apns-1")
    assert client.flush(timeout=10)
    assert client.health().dropped_by_hook == {"invalid": 1}
    assert sandbox.person("customerio", "u3") is None


def test_context_reaches_each_platforms_field(make: Any, sandbox: Any) -> None:
    context = {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11)",
               "library": {"name": "analytics.js", "version": "2.1"},
               "page": {"url": "https://shop.example/cart", "referrer": "https://ads.example/"}}
    client = make()
    client.identify("u4", {"email": "u4@example.com"})
    client.track("u4", "checkout", {"total": 9.5}, context=context)
    client.page("u4", "https://shop.example/cart", {"title": "Cart"},
                context={"ip": "2001:0db8::1", "page": {"referrer": "https://ads.example/",
                                                        "title": "ignored: the call's wins"}})
    client.track_anonymous("anon-1", "browsed", context={"user_agent": "curl/8"})
    assert client.flush(timeout=10)
    expected = {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11)",
                "library": {"name": "analytics.js", "version": "2.1"},
                "page": {"url": "https://shop.example/cart", "referrer": "https://ads.example/"}}
    for service in ("opencdp", "customerio"):
        checkout, page = _events(sandbox, service, "u4")
        assert checkout["data"] == {"total": 9.5, "context": expected}, service
        # A page view's documented fields are top-level (Customer.io's person_page);
        # the rest stays under context (IPv6 normalised).
        assert page["data"]["referrer"] == "https://ads.example/", service
        assert page["data"]["title"] == "Cart", service
        assert page["data"]["context"] == {"ip": "2001:db8::1"}, service
    assert sandbox.anonymous_events()[0]["data"] == {"context": {"user_agent": "curl/8"}}


def test_before_send_sees_the_context_and_may_scrub_it(make: Any, sandbox: Any) -> None:
    def hook(view: MessageView) -> MessageView:
        view["data"].get("context", {}).pop("ip", None)
        return view

    client = make(before_send=hook)
    client.track("u5", "checkout", context={"ip": "203.0.113.7", "user_agent": "ua"})
    assert client.flush(timeout=10)
    for service in ("opencdp", "customerio"):
        assert _events(sandbox, service, "u5")[0]["data"] == {"context": {"user_agent": "ua"}}


@pytest.mark.parametrize(("context", "properties", "field"), [
    ({"ip": "not-an-ip"}, None, "context.ip"),
    ({"ipaddress": "203.0.113.7"}, None, "context"),
    ({"page": {"href": "https://x.example"}}, None, "context.page"),
    ({"user_agent": 5}, None, "context.user_agent"),
    ("203.0.113.7", None, "context"),
    ({"ip": "203.0.113.7"}, {"context": "mine"}, "context"),
])
def test_bad_context_is_refused_at_the_call(make: Any, context: Any, properties: Any,
                                            field: str) -> None:
    client = make()
    with pytest.raises(ValidationError) as caught:
        client.track("u6", "checkout", properties, context=context)
    assert caught.value.code == "OCDP345" and caught.value.field == field


def test_context_text_passes_the_guards_value_checks(make: Any, sandbox: Any) -> None:
    client = make()
    client.track("u7", "checkout", context={"user_agent": "Navigateur/1.0 (Québec)"})
    with pytest.raises(ValidationError):
        client.track("u7", "checkout", context={"user_agent": "half a pair \ud800"})
    assert client.flush(timeout=10)
    for service in ("opencdp", "customerio"):
        assert _events(sandbox, service, "u7")[0]["data"] == {
            "context": {"user_agent": "Navigateur/1.0 (Québec)"}}, service


def test_unused_hook_and_context_keep_the_fast_path(sandbox: Any) -> None:
    """The cheap caller path is untouched unless a hook is configured."""
    with Client(**sandbox_options(sandbox)) as plain, \
            Client(**sandbox_options(sandbox, before_send=lambda v: v)) as hooked:
        assert plain.engine.fast and not hooked.engine.fast


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_counts_drops_though_the_lock_was_held_at_the_fork(
        sandbox: Any) -> None:
    with Client(**sandbox_options(sandbox, before_send=lambda v: None)) as client:
        client.engine._drop_lock.acquire()  # as if another thread held it at the fork
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            signal.alarm(10)  # a child stuck on the inherited lock dies instead
            client.track("u8", "dropped")
            os._exit(0 if client.health().dropped_by_hook == {"returned_none": 1} else 1)
        client.engine._drop_lock.release()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def test_before_send_must_be_callable(sandbox: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Client(**sandbox_options(sandbox, before_send="scrub"))
    assert caught.value.option == "before_send"


def test_send_notice_has_its_code_and_silence_mutes_it(make: Any, logger: Any) -> None:
    def send(client: Any) -> None:
        client.send_email(to="ada@example.com", identifiers={"id": "u1"},
                          transactional_message_id="WELCOME")

    send(make(logger=logger))
    assert "[CDP] OCDP343 Transactional messaging email goes to OpenCDP only" in logger.text()
    assert "silence={'OCDP343'}" in logger.text()
    logger.lines.clear()
    send(make(logger=logger, silence={"OCDP343"}))
    assert "OCDP343" not in logger.text()
