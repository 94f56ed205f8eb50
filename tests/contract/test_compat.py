"""``opencdp.compat`` against ``cdp_client`` (cdp-python-sdk 0.2.0): one script, one sandbox.

Each test runs the same code with either module and compares what the sandbox stored and
what was raised. Fallback endpoints are always ``[]``: the original's defaults are public
hosts, and nothing may leave the machine. ``CustomerIoConfig`` is the same for both (the
original has no URL field); the compat client finds the sandbox's Customer.io in
``CUSTOMERIO_TRACK_URL``/``CUSTOMERIO_APP_URL``, as ``opencdp sandbox --print-env`` sets
them, and its requests go through ``LoopbackOnly``, which records every host and never lets
a request leave for any other. The original's Customer.io client never starts (the
``customerio`` package refuses its region string), so only the compat client reaches the
sandbox's Customer.io.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import cdp_client
import pytest

from opencdp import ClientConfig, compat
from opencdp.checks import is_loopback
from opencdp.compat.client import URL_VARIABLES, client_options, is_test_gateway
from opencdp.config import DEFAULT_CDP_ENDPOINT, DEFAULT_CDP_FALLBACKS
from opencdp.destinations.base import Failure, Request, Response
from opencdp.testing import sandbox_options
from opencdp.transport import AiohttpTransport
from support.servers import refused_port

MODULES = [pytest.param(cdp_client, id="cdp_client"), pytest.param(compat, id="compat")]
KEY = "cdp-test-key"
QUICK: dict[str, Any] = {"retry": {"base_delay": 0.02, "max_delay": 0.1, "max_attempts": 1000},
                         "breaker": {"reset_timeout": 0.05}}


class LoopbackOnly:
    """The engine's real transport, for loopback hosts only: every other host is recorded
    and answered with a connect failure, so no request can leave the machine."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport(ClientConfig(cdp_api_key=KEY, timeout=5))
        self.hosts: list[tuple[str, str]] = []

    async def send(self, request: Request) -> Response | Failure:
        host = urlsplit(request.url).hostname or ""
        self.hosts.append((request.service, host))
        if not is_loopback(host):
            return Failure(f"LoopbackOnly: {host} is not loopback", "connect")
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def left(self) -> list[str]:
        return sorted({h for _, h in self.hosts if not is_loopback(h)})


@pytest.fixture
def cio_env(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Customer.io hosts ``opencdp sandbox --print-env`` exports."""
    cio = sandbox_options(sandbox)["customer_io"]
    monkeypatch.setenv("CUSTOMERIO_TRACK_URL", cio.track_url)
    monkeypatch.setenv("CUSTOMERIO_APP_URL", cio.app_url)


def make(mod: ModuleType, sb: Any, *, key: str = KEY, fail: bool = True, dual: bool = False,
         timeout_ms: int = 5000, **options: Any) -> Any:
    cio = None
    if dual:
        cio = mod.CustomerIoConfig(site_id="sandbox-site", api_key="sandbox-track-key",
                                   region="us")
    config = mod.CDPConfig(cdp_api_key=key, cdp_endpoint=sb.opencdp_url,
                           cdp_fallback_endpoints=[], fail_on_exception=fail,
                           timeout_ms=timeout_ms, send_to_customer_io=dual, customer_io=cio)
    if mod is compat:
        return compat.CDPClient(config, register_atexit=False, **options)
    return cdp_client.CDPClient(config)


async def script(mod: ModuleType, cdp: Any) -> Any:
    """What a cdp-python-sdk user writes, with every call and model its README shows."""
    assert await cdp.ping() is True
    assert await cdp.identify("user_123", {"plan": "pro", "first_name": "Ada"}) is None
    assert await cdp.identify(" user_456 ", None) is None
    assert await cdp.track("user_123", "purchase", {"amount": 99.9,
                                                    "items": [{"sku": "A1", "qty": 2}]}) is None
    assert await cdp.track("user_456", " signed_up ") is None
    await cdp.register_device("user_123", mod.DeviceRegistrationParameters(
        deviceId="device-abc", platform="android", fcmToken="fcm-token-xyz", model="Pixel 8",
        osVersion="14", appVersion="3.1.0", attributes={"k": "v"}))
    await cdp.register_device("user_456", mod.DeviceRegistrationParameters(
        device_id="iphone-1", platform="ios", fcm_token="fcm-ios", apn_token="apns-1"))
    email = mod.EmailPayload(to="ada@example.com", identifiers=mod.Identifiers(id="user_123"),
                             transactional_message_id="WELCOME", message_data={"name": "Ada"},
                             subject="Hi", body="<p>Hi</p>", body_plain="Hi",
                             **{"from": "team@example.com"})
    email.attach("receipt.txt", b"thanks")
    email.attach("notes.txt", "plain")
    assert await cdp.send_email(email) is None
    assert await cdp.send_push(mod.PushPayload(identifiers=mod.Identifiers(id="user_123"),
                                               transactional_message_id="PUSH", title="Hi",
                                               body="x")) is None
    assert await cdp.send_sms(mod.SmsPayload(identifiers=mod.Identifiers(cdp_id="c1"),
                                             transactional_message_id="SMS",
                                             to="+2348000000000")) is None
    record = await cdp.send_whatsapp(mod.WhatsAppPayload(
        identifiers=mod.Identifiers(id="user_123"), transactional_message_id=42,
        to="+14155551234", template_variables={"body": {"1": "Ada"}},
        message_data={"order": "12345"}))
    await cdp.close()
    return record


def stored(sb: Any) -> dict[str, Any]:
    """What the sandbox's gateway stored, without the values it minted itself."""
    people = {}
    for user in ("user_123", "user_456"):
        person = sb.person("opencdp", user)
        assert person is not None, user
        person = {k: v for k, v in person.items() if k != "cio_id"}
        person["events"] = sorted(({k: v for k, v in e.items() if k not in ("id", "timestamp")}
                                   for e in person["events"]), key=lambda e: e["name"])
        people[user] = person
    sends = [{k: v for k, v in s.items() if k not in ("id", "received_at")}
             for s in sb.sends("opencdp")]
    return {"people": people, "sends": sends}


@pytest.mark.parametrize("fail", [True, False], ids=["fail_on_exception", "logging"])
def test_the_same_script_stores_the_same(sandbox: Any, cio_env: None, fail: bool) -> None:
    results = {}
    transport = LoopbackOnly()
    for mod in (cdp_client, compat):
        sandbox.reset()
        options = {"transport": transport} if mod is compat else {}
        record = asyncio.run(script(mod, make(mod, sandbox, fail=fail, dual=True, **options)))
        sends = sandbox.sends("opencdp")
        assert record == {"id": sends[-1]["id"], "status": "queued"}
        results[mod.__name__] = (stored(sandbox), sandbox.stats())
    (original, original_stats), (ours, ours_stats) = results["cdp_client"], \
        results["opencdp.compat"]
    assert ours == original
    assert [s["channel"] for s in ours["sends"]] == ["email", "push", "sms", "whatsapp"]
    assert ours["people"]["user_123"]["attributes"] == {"plan": "pro", "first_name": "Ada"}
    assert ours_stats["opencdp"]["requests"] == original_stats["opencdp"]["requests"] == 11
    assert original_stats["customerio"]["requests"] == 0
    person = sandbox.person("customerio", "user_123")
    assert person["attributes"] == {"plan": "pro", "first_name": "Ada"}
    assert [(e["name"], e["data"]) for e in person["events"]] == [
        ("purchase", {"amount": 99.9, "items": [{"sku": "A1", "qty": 2}]})]
    assert [d["id"] for d in person["devices"]] == ["fcm-token-xyz"]
    other = sandbox.person("customerio", "user_456")
    assert [e["name"] for e in other["events"]] == ["signed_up"]
    assert [d["id"] for d in other["devices"]] == ["fcm-ios"]
    assert ours_stats["customerio"]["rejected_total"] == 0
    assert transport.left() == []
    assert {service for service, _ in transport.hosts} == {"gateway", "track"}


@pytest.mark.parametrize("mod", MODULES)
def test_a_refused_key_raises_cdp_error_with_the_status(sandbox: Any, mod: ModuleType) -> None:
    async def run() -> None:
        bad = make(mod, sandbox, key="wrong-key")
        calls = [bad.ping(), bad.identify("user_123", {"plan": "pro"}),
                 bad.track("user_123", "purchase"),
                 bad.register_device("user_123", mod.DeviceRegistrationParameters(
                     deviceId="d1", platform="android", fcmToken="t1")),
                 bad.send_email(mod.EmailPayload(to="a@example.com",
                                                 identifiers=mod.Identifiers(id="u"),
                                                 transactional_message_id="W")),
                 bad.send_whatsapp(mod.WhatsAppPayload(identifiers=mod.Identifiers(id="u"),
                                                       transactional_message_id="W"))]
        for call in calls:
            with pytest.raises(mod.CDPError) as info:
                await call
            assert type(info.value) is mod.CDPError
            assert info.value.status_code == 401
            assert "wrong-key" not in str(info.value)
        await bad.close()
        quiet = make(mod, sandbox, key="wrong-key", fail=False)
        assert await quiet.ping() is False
        assert await quiet.identify("user_123", {"plan": "pro"}) is None
        assert await quiet.send_whatsapp(mod.WhatsAppPayload(
            identifiers=mod.Identifiers(id="u"), transactional_message_id="W")) is None
        await quiet.close()

    asyncio.run(run())
    assert sandbox.person("opencdp", "user_123") is None
    assert sandbox.sends("opencdp") == []
    assert sandbox.stats()["opencdp"]["rejected"] == {"unauthorized": 9}


def _bad_calls(mod: ModuleType, cdp: Any) -> list[tuple[Any, str]]:
    ids = mod.Identifiers
    many = mod.EmailPayload(to="a@example.com", identifiers=ids(id="u"),
                            transactional_message_id="W")
    for n in range(6):
        many.attach(f"f{n}.txt", b"x")
    return [
        (cdp.identify("", {"plan": "pro"}), "identifier"),
        (cdp.identify("   "), "identifier"),
        (cdp.identify("ada@example.com", {"plan": "pro"}), "identifier"),
        (cdp.identify("user_1", ["plan", "pro"]), "properties"),
        (cdp.track("user_1", "  "), "eventName"),
        (cdp.track("ada@example.com", "purchase"), "identifier"),
        (cdp.track("user_1", "purchase", "amount=1"), "properties"),
        (cdp.register_device("", mod.DeviceRegistrationParameters(
            deviceId="d", platform="ios", fcmToken="t")), "identifier"),
        (cdp.send_email(many), "attachments"),
        (cdp.send_email(mod.EmailPayload(to="a@example.com", identifiers=ids(id="u"),
                                         attachments={"../x": "eA=="})), "attachments"),
        (cdp.send_email(mod.EmailPayload(to="a@example.com", identifiers=ids(id="u"),
                                         attachments={"x.txt": "not base64!"})),
         "attachments"),
        (cdp.send_whatsapp(mod.WhatsAppPayload(identifiers=ids(id="u", email="a@example.com"),
                                               transactional_message_id="W")), "identifiers"),
        (cdp.send_whatsapp(mod.WhatsAppPayload(identifiers=ids(id="u"),
                                               transactional_message_id="W", to="555-1234")),
         "to"),
        (cdp.send_whatsapp(mod.WhatsAppPayload(identifiers=ids(id="u"),
                                               transactional_message_id="W",
                                               template_variables={"footer": {"1": "x"}})),
         "template_variables"),
    ]


@pytest.mark.parametrize("mod", MODULES)
def test_bad_input_raises_cdp_validation_error_naming_the_field(sandbox: Any,
                                                              mod: ModuleType) -> None:
    async def run() -> None:
        cdp = make(mod, sandbox)
        for call, field in _bad_calls(mod, cdp):
            with pytest.raises(mod.CDPValidationError) as info:
                await call
            assert isinstance(info.value, mod.CDPError)
            assert (info.value.field, info.value.status_code) == (field, None), info.value
        await cdp.close()

    asyncio.run(run())
    assert sandbox.stats()["opencdp"]["requests"] == 0


@pytest.mark.parametrize("mod", MODULES)
def test_bad_input_is_logged_not_raised_by_default(sandbox: Any, mod: ModuleType,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> int:
        cdp = make(mod, sandbox, fail=False)
        calls = _bad_calls(mod, cdp)
        for call, _ in calls:
            assert await call is None
        await cdp.close()
        return len(calls)

    with caplog.at_level(logging.ERROR, logger="CDPClient"):
        count = asyncio.run(run())
    assert sandbox.stats()["opencdp"]["requests"] == 0
    failures = [r for r in caplog.records if r.name == "CDPClient"]
    assert len(failures) == count


@pytest.mark.parametrize("mod", MODULES)
@pytest.mark.parametrize("build", [
    lambda m: m.DeviceRegistrationParameters(deviceId="d", platform="windows", fcmToken="t"),
    lambda m: m.DeviceRegistrationParameters(deviceId="d", platform="ios"),
    lambda m: m.WhatsAppPayload(identifiers=m.Identifiers(id="u"),
                                transactional_message_id="W", subject="x"),
    lambda m: m.EmailPayload(identifiers=m.Identifiers(id="u")),
    lambda m: m.CDPConfig(),
    lambda m: m.CDPConfig(cdp_api_key="k", customer_io={"site_id": "s"}),
    lambda m: m.CustomerIoConfig(site_id="s", api_key="k", region="ap"),
], ids=["platform", "no-token", "whatsapp-extra", "no-to", "no-key", "cio-no-key", "region"])
def test_malformed_models_raise_value_errors(mod: ModuleType, build: Any) -> None:
    with pytest.raises(ValueError):
        build(mod)


def test_models_coerce_nested_dicts_and_aliases_like_the_original() -> None:
    for mod in (cdp_client, compat):
        config = mod.CDPConfig(cdp_api_key="k", customer_io={"site_id": "s", "api_key": "x"})
        assert isinstance(config.customer_io, mod.CustomerIoConfig)
        assert config.customer_io.region == "us"
        email = mod.EmailPayload(to="a@example.com", identifiers={"id": "u"},
                                 **{"from": "b@example.com"})
        assert (email.from_, email.identifiers.id) == ("b@example.com", "u")
        device = mod.DeviceRegistrationParameters(deviceId="d", platform="web", fcmToken="t")
        assert device.model_dump(by_alias=True, exclude_none=True) == {
            "deviceId": "d", "platform": "web", "fcmToken": "t"}


def test_keys_never_appear_in_reprs_or_errors(sandbox: Any, cio_env: None) -> None:
    cdp = make(compat, sandbox, key="cdp-secret-key", dual=True)
    shown = repr(cdp) + repr(cdp.config) + repr(cdp.client) + str(cdp.config.customer_io)
    assert "cdp-secret-key" not in shown and "sandbox-track-key" not in shown
    with pytest.raises(compat.CDPError) as info:
        asyncio.run(cdp.identify("user_1"))
    assert info.value.status_code == 401 and "cdp-secret-key" not in str(info.value)
    asyncio.run(cdp.close())


def test_config_maps_onto_client_options() -> None:
    from cdp_client.gateway_urls import resolve_all_base_urls

    default = compat.CDPClient(compat.CDPConfig(cdp_api_key="k"), register_atexit=False)
    assert resolve_all_base_urls(None, None)[0] == DEFAULT_CDP_ENDPOINT
    assert default.client.config.cdp_hosts == (DEFAULT_CDP_ENDPOINT, *DEFAULT_CDP_FALLBACKS)
    assert default.client.config.customer_io is None
    listed = compat.CDPConfig(cdp_api_key="k", cdp_endpoint=" https://gw.example.com/ ",
                              cdp_fallback_endpoints=["https://b.example.com/", " ",
                                                      "https://gw.example.com"],
                              timeout_ms=2500, debug=True, send_to_customer_io=True,
                              customer_io=compat.CustomerIoConfig(site_id="s", api_key="x",
                                                                  region=None))
    client = compat.CDPClient(listed, register_atexit=False)
    assert list(client.client.config.cdp_hosts) == resolve_all_base_urls(
        listed.cdp_endpoint, listed.cdp_fallback_endpoints)
    options = client_options(listed)
    assert (options["timeout"], options["debug"], options["delivery"]) == (2.5, True,
                                                                           "background")
    assert client.client.config.customer_io.region == "us"
    private = compat.CDPClient(compat.CDPConfig(cdp_api_key="k",
                                                cdp_endpoint="https://gw.example.com"),
                               register_atexit=False)
    assert list(private.client.config.cdp_hosts) == ["https://gw.example.com"]
    off = client_options(compat.CDPConfig(cdp_api_key="k", send_to_customer_io=True))
    assert off["send_to_customer_io"] is False and "customer_io" not in off
    for c in (default, client, private):
        asyncio.run(c.close())
    with pytest.raises(compat.CDPValidationError) as info:
        compat.CDPClient(compat.CDPConfig(cdp_api_key="k", cdp_endpoint="http://gw.example.com"))
    assert info.value.field == "cdp_endpoint"


def test_an_outage_is_ridden_out_from_a_durable_queue(sandbox: Any, tmp_path: Path) -> None:
    """The original loses a call made during an outage; the compat client queues it in
    SQLite, returns, and delivers it once the gateway is back."""
    sandbox.set_faults({"opencdp": {"error_rate": 1.0, "statuses": [503]}})

    async def during_outage(mod: ModuleType, **options: Any) -> None:
        cdp = make(mod, sandbox, fail=False, **options)
        assert await cdp.identify("user_1", {"plan": "pro"}) is None
        assert await cdp.track("user_1", "purchase", {"amount": 5}) is None
        if mod is cdp_client:
            await cdp.close()
            return
        sandbox.set_faults({"opencdp": {"error_rate": 0.0}})
        await cdp.close()

    asyncio.run(during_outage(cdp_client))
    assert sandbox.person("opencdp", "user_1") is None
    asyncio.run(during_outage(compat, queue=f"sqlite:///{tmp_path / 'cdp.db'}", **QUICK))
    person = sandbox.person("opencdp", "user_1")
    assert person is not None and person["attributes"] == {"plan": "pro"}
    assert [e["name"] for e in person["events"]] == ["purchase"]


def test_a_retryable_failure_raises_without_status_and_stays_queued(sandbox: Any) -> None:
    sandbox.set_faults({"opencdp": {"error_rate": 1.0, "statuses": [503]}})

    async def run() -> None:
        cdp = make(compat, sandbox, timeout_ms=300, **QUICK)
        with pytest.raises(compat.CDPError) as info:
            await cdp.identify("user_1", {"plan": "pro"})
        assert info.value.status_code is None
        assert not isinstance(info.value, compat.CDPValidationError)
        sandbox.set_faults({"opencdp": {"error_rate": 0.0}})
        assert await asyncio.to_thread(cdp.client.flush, 10)
        await cdp.close()

    asyncio.run(run())
    assert sandbox.person("opencdp", "user_1")["attributes"] == {"plan": "pro"}


def test_a_closed_client_refuses_calls_as_cdp_errors(sandbox: Any) -> None:
    async def run() -> None:
        loud, quiet = make(compat, sandbox), make(compat, sandbox, fail=False)
        await loud.close()
        await quiet.close()
        with pytest.raises(compat.CDPError) as info:
            await loud.track("user_1", "purchase")
        assert "closed" in str(info.value) and info.value.status_code is None
        assert await quiet.identify("user_1", {"plan": "pro"}) is None
        assert await quiet.send_push(compat.PushPayload(
            identifiers=compat.Identifiers(id="user_1"), transactional_message_id="P")) is None

    asyncio.run(run())
    assert sandbox.stats()["opencdp"]["requests"] == 0


@pytest.mark.parametrize("mod", MODULES)
def test_an_unreachable_gateway_raises_cdp_error_without_status(mod: ModuleType) -> None:
    port = refused_port()
    config = mod.CDPConfig(cdp_api_key=KEY, cdp_endpoint=f"http://127.0.0.1:{port}",
                           cdp_fallback_endpoints=[], fail_on_exception=True, timeout_ms=300)
    options = {"register_atexit": False, "shutdown_timeout": 0.2} if mod is compat else {}

    async def run() -> None:
        cdp = mod.CDPClient(config, **options)
        for call in (cdp.ping(), cdp.identify("user_1", {"plan": "pro"}),
                     cdp.send_sms(mod.SmsPayload(identifiers=mod.Identifiers(id="user_1"),
                                                 transactional_message_id="OTP",
                                                 to="+14155551234"))):
            with pytest.raises(mod.CDPError) as info:
                await call
            assert type(info.value) is mod.CDPError and info.value.status_code is None
        await cdp.close()

    asyncio.run(run())


@pytest.mark.parametrize(("url", "test"), [
    ("http://127.0.0.1:8080/gateway/data-gateway", True),
    ("http://localhost:8080", True),
    ("http://[::1]:8080", True),
    ("https://cdp.localhost", True),
    ("https://cdp-sandbox.internal/gateway", True),
    (DEFAULT_CDP_ENDPOINT, False),
    ("https://gw.example.com", False),
    ("http://[not-a-url", False),
])
def test_loopback_and_sandbox_gateways_are_test_gateways(url: str, test: bool) -> None:
    assert is_test_gateway(url) is test


def _dual(sb: Any, **cio: Any) -> Any:
    return compat.CDPConfig(
        cdp_api_key=KEY, cdp_endpoint=sb.opencdp_url, cdp_fallback_endpoints=[],
        send_to_customer_io=True,
        customer_io=compat.CustomerIoConfig(site_id="sandbox-site",
                                            api_key="sandbox-track-key", **cio))


def test_a_test_gateway_never_gets_customer_io_at_its_production_hosts(
        sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a URL in the config or the environment, a dual-write beside a loopback
    gateway is refused before anything is sent, naming what to set."""
    for variable in URL_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    transport = LoopbackOnly()
    refusals = []
    for config, options in [
            (_dual(sandbox), {}),
            (_dual(sandbox, region="eu"), {}),
            (compat.CDPConfig(cdp_api_key=KEY, send_to_customer_io=True,
                              customer_io=compat.CustomerIoConfig(
                                  site_id="sandbox-site", api_key="sandbox-track-key")),
             {"cdp_endpoint": sandbox.opencdp_url, "cdp_fallback_endpoints": []})]:
        with pytest.raises(compat.CDPValidationError) as info:
            compat.CDPClient(config, register_atexit=False, transport=transport, **options)
        refusals.append(info.value)
    monkeypatch.setenv("CUSTOMERIO_TRACK_URL", sandbox.track_url)
    with pytest.raises(compat.CDPValidationError) as info:
        compat.CDPClient(_dual(sandbox), register_atexit=False, transport=transport)
    assert "CUSTOMERIO_APP_URL" in str(info.value)
    assert "CUSTOMERIO_TRACK_URL" not in str(info.value)
    for error in refusals:
        assert error.field == "customer_io" and error.status_code is None
        assert "CUSTOMERIO_TRACK_URL and CUSTOMERIO_APP_URL" in str(error)
        assert "sandbox-track-key" not in str(error) and KEY not in str(error)
    assert transport.hosts == []
    assert sandbox.stats()["opencdp"]["requests"] == sandbox.stats()["customerio"][
        "requests"] == 0


def test_customer_io_hosts_come_from_the_config_then_the_environment(
        sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMERIO_TRACK_URL", sandbox.track_url)
    monkeypatch.setenv("CUSTOMERIO_APP_URL", sandbox.app_url)
    mixed = compat.CDPClient(_dual(sandbox, track_url="http://127.0.0.1:9"),
                             register_atexit=False, start_worker=False)
    cio = mixed.client.config.customer_io
    assert (cio.track_url, cio.app_url) == ("http://127.0.0.1:9", sandbox.app_url)
    production = compat.CDPClient(compat.CDPConfig(
        cdp_api_key=KEY, send_to_customer_io=True,
        customer_io=compat.CustomerIoConfig(site_id="s", api_key="x")),
        register_atexit=False, start_worker=False)
    cio = production.client.config.customer_io
    assert (cio.track_url, cio.app_url) == ("https://track.customer.io",
                                            "https://api.customer.io")
    monkeypatch.setenv("CUSTOMERIO_APP_URL", "http://app.example.com")
    with pytest.raises(compat.CDPValidationError) as info:
        compat.CDPClient(_dual(sandbox), register_atexit=False, start_worker=False)
    assert "CUSTOMERIO_APP_URL" in str(info.value) and info.value.field == "customer_io"
    for c in (mixed, production):
        asyncio.run(c.close())


async def _unenforced(mod: ModuleType, cdp: Any) -> None:
    """Calls cdp-python-sdk delivers that opencdp's own client refuses or rewrites."""
    for _ in range(2):
        await cdp.identify("mig_3", {"created_at": 1704067200000, "plan": "pro"})
        await cdp.track("mig_3", "viewed_product_12345678")
        await cdp.track("mig_3", "order_2024_11_05", {"paid_at": 1704067200123})
    await cdp.close()


@pytest.mark.parametrize("fail", [True, False], ids=["fail_on_exception", "logging"])
def test_what_the_original_never_enforced_warns_once_and_is_delivered_as_sent(
        sandbox: Any, cio_env: None, fail: bool, caplog: pytest.LogCaptureFixture) -> None:
    stored_by = {}
    for mod in (cdp_client, compat):
        sandbox.reset()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            asyncio.run(_unenforced(mod, make(mod, sandbox, fail=fail, dual=True)))
        person = sandbox.person("opencdp", "mig_3")
        assert person is not None, mod.__name__
        stored_by[mod] = (person["attributes"], sorted(
            (e["name"], e["data"]) for e in person["events"]))
        records = list(caplog.records)
    assert stored_by[compat] == stored_by[cdp_client]
    assert [r.getMessage() for r in records if r.levelno >= logging.ERROR] == []
    lines = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    attributes, events = stored_by[compat]
    assert attributes == {"created_at": 1704067200000, "plan": "pro"}
    assert events == [("order_2024_11_05", {"paid_at": 1704067200123})] * 2 + [
        ("viewed_product_12345678", {})] * 2
    warned = sorted(line.split()[1] for line in lines if line.startswith("[CDP] OCDP1"))
    assert warned == ["OCDP104", "OCDP104", "OCDP122", "OCDP122"], lines
    pii = [line for line in lines if " OCDP122 " in line]
    assert any("embeds a number (an id?)" in line for line in pii)
    assert any("embeds a date" in line for line in pii)
    assert not any("phone" in line or "12345678" in line for line in pii)
    assert sandbox.stats()["customerio"]["rejected_total"] == 0
    cio = sandbox.person("customerio", "mig_3")
    assert cio["attributes"]["created_at"] == 1704067200000
    assert sorted((e["name"], e["data"]) for e in cio["events"]) == events


def test_strict_keeps_opencdp_s_refusals_in_compat(sandbox: Any) -> None:
    async def run() -> None:
        cdp = make(compat, sandbox, strict=True, silence={"OCDP115"})
        with pytest.raises(compat.CDPValidationError) as info:
            await cdp.track("mig_3", "viewed_product_12345678")
        assert info.value.field == "event" and "OCDP122" in str(info.value)
        await cdp.close()

    asyncio.run(run())
    assert sandbox.stats()["opencdp"]["requests"] == 0
