"""Dual-write is on when Customer.io is configured; turning it off is said, not silent
(issue 10, item 4: the configuration part)."""

from __future__ import annotations

import pytest

from opencdp import ClientConfig, ConfigurationError, CustomerIO

CIO = CustomerIO("site", "track-key", track_url="http://127.0.0.1:9")


def test_customer_io_alone_turns_dual_write_on() -> None:
    config = ClientConfig(cdp_api_key="key-1234", customer_io=CIO)
    assert config.send_to_customer_io is None
    assert config.dual_write and not config.customerio_disabled
    assert config.notices == ()


def test_from_env_with_a_customer_io_override_keeps_dual_write_on() -> None:
    config = ClientConfig.from_env({"CDP_API_KEY": "key-1234"}, customer_io=CIO)
    assert config.dual_write and config.customer_io is CIO
    env = {"CDP_API_KEY": "key-1234", "CUSTOMERIO_SITE_ID": "s", "CUSTOMERIO_API_KEY": "t1234"}
    assert ClientConfig.from_env(env, customer_io=CIO).customer_io is CIO


def test_configured_but_off_is_a_notice_and_a_disabled_destination() -> None:
    config = ClientConfig(cdp_api_key="key-1234", customer_io=CIO, send_to_customer_io=False)
    assert not config.dual_write and config.customerio_disabled
    (notice,) = config.notices
    assert notice.code == "OCDP330"
    assert "send_to_customer_io=False" in notice.text and "disabled" in notice.text
    env = {"CDP_API_KEY": "key-1234", "CUSTOMERIO_SITE_ID": "s", "CUSTOMERIO_API_KEY": "t1234",
           "OPENCDP_SEND_TO_CUSTOMER_IO": "false"}
    assert ClientConfig.from_env(env).customerio_disabled


def test_without_customer_io_nothing_is_disabled() -> None:
    config = ClientConfig(cdp_api_key="key-1234", send_to_customer_io=False)
    assert not config.dual_write and not config.customerio_disabled and config.notices == ()
    with pytest.raises(ConfigurationError, match="needs customer_io=CustomerIO") as info:
        ClientConfig(cdp_api_key="key-1234", send_to_customer_io=True)
    assert info.value.option == "send_to_customer_io"


def test_send_false_is_said_at_construction() -> None:
    config = ClientConfig(cdp_api_key="key-1234", send=False)
    assert [n.code for n in config.notices] == ["OCDP331"]
    both = ClientConfig(cdp_api_key="key-1234", send=False, customer_io=CIO,
                        send_to_customer_io=False)
    assert [n.code for n in both.notices] == ["OCDP330", "OCDP331"]


def test_notices_can_be_silenced() -> None:
    config = ClientConfig(cdp_api_key="key-1234", customer_io=CIO, send_to_customer_io=False,
                          send=False, silence={"OCDP330"})
    assert [n.code for n in config.notices] == ["OCDP331"]


def test_a_redirect_to_the_other_region_is_explained() -> None:
    us = CustomerIO("site", "track-key")
    hint = us.region_hint("https://track-eu.customer.io/api/v1/customers/u1")
    assert hint is not None and hint.startswith("OCDP334")
    assert "region='eu'" in hint and "CUSTOMERIO_REGION=eu" in hint
    eu = CustomerIO("site", "track-key", region="eu")
    assert "region='us'" in (eu.region_hint("https://track.customer.io/api/v2/batch") or "")
    assert us.region_hint("https://track.customer.io/api/v1/x") is None
    assert us.region_hint("https://elsewhere.example/") is None
    assert us.region_hint(None) is None and us.region_hint("http://[::1") is None
