"""Options from a framework's settings mapping (Django's ``OPENCDP``, Flask's
``app.config["OPENCDP"]``) merged over the environment, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import ClientConfig
from ..errors import ConfigurationError

__all__ = ["config_from_mapping"]


def config_from_mapping(settings: Any, where: str) -> ClientConfig:
    """``ClientConfig.from_env(**settings)``: the settings win, the environment fills in the
    rest. Nested options may be dicts (``"customer_io": {"site_id": ..., "api_key": ...}``);
    an error names the setting it is about (``settings.OPENCDP['retry']: ...``)."""
    if settings is None:
        settings = {}
    if isinstance(settings, ClientConfig):
        return settings
    if not isinstance(settings, Mapping):
        raise ConfigurationError(
            f"{where} must be a dict of Client options, not {type(settings).__name__}")
    try:
        return ClientConfig.from_env(**settings)
    except ConfigurationError as exc:
        option = exc.option.split(".", 1)[0] if exc.option else None
        at = f"{where}[{option!r}]" if option and option in settings else where
        raise ConfigurationError(f"{at}: {exc}", option=exc.option, code=exc.code) from None
