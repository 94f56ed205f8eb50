"""Options and from_env."""

from __future__ import annotations

import pytest

from opencdp import ClientConfig, ConfigurationError, CustomerIO


def test_customerio_region_hosts_and_overrides() -> None:
    eu = CustomerIO("site", "track-key", region="eu")
    assert eu.track_url == "https://track-eu.customer.io"
    assert eu.app_url == "https://api-eu.customer.io"
    local = CustomerIO("site", "k", track_url="http://127.0.0.1:9000/")
    assert local.track_url == "http://127.0.0.1:9000"
    with pytest.raises(ConfigurationError, match="region"):
        CustomerIO("site", "k", region="asia")


def test_plain_http_refused_off_loopback() -> None:
    with pytest.raises(ConfigurationError, match="plain http"):
        ClientConfig(cdp_api_key="k", cdp_endpoint="http://example.com/gateway/data-gateway")
    with pytest.raises(ConfigurationError, match="plain http"):
        CustomerIO("s", "k", track_url="http://10.0.0.1")
    assert ClientConfig(cdp_api_key="k", cdp_endpoint="http://localhost:1/g").cdp_hosts[0] == (
        "http://localhost:1/g")


def test_host_list_rules() -> None:
    config = ClientConfig(cdp_api_key="k", cdp_endpoint=" https://a.example/g/ ",
                          cdp_fallback_endpoints=["https://b.example/g", "", "https://a.example/g"])
    assert config.cdp_hosts == ("https://a.example/g", "https://b.example/g")
    assert ClientConfig(cdp_api_key="k", cdp_fallback_endpoints=[]).cdp_hosts == (
        "https://api.opencdp.io/gateway/data-gateway",)
    assert len(ClientConfig(cdp_api_key="k").cdp_hosts) == 3


def test_concurrency_cap_and_secrets_not_in_repr() -> None:
    config = ClientConfig(cdp_api_key="super-secret-key", max_concurrent_requests=100,
                          send_to_customer_io=True,
                          customer_io=CustomerIO("site", "track-secret", app_api_key="app-secret"))
    assert config.max_concurrent_requests == 30
    text = repr(config)
    for secret in ("super-secret-key", "track-secret", "app-secret"):
        assert secret not in text
    with pytest.raises(ConfigurationError, match="max_concurrent_requests must be an integer >= 1"):
        ClientConfig(cdp_api_key="k", max_concurrent_requests=0)


def test_from_env_reads_and_names_missing_variables() -> None:
    env = {"CDP_API_KEY": "k", "CUSTOMERIO_SITE_ID": "s", "CUSTOMERIO_API_KEY": "t",
           "CUSTOMERIO_REGION": "EU", "OPENCDP_QUEUE_URL": "sqlite:///tmp/x.db"}
    config = ClientConfig.from_env(env)
    assert config.dual_write and config.customer_io is not None
    assert config.customer_io.region == "eu" and config.queue == "sqlite:///tmp/x.db"
    with pytest.raises(ConfigurationError, match="CDP_API_KEY"):
        ClientConfig.from_env({})
    with pytest.raises(ConfigurationError, match="CUSTOMERIO_TRACK_API_KEY"):
        ClientConfig.from_env({"CDP_API_KEY": "k", "CUSTOMERIO_SITE_ID": "s"})
    with pytest.raises(ConfigurationError, match="CUSTOMERIO_REGION"):
        ClientConfig.from_env({"CDP_API_KEY": "k", "CUSTOMERIO_REGION": "mars"})
    assert not ClientConfig.from_env({"CDP_API_KEY": "k"}).dual_write


def test_dual_write_needs_credentials() -> None:
    with pytest.raises(ConfigurationError, match="customer_io"):
        ClientConfig(cdp_api_key="k", send_to_customer_io=True)
