"""Every option is checked at construction, and the error names the option and the fix
(issue 10, item 6; the new lifecycle and network options)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from opencdp import (
    BreakerConfig,
    Client,
    ClientConfig,
    ConfigurationError,
    CustomerIO,
    RateLimitConfig,
    RetryConfig,
)


def build(**options: Any) -> ClientConfig:
    settings: dict[str, Any] = {"cdp_api_key": "key-1234"}
    settings.update(options)
    return ClientConfig(**settings)


def refused(option: str, **options: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        build(**options)
    assert info.value.option == option, str(info.value)
    assert option in str(info.value)
    return info.value


@pytest.mark.parametrize(("option", "value", "says"), [
    ("timeout", "5", "pass a number, e.g. timeout=5 rather than timeout='5'"),
    ("batch_size", "big", "batch_size must be an integer >= 1"),
    ("debug", "false", "must be True or False, got the string 'false'"),
    ("send_to_customer_io", "yes", "must be True or False, got the string 'yes'"),
    ("batch_size", True, "got bool True"),
    ("max_queue_size", 10.0, "must be an integer"),
    ("max_concurrent_requests", 0, "must be an integer >= 1, got 0"),
    ("timeout", float("nan"), "finite"),
    ("timeout", float("inf"), "finite"),
    ("timeout", 0, "> 0"),
    ("blocking_timeout", -1, "> 0"),
    ("queue_full_timeout", -0.5, ">= 0"),
    ("delivery", "sync", "'background', 'blocking'"),
    ("queue_full", "drop_newest", "'block', 'drop_oldest', 'spill'"),
    ("durability", None, "'durable', 'batched'"),
    ("email_hint", True, "'off', 'debug', 'warning'"),
    ("queue", "postgres://db/x", "sqlite:///path.db"),
    ("queue", "", "'memory'"),
    ("silence", "OCDP115", "{'OCDP115'}"),
    ("silence", {"115"}, "codes like 'OCDP115'"),
    ("cdp_fallback_endpoints", "https://b.example/g", "write ['https://b.example/g']"),
    ("cdp_fallback_endpoints", [3], "URL strings"),
    ("cdp_endpoint", 5, "http(s) URL"),
    ("logger", print, "lacks debug, error, warning (or warn)"),
    ("schemas", {}, "Schemas() registry"),
    ("tls_ca_file", "/no/such/ca.pem", "not a readable file"),
    ("retry", 5, "RetryConfig(...) or a dict"),
    ("customer_io", ("site", "key"), "CustomerIO(site_id, api_key"),
])
def test_wrong_types_and_values_are_refused_with_the_option_named(
        option: str, value: Any, says: str) -> None:
    assert says in str(refused(option, **{option: value}))


def test_truthy_strings_never_turn_a_flag_on() -> None:
    for option in ("debug", "strict", "fail_on_exception", "register_atexit", "start_worker",
                   "send", "trust_env", "send_to_customer_io"):
        for word in ("false", "no", "0", "", "True"):
            message = str(refused(option, **{option: word}))
            assert "any non-empty string is true" in message or word == ""
        refused(option, **{option: 1})


def test_ints_are_taken_where_seconds_are_wanted_and_become_floats() -> None:
    config = build(timeout=3, blocking_timeout=2, shutdown_timeout=7, queue_timeout=1)
    assert (config.timeout, config.blocking_timeout) == (3.0, 2.0)
    assert (config.shutdown_timeout, config.queue_timeout) == (7.0, 1.0)
    assert all(type(v) is float for v in (config.timeout, config.shutdown_timeout))


@pytest.mark.parametrize(("typo", "suggestion"), [
    ("sent_to_customer_io", "did you mean 'send_to_customer_io'?"),
    ("flush_at", "did you mean 'batch_size' (segment's and posthog's flush_at)?"),
    ("max_retries", "retry={'max_attempts': ...}"),
    ("disabled", "send=False"),
    ("write_key", "'cdp_api_key'"),
    ("cdp_endpont", "did you mean 'cdp_endpoint'?"),
    ("shutdown_timout", "did you mean 'shutdown_timeout'?"),
])
def test_unknown_keywords_are_refused_with_a_suggestion(typo: str, suggestion: str) -> None:
    message = str(refused(typo, **{typo: True}))
    assert f"unknown option {typo!r}" in message and suggestion in message


def test_client_raises_the_same_error_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'send_to_customer_io'"):
        Client(cdp_api_key="key-1234", sent_to_customer_io=True, register_atexit=False)
    with pytest.raises(ConfigurationError, match="timeout must be a number"):
        Client(cdp_api_key="key-1234", timeout="5", register_atexit=False)


def test_a_missing_key_is_named() -> None:
    with pytest.raises(ConfigurationError, match="cdp_api_key is required") as info:
        ClientConfig()
    assert info.value.option == "cdp_api_key"
    refused("cdp_api_key", cdp_api_key="   ")
    refused("cdp_api_key", cdp_api_key=None)


@pytest.mark.parametrize("key", ["Bearer abc123", "bearer abc123", "Basic YWJjOmRlZg==",
                                 "Token abc123"])
def test_a_scheme_before_the_key_is_explained(key: str) -> None:
    error = refused("cdp_api_key", cdp_api_key=key)
    assert error.code == "OCDP332"
    assert "pass the key alone" in str(error) and "no 'Bearer ' prefix" in str(error)
    assert "abc123" not in str(error) and "YWJj" not in str(error)


def test_keys_with_line_breaks_are_refused_without_echoing_them() -> None:
    error = refused("cdp_api_key", cdp_api_key="abc\r\nX-Injected: 1")
    assert "X-Injected" not in str(error)
    with pytest.raises(ConfigurationError, match="OCDP332"):
        CustomerIO("site", "Bearer track-key")
    with pytest.raises(ConfigurationError, match="OCDP332"):
        CustomerIO("site", "track-key", app_api_key="Bearer app-key")


@pytest.mark.parametrize(("endpoint", "root"), [
    ("https://gw.example/gateway/data-gateway/v1", "https://gw.example/gateway/data-gateway"),
    ("https://gw.example/gateway/data-gateway/v1/", "https://gw.example/gateway/data-gateway"),
    ("https://gw.example/v1/persons/identify", "https://gw.example"),
])
def test_an_endpoint_that_already_ends_in_v1_is_explained(endpoint: str, root: str) -> None:
    error = refused("cdp_endpoint", cdp_endpoint=endpoint)
    assert error.code == "OCDP333" and f"Use {root!r}" in str(error)
    fallback = refused("cdp_fallback_endpoints", cdp_fallback_endpoints=[endpoint])
    assert fallback.code == "OCDP333"
    assert build(cdp_endpoint="https://gw.example/v10").cdp_endpoint == "https://gw.example/v10"


def test_customerio_urls_that_carry_the_api_path_are_explained() -> None:
    with pytest.raises(ConfigurationError, match=r"OCDP333.*Use 'https://proxy\.example'"):
        CustomerIO("site", "key", track_url="https://proxy.example/api/v1")
    with pytest.raises(ConfigurationError, match="OCDP333"):
        CustomerIO("site", "key", app_url="https://proxy.example/v1")
    with pytest.raises(ConfigurationError, match="query or fragment"):
        CustomerIO("site", "key", track_url="https://proxy.example/?x=1")


def test_an_overridden_endpoint_drops_the_public_fallbacks() -> None:
    private = build(cdp_endpoint="https://gw.internal.example/g")
    assert private.cdp_hosts == ("https://gw.internal.example/g",)
    assert private.with_options(timeout=2.0).cdp_hosts == ("https://gw.internal.example/g",)
    chosen = build(cdp_endpoint="https://a.example/g", cdp_fallback_endpoints=["https://b.example/g"])
    assert chosen.cdp_hosts == ("https://a.example/g", "https://b.example/g")
    public = build()
    assert len(public.cdp_hosts) == 3
    assert public.with_options(cdp_endpoint="https://a.example/g").cdp_hosts == (
        "https://a.example/g",)
    assert build(cdp_endpoint="  ").cdp_hosts == public.cdp_hosts


def test_nested_configs_take_their_class_or_a_dict_of_known_fields() -> None:
    config = build(retry={"max_attempts": 3, "base_delay": 0}, breaker={"reset_timeout": 1},
                   rate_limits={"customerio": None, "opencdp": 50})
    assert config.retry == RetryConfig(max_attempts=3, base_delay=0.0)
    assert config.breaker == BreakerConfig(reset_timeout=1.0)
    assert config.rate_limits == RateLimitConfig(customerio=None, opencdp=50.0)
    given = RetryConfig(max_attempts=2)
    assert build(retry=given).retry is given
    error = refused("retry", retry={"max_attempt": 3})
    assert "did you mean 'max_attempts'?" in str(error)
    assert "failure_threshold" in str(refused("breaker", breaker={"threshold": 2}))
    assert "rate_limits.customerio" in str(refused("rate_limits", rate_limits={"customerio": 0}))
    assert "retry.max_attempts" in str(refused("retry", retry={"max_attempts": True}))
    refused("breaker", breaker=RetryConfig())
    with pytest.raises(ConfigurationError, match=r"retry\.base_delay"):
        RetryConfig(base_delay="1")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"breaker\.failure_threshold"):
        BreakerConfig(failure_threshold=0)


def test_customer_io_as_a_dict() -> None:
    config = build(customer_io={"site_id": "site", "api_key": "track-key", "region": "eu"})
    assert config.customer_io == CustomerIO("site", "track-key", region="eu")
    assert "site_id" in str(refused("customer_io", customer_io={"api_key": "k"}))
    assert "did you mean 'site_id'?" in str(refused("customer_io", customer_io={
        "site": "s", "api_key": "k"}))
    with pytest.raises(ConfigurationError, match="region must be 'us' or 'eu'"):
        CustomerIO("site", "key", region=None)  # type: ignore[arg-type]


class FakeTransport:
    async def send(self, request: object) -> object:
        return request

    async def aclose(self) -> None:
        return None


def test_new_lifecycle_and_network_options(tmp_path: Path) -> None:
    def on_error(message: object, destination: str, reason: str) -> None:
        return None

    transport = FakeTransport()
    config = build(shutdown_timeout=12, max_queue_bytes=1 << 20, queue_timeout=0.2,
                   spill_path=tmp_path / "spill.db", send=False, on_error=on_error,
                   proxy="http://user:pw@proxy.internal:3128/", trust_env=False,
                   transport=transport)
    assert config.shutdown_timeout == 12.0 and config.max_queue_bytes == 1 << 20
    assert config.spill_path == str(tmp_path / "spill.db")
    assert config.on_error is on_error and config.transport is transport
    assert config.proxy == "http://user:pw@proxy.internal:3128"
    assert (config.send, config.trust_env) == (False, False)
    for option, value in [("shutdown_timeout", 0), ("shutdown_timeout", "5"),
                          ("max_queue_bytes", 0), ("max_queue_bytes", True),
                          ("queue_timeout", -1), ("queue_timeout", None),
                          ("on_error", "log"), ("proxy", "socks5://proxy:1080"),
                          ("proxy", "proxy.internal:3128"), ("proxy", 3128),
                          ("transport", object()), ("spill_path", ""), ("spill_path", 3),
                          ("trust_env", "true")]:
        refused(option, **{option: value})


def test_a_logger_needs_its_three_methods() -> None:
    class GuideLogger:
        def debug(self, msg: str) -> None: ...
        def warn(self, msg: str) -> None: ...
        def error(self, msg: str) -> None: ...

    assert isinstance(build(logger=GuideLogger()).logger, GuideLogger)
    assert build(logger=logging.getLogger("app")).logger is logging.getLogger("app")
    class HalfLogger:
        def debug(self, msg: str) -> None: ...
        def warning(self, msg: str) -> None: ...
        error = "not callable"

    assert "lacks error" in str(refused("logger", logger=HalfLogger()))


def test_with_options_checks_like_a_new_configuration() -> None:
    config = build(retry={"max_attempts": 2}, silence=["OCDP115"])
    assert config.silence == frozenset({"OCDP115"})
    assert config.with_options(batch_size=5) == build(retry={"max_attempts": 2},
                                                      silence=["OCDP115"], batch_size=5)
    with pytest.raises(ConfigurationError, match="did you mean 'batch_size'"):
        config.with_options(batchsize=5)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="debug must be True or False"):
        config.with_options(debug="off")  # type: ignore[typeddict-item]


def test_concurrency_is_capped_at_thirty() -> None:
    assert build(max_concurrent_requests=100).max_concurrent_requests == 30
