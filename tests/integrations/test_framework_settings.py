"""Options from a framework's settings mapping, over the environment."""

from __future__ import annotations

import pytest

from opencdp import ConfigurationError, CustomerIO
from opencdp.config import ClientConfig, RetryConfig
from opencdp.integrations._settings import config_from_mapping


def test_settings_win_over_the_environment_and_nested_dicts_are_built(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_API_KEY", "from-env")
    monkeypatch.setenv("OPENCDP_QUEUE_URL", "sqlite:///env.db")
    config = config_from_mapping({
        "queue": "memory",
        "customer_io": {"site_id": "s", "api_key": "k", "region": "eu"},
        "send_to_customer_io": True,
        "retry": {"max_attempts": 3},
    }, "settings.OPENCDP")
    assert config.cdp_api_key == "from-env" and config.queue == "memory"
    assert isinstance(config.customer_io, CustomerIO) and config.customer_io.region == "eu"
    assert config.retry == RetryConfig(max_attempts=3)
    assert config.dual_write


def test_a_prepared_config_is_taken_as_it_is() -> None:
    config = ClientConfig(cdp_api_key="k")
    assert config_from_mapping(config, "x") is config


@pytest.mark.parametrize(("settings", "named"), [
    (["not", "a", "dict"], "settings.OPENCDP must be a dict"),
    ({"cdp_api_key": "k", "customer_io": {"site": "s"}}, "settings.OPENCDP['customer_io']"),
    ({"cdp_api_key": "k", "retry": {"attempts": 3}}, "settings.OPENCDP['retry']"),
    ({"cdp_api_key": "k", "no_such_option": 1}, "settings.OPENCDP"),
    ({"cdp_api_key": "k", "timeout": -1}, "settings.OPENCDP['timeout']: timeout must be"),
])
def test_bad_settings_name_where_they_are(settings: object, named: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDP_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=named.replace("[", r"\[").replace("]", r"\]")):
        config_from_mapping(settings, "settings.OPENCDP")


def test_no_key_anywhere_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDP_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="CDP_API_KEY"):
        config_from_mapping(None, "settings.OPENCDP")


def test_track_before_identify_is_silenced_unless_the_settings_or_environment_say(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_API_KEY", "k")
    monkeypatch.delenv("OPENCDP_SILENCE", raising=False)
    assert config_from_mapping(None, "x").silence == {"OCDP115"}
    assert config_from_mapping({"silence": set()}, "x").silence == frozenset()
    monkeypatch.setenv("OPENCDP_SILENCE", "")
    assert config_from_mapping(None, "x").silence == frozenset()
    monkeypatch.setenv("OPENCDP_SILENCE", "OCDP111")
    assert config_from_mapping({}, "x").silence == {"OCDP111"}


def test_lifespan_and_celery_take_options_or_a_factory_not_both() -> None:
    from opencdp import AsyncClient, Client
    from opencdp.integrations.celery import OpenCDP
    from opencdp.integrations.fastapi import lifespan

    with pytest.raises(ConfigurationError, match="not both"):
        lifespan(lambda: AsyncClient(cdp_api_key="k"), queue="memory")
    with pytest.raises(ConfigurationError, match="not both"):
        OpenCDP(None, lambda: Client(cdp_api_key="k"), queue="memory")
