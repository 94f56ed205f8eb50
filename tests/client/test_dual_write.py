"""Every call reaches the right platforms with the right data, through either facade."""

from __future__ import annotations

from typing import Any

import pytest

from opencdp import ConfigurationError, DeliveryError, ValidationError


@pytest.mark.parametrize("delivery", ["background", "blocking"])
def test_identify_track_device_reach_both_platforms(make: Any, sandbox: Any,
                                                    delivery: str) -> None:
    client = make(delivery=delivery)
    client.identify("user_1", {"email": "ada@example.com", "plan": "pro"})
    client.track("user_1", "purchase_completed", {"amount": 99.9, "currency": "USD"},
                 timestamp=1_700_000_000)
    client.register_device("user_1", "device-abc", "ios", apn_token="apns-tok", model="iPhone")
    assert client.flush(timeout=10)
    for service in ("opencdp", "customerio"):
        person = sandbox.person(service, "user_1")
        assert person is not None, service
        assert person["attributes"]["email"] == "ada@example.com"
        assert person["attributes"]["plan"] == "pro"
        (event,) = person["events"]
        assert event["name"] == "purchase_completed"
        assert event["data"] == {"amount": 99.9, "currency": "USD"}
        assert len(person["devices"]) == 1
    cio_event = sandbox.person("customerio", "user_1")["events"][0]
    assert cio_event["timestamp"] == 1_700_000_000
    assert len(cio_event["id"]) == 26, "the event's ULID is sent as the Customer.io event id"
    assert sandbox.stats()["customerio"]["duplicates"] == 0


def test_customerio_only_operations(make: Any, sandbox: Any) -> None:
    client = make()
    client.identify("u2", {"email": "u2@example.com"})
    client.register_device("u2", "dev", "android", fcm_token="fcm-1")
    assert client.flush(10)
    client.remove_device("u2", "fcm-1")
    client.suppress("u2")
    client.identify("u3", {"email": "u3@example.com"})
    assert client.flush(10)
    person = sandbox.person("customerio", "u2")
    assert person["suppressed"] is True
    assert person["devices"] == []
    client.unsuppress("u2")
    client.merge_people({"id": "u2"}, {"id": "u3"})
    client.delete_person("u2")
    assert client.flush(10)
    assert sandbox.person("customerio", "u3") is None or sandbox.person("customerio", "u2") is None
    assert sandbox.person("opencdp", "u2") is not None, "OpenCDP has no such operations"


def test_anonymous_activity_merges_on_identify(make: Any, sandbox: Any) -> None:
    client = make()
    client.track_anonymous("anon-7", "page_viewed", {"url": "/pricing"})
    client.identify("u7", {"email": "u7@example.com"}, anonymous_id="anon-7")
    assert client.flush(10)
    person = sandbox.person("customerio", "u7")
    assert person["attributes"].get("anonymous_id") == "anon-7"
    assert sandbox.person("opencdp", "u7")["attributes"]["anonymous_id"] == "anon-7"


def test_customer_io_operations_need_dual_write(make: Any) -> None:
    client = make(send_to_customer_io=False, customer_io=None)
    with pytest.raises(ConfigurationError, match=r"Customer\.io operation"):
        client.suppress("u1")


def test_transactional_sends_go_to_opencdp_only_and_warn(
    make: Any, logger: Any, sandbox: Any
) -> None:
    client = make(logger=logger)
    email = client.send_email(to="ada@example.com", identifiers={"id": "u1"},
                              transactional_message_id="WELCOME", message_data={"n": 1})
    push = client.send_push(identifiers={"id": "u1"}, transactional_message_id="PUSH_1",
                            title="Hi", body="Welcome")
    sms = client.send_sms(identifiers={"id": "u1"}, transactional_message_id="SMS_1",
                          to="+2348000000000")
    wa = client.send_whatsapp(identifiers={"id": "u1"}, transactional_message_id="WA",
                              to="+14155551234", template_variables={"body": {"1": "x"}})
    for answer in (email, push, sms, wa):
        assert isinstance(answer, dict) and answer, answer
    assert len(sandbox.sends("opencdp")) == 4
    assert sandbox.sends("customerio") == []
    warnings = logger.text("warn")
    for word in ("email", "push", "SMS", "WhatsApp"):
        assert (f"[CDP] OCDP343 Transactional messaging {word} goes to OpenCDP only, never to "
                "Customer.io") in warnings
    assert "send_to_customer_io" not in warnings  # switching dual-write off is not the advice


def test_no_send_warning_without_dual_write(make: Any, logger: Any) -> None:
    client = make(logger=logger, send_to_customer_io=False)
    client.send_email(to="ada@example.com", identifiers={"id": "u1"},
                      transactional_message_id="WELCOME")
    assert "OCDP343" not in logger.text()


def test_debug_lines(make: Any, logger: Any) -> None:
    client = make(debug=True, logger=logger)
    client.identify("user123", {"email": "x@example.com"})
    client.track("user123", "purchase_completed")
    assert client.flush(10)
    text = logger.text("debug")
    for line in ("[Customer.io] Identified user123", "[CDP] Identified user123",
                 "[CDP] Tracked event purchase_completed for user123",
                 "[Customer.io] Tracked event purchase_completed for user123"):
        assert line in text


def test_bad_input_raises_named_errors(make: Any) -> None:
    client = make()
    with pytest.raises(ValidationError) as info:
        client.track("", "signed_up")
    assert info.value.field
    with pytest.raises(ValidationError, match="identifiers"):
        client.send_email(to="a@b.co", identifiers={"id": "1", "email": "a@b.co"},
                          transactional_message_id=1)
    with pytest.raises(ValidationError, match="event_id"):
        client.track("u1", "signed_up", event_id="not-a-ulid")
    with pytest.raises(ValidationError, match="fcm_token or apn_token") as info:
        client.register_device("u1", "dev-1", "ios")
    assert info.value.field == "fcm_token"


def test_blocking_opencdp_failure_raises_only_with_fail_on_exception(make: Any,
                                                                     sandbox: Any) -> None:
    quiet = make(delivery="blocking", cdp_api_key="wrong-key")
    quiet.identify("u1", {"email": "u1@example.com"})  # logged, not raised
    loud = make(delivery="blocking", cdp_api_key="wrong-key", fail_on_exception=True)
    with pytest.raises(DeliveryError, match="401"):
        loud.identify("u1", {"email": "u1@example.com"})
    assert sandbox.person("customerio", "u1") is not None, "Customer.io still got it"
