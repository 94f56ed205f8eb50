"""``CDPClient``: cdp-python-sdk's async client, delivering through opencdp's engine."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from ..checks import is_loopback
from ..client import Client
from ..config import ClientConfig, CustomerIO
from ..destinations.opencdp import Gateway
from ..errors import ConfigurationError, DeliveryError, OpenCDPError, ValidationError
from ..options import ClientOptions
from ..wire import Response
from . import checks
from .errors import CDPError, CDPValidationError
from .models import (
    DEFAULT_CDP_ENDPOINT,
    BaseMessagePayload,
    CDPConfig,
    DeviceRegistrationParameters,
    EmailPayload,
    PushPayload,
    SmsPayload,
    WhatsAppPayload,
)

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = ["LENIENT", "URL_VARIABLES", "CDPClient", "client_options", "is_test_gateway",
           "local_customer_io"]

logger = logging.getLogger("CDPClient")

LENIENT: Final = frozenset({"OCDP104", "OCDP122"})
"""Guard codes cdp-python-sdk never enforced: ids in event names and millisecond ``*_at``
attributes were sent as they were, so here they warn once and are sent as they are."""

URL_VARIABLES: Final = {"track_url": "CUSTOMERIO_TRACK_URL", "app_url": "CUSTOMERIO_APP_URL"}
"""Where ``ClientConfig.from_env`` (and ``opencdp sandbox --print-env``) put Customer.io's
hosts; read when the gateway is a test one and ``CustomerIoConfig`` names none."""


def _url(url: str) -> str:
    return url.strip().removesuffix("/")


def is_test_gateway(url: str) -> bool:
    """Whether a gateway URL is a loopback or sandbox address (``localhost``, ``127.0.0.1``,
    ``::1``, ``*.localhost``, a host name containing ``sandbox``)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return is_loopback(host) or host.endswith(".localhost") or "sandbox" in host


def local_customer_io(settings: ClientConfig,
                      env: Mapping[str, str] | None = None) -> ClientConfig:
    """``settings`` whose Customer.io is never at its production hosts beside a test gateway.

    cdp-python-sdk's ``CustomerIoConfig`` has no URL, so a script pointed at a sandbox would
    otherwise dual-write its test data to production (with real Track keys) or stall on its
    hosts. A host left at its default is read from ``env`` (``os.environ``) as
    ``ClientConfig.from_env`` reads it; one still missing refuses the config.
    """
    cio = settings.customer_io
    if cio is None or not settings.dual_write or not any(
            is_test_gateway(host) for host in settings.cdp_hosts):
        return settings
    env = os.environ if env is None else env
    production = CustomerIO(cio.site_id, cio.api_key, region=cio.region)
    urls: dict[str, str] = {}
    missing = []
    for name, variable in URL_VARIABLES.items():
        if getattr(cio, name) != getattr(production, name):
            continue
        value = (env.get(variable) or "").strip()
        if value:
            urls[name] = value
        else:
            missing.append(variable)
    if missing:
        raise CDPValidationError(
            "cdp_endpoint is a loopback or sandbox address, but Customer.io would be written "
            f"at its production hosts: set {' and '.join(missing)} (`opencdp sandbox "
            "--print-env` prints them) or pass CustomerIoConfig(track_url=..., app_url=...)",
            "customer_io")
    try:
        found = dataclasses.replace(cio, track_url=urls.get("track_url", cio.track_url),
                                    app_url=urls.get("app_url", cio.app_url))
    except ConfigurationError as exc:
        names = " / ".join(URL_VARIABLES[name] for name in urls)
        raise CDPValidationError(f"environment variable {names}: {exc}", "customer_io") from None
    return settings.with_options(customer_io=found)


def client_options(config: CDPConfig) -> dict[str, Any]:
    """The ``opencdp.Client`` options a ``CDPConfig`` stands for.

    ``fail_on_exception`` also makes calls wait for the gateway's answer (``delivery=
    "blocking"``, up to ``timeout_ms``), since raising its refusal is what it promises. The
    default endpoint keeps the official fallbacks; a custom one has only those you list.
    """
    timeout = config.timeout_ms / 1000.0
    options: dict[str, Any] = {
        "cdp_api_key": config.cdp_api_key,
        "timeout": timeout,
        "debug": config.debug,
        "fail_on_exception": config.fail_on_exception,
        "delivery": "blocking" if config.fail_on_exception else "background",
        "blocking_timeout": timeout,
    }
    endpoint = _url(config.cdp_endpoint)
    if endpoint and endpoint != DEFAULT_CDP_ENDPOINT:
        options["cdp_endpoint"] = endpoint
    if config.cdp_fallback_endpoints is not None:
        options["cdp_fallback_endpoints"] = [
            _url(u) for u in config.cdp_fallback_endpoints if _url(u)]
    cio = config.customer_io
    if config.send_to_customer_io and cio is not None:
        options["send_to_customer_io"] = True
        options["customer_io"] = CustomerIO(cio.site_id, cio.api_key, region=cio.region or "us",
                                            track_url=cio.track_url, app_url=cio.app_url)
    else:
        options["send_to_customer_io"] = False
    return options


class CDPClient:
    """cdp-python-sdk's ``CDPClient``, same calls and errors, on opencdp's engine.

    ``options`` are any ``opencdp.Client`` options and win over those derived from
    ``config`` (``queue="sqlite:///cdp.db"`` for a durable outbox, ``retry=...``). The
    underlying client is ``self.client`` (``health()``, ``flush()``, dead letters).

    A call that only queues into memory runs on the caller's loop (microseconds); one that
    waits (a durable write, ``fail_on_exception``, a send, a ping) runs on a worker thread,
    so the event loop never blocks.
    """

    def __init__(self, config: CDPConfig, **options: Unpack[ClientOptions]) -> None:
        if not isinstance(config, CDPConfig):
            raise CDPValidationError(
                f"config must be a CDPConfig, not {type(config).__name__}", "config")
        self.config = config
        try:
            settings = ClientConfig(**{**client_options(config), **options})
            self.client = Client(local_customer_io(settings))
        except ConfigurationError as exc:
            raise CDPValidationError(str(exc), exc.option) from exc
        engine = self.client.engine
        if not engine.config.strict:
            engine.guards.relax(LENIENT)
        self._inline = not (engine.blocking or engine.outbox.durable
                            or engine.config.queue_full == "block")

    def __repr__(self) -> str:
        return f"CDPClient({self.config!r})"

    def _failed(self, error: CDPError, context: str) -> None:
        if self.config.fail_on_exception:
            raise error
        logger.error("%s: %s", context, error)

    async def _call(self, context: str, call: Callable[..., Any], *args: Any,
                    inline: bool = False, **kwargs: Any) -> Any:
        try:
            if inline and self._inline:
                return call(*args, **kwargs)
            return await asyncio.to_thread(call, *args, **kwargs)
        except ValidationError as exc:
            self._failed(CDPValidationError(str(exc), exc.field), context)
        except DeliveryError as exc:
            self._failed(CDPError(f"{context}: {exc}", exc.status), context)
        except OpenCDPError as exc:
            self._failed(CDPError(f"{context}: {exc}"), context)
        return None

    async def ping(self) -> bool:
        """True when the gateway answers its health ping with 200."""
        engine = self.client.engine
        gateway = Gateway(engine.config.cdp_hosts, engine.config.cdp_api_key)
        try:
            result = await asyncio.wrap_future(engine.dispatcher.submit(
                engine.dispatcher.exchange(engine.primary, gateway.probe())))
        except (OpenCDPError, RuntimeError) as exc:
            self._failed(CDPError(f"Ping failed: {exc}"), "Ping failed")
            return False
        status = result.status if isinstance(result, Response) else None
        if status == 200:
            return True
        self._failed(CDPError("Ping failed", status), "Ping failed")
        return False

    async def identify(self, identifier: str, properties: dict[str, Any] | None = None) -> None:
        """Queue an identify for both platforms; returns once it is queued (or, with
        ``fail_on_exception``, once the gateway accepted it)."""
        try:
            user_id, props = checks.identifier(identifier), checks.properties(properties)
        except CDPValidationError as exc:
            self._failed(exc, f"Identify validation failed for {identifier}")
            return
        await self._call(f"Error identifying user {user_id}", self.client.identify, user_id,
                         props, inline=True)

    async def track(self, identifier: str, event_name: str,
                    properties: dict[str, Any] | None = None) -> None:
        """Record an event, as cdp-python-sdk does: a refused argument is logged (or raised
        with ``fail_on_exception``), never sent."""
        try:
            user_id, name = checks.identifier(identifier), checks.event_name(event_name)
            props = checks.properties(properties)
        except CDPValidationError as exc:
            self._failed(exc, f"Track validation failed for {identifier} / {event_name}")
            return
        await self._call(f"Error tracking event {name}", self.client.track, user_id, name,
                         props, inline=True)

    async def register_device(self, identifier: str,
                              params: DeviceRegistrationParameters) -> None:
        """Customer.io gets the device keyed by its push token (``fcm_token``), as its
        device API requires, not by ``device_id``."""
        try:
            user_id = checks.identifier(identifier)
            if not isinstance(params, DeviceRegistrationParameters):
                raise CDPValidationError("params must be DeviceRegistrationParameters", "params")
        except CDPValidationError as exc:
            self._failed(exc, f"Register device validation failed for {identifier}")
            return
        await self._call(
            "Error registering device", self.client.register_device, user_id,
            params.device_id, params.platform, fcm_token=params.fcm_token,
            apn_token=params.apn_token, name=params.name, os_version=params.os_version,
            model=params.model, app_version=params.app_version,
            last_active_at=params.last_active_at, attributes=params.attributes, inline=True)

    async def _send(self, channel: str, payload: BaseMessagePayload | WhatsAppPayload,
                    kind: type[Any], context: str) -> dict[str, Any] | None:
        if not isinstance(payload, kind):
            self._failed(CDPValidationError(f"payload must be {kind.__name__}", "payload"),
                         context)
            return None
        try:
            if isinstance(payload, EmailPayload):
                checks.check_attachments(payload.attachments)
            elif isinstance(payload, WhatsAppPayload):
                checks.check_whatsapp(payload)
        except CDPValidationError as exc:
            self._failed(exc, f"{context}: validation failed")
            return None
        fields = payload.model_dump(exclude_none=True)
        result: dict[str, Any] | None = await self._call(
            context, getattr(self.client, f"send_{channel}"), **fields)
        return result

    async def send_email(self, payload: EmailPayload) -> None:
        """Send a transactional email through OpenCDP only."""
        await self._send("email", payload, EmailPayload, "Error sending email")

    async def send_push(self, payload: PushPayload) -> None:
        """Send a transactional push through OpenCDP only."""
        await self._send("push", payload, PushPayload, "Error sending push")

    async def send_sms(self, payload: SmsPayload) -> None:
        """Send a transactional SMS through OpenCDP only."""
        await self._send("sms", payload, SmsPayload, "Error sending SMS")

    async def send_whatsapp(self, payload: WhatsAppPayload) -> dict[str, Any] | None:
        """The gateway's acknowledgement (queued, not delivered), or None on failure."""
        return await self._send("whatsapp", payload, WhatsAppPayload, "Error sending WhatsApp")

    async def close(self) -> None:
        """Drain what is queued (up to ``shutdown_timeout``) and stop the engine. Unlike the
        original, a closed client takes no more calls: create one per process and close it
        at shutdown."""
        await asyncio.to_thread(self.client.close)

    async def __aenter__(self) -> CDPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
