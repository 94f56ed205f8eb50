"""from_env reads every variable a deployed app needs; bad values name the variable
(issue 12: the environment part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencdp import ClientConfig, ConfigurationError, CustomerIO
from opencdp.environment import ENVIRONMENT

BASE = {"CDP_API_KEY": "key-1234"}


def test_endpoints_debug_and_lifecycle_from_the_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    env = {**BASE,
           "OPENCDP_ENDPOINT": "http://127.0.0.1:8001/gateway/data-gateway/",
           "OPENCDP_FALLBACK_ENDPOINTS": " https://b.example/g , ,https://c.example/g",
           "OPENCDP_DEBUG": "Yes", "OPENCDP_SEND": "off", "OPENCDP_STRICT": "1",
           "OPENCDP_SHUTDOWN_TIMEOUT": "25", "OPENCDP_TIMEOUT": "2.5",
           "OPENCDP_PROXY": "http://proxy.internal:3128", "OPENCDP_TLS_CA_FILE": str(ca),
           "OPENCDP_SILENCE": "OCDP115,OCDP120", "OPENCDP_DURABILITY": "batched",
           "OPENCDP_QUEUE_URL": "sqlite:///tmp/x.db",
           "CUSTOMERIO_SITE_ID": "site", "CUSTOMERIO_TRACK_API_KEY": "track-1234",
           "CUSTOMERIO_TRACK_URL": "http://127.0.0.1:8002", "CUSTOMERIO_APP_URL":
           "http://127.0.0.1:8003/"}
    config = ClientConfig.from_env(env)
    assert config.cdp_hosts == ("http://127.0.0.1:8001/gateway/data-gateway",
                                "https://b.example/g", "https://c.example/g")
    assert (config.debug, config.send, config.strict) == (True, False, True)
    assert (config.shutdown_timeout, config.timeout) == (25.0, 2.5)
    assert config.proxy == "http://proxy.internal:3128" and config.tls_ca_file == str(ca)
    assert config.silence == frozenset({"OCDP115", "OCDP120"})
    assert config.durability == "batched" and config.queue == "sqlite:///tmp/x.db"
    assert config.customer_io == CustomerIO("site", "track-1234",
                                            track_url="http://127.0.0.1:8002",
                                            app_url="http://127.0.0.1:8003")
    assert config.dual_write


def test_an_empty_fallback_list_means_none() -> None:
    env = {**BASE, "OPENCDP_FALLBACK_ENDPOINTS": ""}
    assert ClientConfig.from_env(env).cdp_hosts == ("https://api.opencdp.io/gateway/data-gateway",)
    private = ClientConfig.from_env({**BASE, "OPENCDP_ENDPOINT": "https://gw.internal/g"})
    assert private.cdp_hosts == ("https://gw.internal/g",)


def test_keyword_overrides_win_and_their_variables_are_not_read() -> None:
    env = {**BASE, "OPENCDP_DEBUG": "maybe", "OPENCDP_TIMEOUT": "soon"}
    config = ClientConfig.from_env(env, debug=False, timeout=4)
    assert (config.debug, config.timeout) == (False, 4.0)
    assert ClientConfig.from_env({}, cdp_api_key="other-key").cdp_api_key == "other-key"


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("OPENCDP_DEBUG", "maybe", "must be one of true, 1, yes, on, false, 0, no, off"),
    ("OPENCDP_SEND", "disabled", "got 'disabled'"),
    ("OPENCDP_SHUTDOWN_TIMEOUT", "-1", "> 0"),
    ("OPENCDP_SHUTDOWN_TIMEOUT", "ten", "must be a number of seconds, got 'ten'"),
    ("OPENCDP_TIMEOUT", "nan", "finite"),
    ("OPENCDP_ENDPOINT", "https://gw.example/g/v1", "OCDP333"),
    ("OPENCDP_ENDPOINT", "http://gw.example/g", "plain http"),
    ("OPENCDP_FALLBACK_ENDPOINTS", "https://a.example/g,ftp://b", "http(s) URL"),
    ("OPENCDP_PROXY", "socks5://p:1", "proxy URL"),
    ("OPENCDP_QUEUE_URL", "mysql://x", "not a queue URL"),
    ("OPENCDP_DURABILITY", "fast", "'durable', 'batched'"),
    ("OPENCDP_SILENCE", "115", "codes like 'OCDP115'"),
    ("OPENCDP_TLS_CA_FILE", "/no/such/file.pem", "not a readable file"),
    ("CDP_API_KEY", "Bearer abc123", "OCDP332"),
])
def test_a_bad_value_names_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ClientConfig.from_env({**BASE, variable: value})
    assert info.value.option == variable
    assert f"environment variable {variable}" in str(info.value) and says in str(info.value)
    assert "abc123" not in str(info.value)


@pytest.mark.parametrize(("env", "variable"), [
    ({}, "CDP_API_KEY"),
    ({"CDP_API_KEY": "  "}, "CDP_API_KEY"),
    ({**BASE, "CUSTOMERIO_SITE_ID": "s"}, "CUSTOMERIO_TRACK_API_KEY"),
    ({**BASE, "CUSTOMERIO_API_KEY": "t1234"}, "CUSTOMERIO_SITE_ID"),
    ({**BASE, "CUSTOMERIO_REGION": "mars"}, "CUSTOMERIO_REGION"),
    ({**BASE, "OPENCDP_SEND_TO_CUSTOMER_IO": "true"}, "OPENCDP_SEND_TO_CUSTOMER_IO"),
    ({**BASE, "CUSTOMERIO_TRACK_URL": "http://127.0.0.1:1"}, "CUSTOMERIO_TRACK_URL"),
    ({**BASE, "CUSTOMERIO_SITE_ID": "s", "CUSTOMERIO_API_KEY": "t1234",
      "CUSTOMERIO_TRACK_URL": "https://proxy.example/api/v1"}, "CUSTOMERIO_TRACK_URL"),
    ({**BASE, "CUSTOMERIO_SITE_ID": "s", "CUSTOMERIO_API_KEY": "t1234",
      "CUSTOMERIO_APP_URL": "ftp://x"}, "CUSTOMERIO_APP_URL"),
    ({**BASE, "CUSTOMERIO_SITE_ID": "s", "CUSTOMERIO_TRACK_API_KEY": "Bearer t1234"},
     "CUSTOMERIO_TRACK_API_KEY"),
    ({**BASE, "CUSTOMERIO_SITE_ID": "s", "CUSTOMERIO_API_KEY": "t1234",
      "CUSTOMERIO_APP_API_KEY": "Bearer a1234"}, "CUSTOMERIO_APP_API_KEY"),
])
def test_missing_and_mismatched_customer_io_variables_are_named(
        env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable) as info:
        ClientConfig.from_env(env)
    assert info.value.option == variable


def test_every_variable_is_documented_on_the_options_page() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "options.md").read_text()
    for variable in ENVIRONMENT:
        assert f"`{variable.name}`" in page, variable.name


def test_every_option_has_a_row_on_the_options_page() -> None:
    from opencdp.options import ClientOptions

    page = (Path(__file__).resolve().parents[2] / "docs" / "options.md").read_text()
    missing = [name for name in ClientOptions.__annotations__ if f"| `{name}` |" not in page]
    assert not missing, f"docs/options.md has no row for {missing}"
