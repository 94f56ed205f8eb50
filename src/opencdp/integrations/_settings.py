"""Options from a framework's settings mapping (Django's ``OPENCDP``, Flask's
``app.config["OPENCDP"]``) merged over the environment, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import BreakerConfig, ClientConfig, CustomerIO, RateLimitConfig, RetryConfig
from ..errors import ConfigurationError

__all__ = ["config_from_mapping"]

_NESTED: dict[str, Any] = {
    "retry": RetryConfig,
    "breaker": BreakerConfig,
    "rate_limits": RateLimitConfig,
}


def config_from_mapping(settings: Any, where: str) -> ClientConfig:
    """``ClientConfig.from_env(**settings)``: the settings win, the environment fills in the
    rest (``CDP_API_KEY``, ``CUSTOMERIO_*``, ``OPENCDP_QUEUE_URL``). Nested options may be
    given as dicts (``"customer_io": {"site_id": ..., "api_key": ...}``)."""
    if settings is None:
        settings = {}
    if isinstance(settings, ClientConfig):
        return settings
    if not isinstance(settings, Mapping):
        raise ConfigurationError(
            f"{where} must be a dict of Client options, not {type(settings).__name__}")
    options = dict(settings)
    cio = options.get("customer_io")
    if isinstance(cio, Mapping):
        try:
            options["customer_io"] = CustomerIO(**cio)
        except TypeError as exc:
            raise ConfigurationError(f"{where}['customer_io']: {exc}") from None
    for name, kind in _NESTED.items():
        if isinstance(options.get(name), Mapping):
            try:
                options[name] = kind(**options[name])
            except TypeError as exc:
                raise ConfigurationError(f"{where}[{name!r}]: {exc}") from None
    try:
        return ClientConfig.from_env(**options)
    except TypeError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
