"""The configuration and request models of ``cdp-python-sdk`` 0.2.0, without pydantic.

Same names, fields, defaults and aliases (``deviceId``, ``fcmToken``, ``from``, ...), built
by keyword and checked at construction, as the originals were. A malformed model raises
``CDPValidationError`` (a ``ValueError``, as pydantic's error was) naming the field. Keys never
appear in a ``repr``.
"""

from __future__ import annotations

import base64
import os
import sys
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal

from .errors import CDPValidationError

__all__ = [
    "DEFAULT_CDP_ENDPOINT",
    "BaseMessagePayload",
    "CDPConfig",
    "CustomerIoConfig",
    "DeviceRegistrationParameters",
    "EmailPayload",
    "Identifiers",
    "PushPayload",
    "SmsPayload",
    "WhatsAppPayload",
]

DEFAULT_CDP_ENDPOINT = "https://api.opencdp.io/gateway/data-gateway"


def _plain(expected: Any, value: Any) -> bool:
    if expected is bool or isinstance(value, bool):
        return expected is bool and isinstance(value, bool)
    return expected in (int, str, dict) and isinstance(value, expected)


def _check(owner: str, name: str, hint: Any, value: Any) -> Any:
    """``value`` if it fits ``hint`` (nested models may be given as dicts), else a named error."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        problems = []
        for arm in typing.get_args(hint):
            if arm is type(None):
                continue
            try:
                return _check(owner, name, arm, value)
            except CDPValidationError as exc:
                problems.append(str(exc))
        raise CDPValidationError(problems[0] if len(problems) == 1 else
                                 f"{owner}.{name} has the wrong type "
                                 f"({type(value).__name__})", name)
    if origin is Literal:
        if value in typing.get_args(hint):
            return value
        allowed = ", ".join(repr(a) for a in typing.get_args(hint))
        raise CDPValidationError(f"{owner}.{name} must be one of {allowed}, got {value!r}", name)
    expected = origin or hint
    if isinstance(expected, type) and issubclass(expected, _Model):
        if isinstance(value, dict):
            return expected(**value)
        if isinstance(value, expected):
            return value
    elif _plain(expected, value):
        return value
    elif expected is list and isinstance(value, list):
        item = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        return [_check(owner, f"{name}[{i}]", item, v) for i, v in enumerate(value)]
    raise CDPValidationError(f"{owner}.{name} must be {getattr(expected, '__name__', hint)}, "
                             f"not {type(value).__name__}", name)


class _Model:
    """Keyword construction with aliases and type checks; ``model_dump`` as pydantic's."""

    _aliases: ClassVar[dict[str, str]] = {}
    _forbid_extra: ClassVar[bool] = False
    _by_name: ClassVar[bool] = True

    def __init__(self, **values: Any) -> None:
        owner = type(self).__name__
        for alias, name in self._aliases.items():
            if alias in values:
                values[name] = values.pop(alias)
        hints = typing.get_type_hints(type(self), vars(sys.modules[__name__]))
        known = {f.name for f in fields(self)}  # type: ignore[arg-type]
        extra = sorted(set(values) - known)
        if extra and self._forbid_extra:
            raise CDPValidationError(f"{owner} does not take {', '.join(extra)}", extra[0])
        for spec in fields(self):  # type: ignore[arg-type]
            if spec.name in values:
                value = values[spec.name]
            elif spec.default is not MISSING:
                value = spec.default
            elif spec.default_factory is not MISSING:
                value = spec.default_factory()
            else:
                raise CDPValidationError(f"{owner}.{spec.name} is required", spec.name)
            setattr(self, spec.name, _check(owner, spec.name, hints[spec.name], value))
        self._validate()

    def _validate(self) -> None:
        """Checks across fields, run after construction."""

    def model_dump(self, *, by_alias: bool = False, exclude_none: bool = False) -> dict[str, Any]:
        wire = {name: alias for alias, name in self._aliases.items()} if by_alias else {}
        out: dict[str, Any] = {}
        for spec in fields(self):  # type: ignore[arg-type]
            value = getattr(self, spec.name)
            if value is None and exclude_none:
                continue
            if isinstance(value, _Model):
                value = value.model_dump(by_alias=by_alias, exclude_none=exclude_none)
            out[wire.get(spec.name, spec.name)] = value
        return out


@dataclass(init=False, kw_only=True)
class CustomerIoConfig(_Model):
    """Customer.io Track credentials. ``track_url``/``app_url`` (opencdp additions) point
    the dual-write at another host, such as a proxy or the sandbox."""

    site_id: str
    api_key: str = field(repr=False)
    region: Literal["us", "eu"] | None = "us"
    track_url: str | None = None
    app_url: str | None = None


@dataclass(init=False, kw_only=True)
class CDPConfig(_Model):
    """cdp-python-sdk's configuration, field for field; ``CDPClient(config)`` builds an
    opencdp ``Client`` from it (``customer_io`` turns dual-write on)."""

    cdp_api_key: str = field(repr=False)
    cdp_endpoint: str = DEFAULT_CDP_ENDPOINT
    cdp_fallback_endpoints: list[str] | None = None
    timeout_ms: int = 10000
    fail_on_exception: bool = False
    send_to_customer_io: bool = False
    customer_io: CustomerIoConfig | None = None
    debug: bool = False

    def _validate(self) -> None:
        if self.timeout_ms <= 0:
            raise CDPValidationError("CDPConfig.timeout_ms must be positive", "timeout_ms")


@dataclass(init=False, kw_only=True)
class Identifiers(_Model):
    """Who a transactional message goes to: ``id`` or ``email`` (one is required)."""

    id: str | None = None
    email: str | None = None
    cdp_id: str | None = None


@dataclass(init=False, kw_only=True)
class BaseMessagePayload(_Model):
    """What every transactional send shares: the recipient and the template."""

    identifiers: Identifiers
    transactional_message_id: str | None = None
    message_data: dict[str, Any] | None = None
    send_at: int | None = None
    send_to_unsubscribed: bool | None = None
    tracked: bool | None = None
    disable_css_preprocessing: bool | None = None
    headers: str | None = None
    disable_message_retention: bool | None = None
    queue_draft: bool | None = None


@dataclass(init=False, kw_only=True)
class EmailPayload(BaseMessagePayload):
    """A transactional email, as cdp-python-sdk builds it (``from`` is ``from_`` here)."""

    _aliases: ClassVar[dict[str, str]] = {"from": "from_"}

    to: str
    from_: str | None = None
    subject: str | None = None
    body: str | None = None
    body_plain: str | None = None
    reply_to: str | None = None
    attachments: dict[str, str] | None = None

    def attach(self, filename: str, data: bytes | str, encode: bool = True) -> None:
        """Bytes are always base64-encoded; text too unless ``encode=False`` (already base64)."""
        if isinstance(data, str):
            content = base64.b64encode(data.encode()).decode() if encode else data
        else:
            content = base64.b64encode(data).decode()
        if self.attachments is None:
            self.attachments = {}
        self.attachments[filename] = content

    def attach_file(self, path: str | os.PathLike[str], filename: str | None = None) -> None:
        """Attach a file's bytes under ``filename`` (its base name by default)."""
        with open(path, "rb") as f:
            self.attach(filename or os.path.basename(path), f.read())


@dataclass(init=False, kw_only=True)
class PushPayload(BaseMessagePayload):
    """A transactional push notification."""

    title: str | None = None
    body: str | None = None


@dataclass(init=False, kw_only=True)
class SmsPayload(BaseMessagePayload):
    """A transactional SMS (``from`` is ``from_`` here)."""

    _aliases: ClassVar[dict[str, str]] = {"from": "from_"}

    to: str | None = None
    from_: str | None = None
    body: str | None = None


@dataclass(init=False, kw_only=True)
class WhatsAppPayload(_Model):
    """Only the fields the gateway's WhatsApp endpoint accepts; any other key is refused."""

    _forbid_extra: ClassVar[bool] = True

    identifiers: Identifiers
    transactional_message_id: str | int
    to: str | None = None
    template_variables: dict[str, dict[str, Any]] | None = None
    message_data: dict[str, Any] | None = None


@dataclass(init=False, kw_only=True)
class DeviceRegistrationParameters(_Model):
    """Built with the wire names (``deviceId``, ``fcmToken``) or the Python ones."""

    _aliases: ClassVar[dict[str, str]] = {
        "deviceId": "device_id", "fcmToken": "fcm_token", "osVersion": "os_version",
        "apnToken": "apn_token", "appVersion": "app_version",
    }

    device_id: str
    platform: Literal["android", "ios", "web"]
    fcm_token: str = field(repr=False)
    name: str | None = None
    os_version: str | None = None
    model: str | None = None
    apn_token: str | None = field(default=None, repr=False)
    app_version: str | None = None
    last_active_at: str | None = None
    attributes: dict[str, Any] | None = None
