"""ServerConfig: validated on construction, secrets kept out of its repr, read from the env."""

from __future__ import annotations

from typing import Any

import pytest

from opencdp.config import ClientConfig
from opencdp.errors import ConfigurationError
from opencdp.server import ServerConfig
from opencdp.server.config import DEFAULT_MAX_BODY_BYTES, DEFAULT_QUEUE

CLIENT = ClientConfig(cdp_api_key="upstream-secret-key", register_atexit=False)


def test_defaults_keep_the_relay_on_loopback_with_a_durable_queue() -> None:
    config = ServerConfig(api_keys=["k1"], client=CLIENT)
    assert config.host == "127.0.0.1"
    assert config.queue == DEFAULT_QUEUE == "sqlite:///./opencdp-relay.db"
    assert config.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1 << 20
    assert config.webhook_signing_key is None
    assert config.api_keys == ("k1",)


def test_the_delivering_client_takes_the_relay_queue_and_lifecycle() -> None:
    client = CLIENT.with_options(delivery="blocking", queue="memory", register_atexit=True)
    derived = ServerConfig(api_keys=["k1"], client=client, queue="sqlite:///x.db").client_config()
    assert derived.queue == "sqlite:///x.db"
    assert derived.delivery == "background"
    assert derived.register_atexit is False
    assert derived.start_worker is True
    assert derived.cdp_api_key == "upstream-secret-key"


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"api_keys": []}, "at least one API key"),
        ({"api_keys": "k1"}, "list of keys"),
        ({"api_keys": ["k1", " "]}, "non-empty"),
        ({"client": {"cdp_api_key": "x"}}, "ClientConfig"),
        ({"port": 70000}, "port"),
        ({"port": True}, "port"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"host": " "}, "host"),
        ({"queue": ""}, "queue"),
        ({"webhook_signing_key": ""}, "webhook_signing_key"),
        ({"drain_timeout": 0}, "drain_timeout"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], needle: str) -> None:
    settings: dict[str, Any] = {"api_keys": ["k1"], "client": CLIENT, **options}
    with pytest.raises(ConfigurationError, match=needle):
        ServerConfig(**settings)


def test_repr_shows_no_secret() -> None:
    config = ServerConfig(api_keys=["relay-secret-1", "relay-secret-2"], client=CLIENT,
                          webhook_signing_key="whsec_very_secret",
                          queue="redis://:hunter2pass@localhost:6379/0")
    text = repr(config)
    for secret in ("relay-secret-1", "relay-secret-2", "whsec_very_secret",
                   "upstream-secret-key", "hunter2pass"):
        assert secret not in text
    assert "api_keys=[<14 chars>, <14 chars>]" in text


def test_duplicate_and_padded_keys_are_normalised() -> None:
    config = ServerConfig(api_keys=[" k1 ", "k1", "k2"], client=CLIENT)
    assert config.api_keys == ("k1", "k2")


def test_from_env_reads_relay_and_client_variables() -> None:
    env = {
        "OPENCDP_RELAY_KEYS": "key-a, key-b,,",
        "CDP_API_KEY": "upstream",
        "CUSTOMERIO_SITE_ID": "site",
        "CUSTOMERIO_TRACK_API_KEY": "track",
        "OPENCDP_QUEUE_URL": "sqlite:///relay.db",
        "OPENCDP_RELAY_PORT": "9000",
        "OPENCDP_RELAY_MAX_BODY_BYTES": "2048",
        "CUSTOMERIO_WEBHOOK_SIGNING_KEY": "whsec_x",
        "OPENCDP_RELAY_HOST": "0.0.0.0",
    }
    config = ServerConfig.from_env(env)
    assert config.api_keys == ("key-a", "key-b")
    assert config.client.cdp_api_key == "upstream"
    assert config.client.dual_write
    assert config.queue == "sqlite:///relay.db"
    assert (config.port, config.max_body_bytes) == (9000, 2048)
    assert config.webhook_signing_key == "whsec_x"
    assert config.host == "127.0.0.1"  # never from the environment


def test_from_env_overrides_win_and_missing_keys_are_named() -> None:
    env = {"CDP_API_KEY": "upstream"}
    with pytest.raises(ConfigurationError, match="OPENCDP_RELAY_KEYS"):
        ServerConfig.from_env(env)
    config = ServerConfig.from_env(env, api_keys=["k"], port=0, host="::1")
    assert (config.api_keys, config.port, config.host) == (("k",), 0, "::1")
    with pytest.raises(ConfigurationError, match="OPENCDP_RELAY_PORT"):
        ServerConfig.from_env({**env, "OPENCDP_RELAY_PORT": "http"}, api_keys=["k"])


def test_tls_files_are_checked(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="tls_key_file needs tls_cert_file"):
        ServerConfig(api_keys=["k"], client=CLIENT, tls_key_file=str(tmp_path))
    with pytest.raises(ConfigurationError, match="not a readable file"):
        ServerConfig(api_keys=["k"], client=CLIENT, tls_cert_file=str(tmp_path / "none.pem"))
    cert = tmp_path / "cert.pem"
    cert.write_text("-")
    config = ServerConfig(api_keys=["k"], client=CLIENT, tls_cert_file=str(cert))
    assert config.scheme == "https"
    assert ServerConfig(api_keys=["k"], client=CLIENT).scheme == "http"
