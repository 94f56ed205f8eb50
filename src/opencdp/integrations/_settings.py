"""Options from a framework's settings mapping (Django's ``OPENCDP``, Flask's
``app.config["OPENCDP"]``, the ``lifespan(...)`` and Celery ``OpenCDP(app, ...)`` keywords)
merged over the environment, as plain data, with the integrations' defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..config import ClientConfig
from ..errors import ConfigurationError

__all__ = ["PROCESS_SILENCE", "config_from_mapping"]

PROCESS_SILENCE = frozenset({"OCDP115"})
"""Silenced by default in the processes the integrations serve. OCDP115 (track before
identify) judges one process, and a web worker or a Celery child almost never identified the
person it tracks: the signup request did, in another process or an earlier request. Silenced,
it is still counted in ``health().guards``. A ``silence`` option in the settings or
``OPENCDP_SILENCE`` in the environment (even empty) replaces this default."""


def config_from_mapping(settings: Any, where: str) -> ClientConfig:
    """``ClientConfig.from_env(**settings)``: the settings win, the environment fills in the
    rest, ``PROCESS_SILENCE`` unless either says ``silence``. Nested options may be dicts
    (``"customer_io": {"site_id": ..., "api_key": ...}``); an error names the setting it is
    about (``settings.OPENCDP['retry']: ...``)."""
    if settings is None:
        settings = {}
    if isinstance(settings, ClientConfig):
        return settings
    if not isinstance(settings, Mapping):
        raise ConfigurationError(
            f"{where} must be a dict of Client options, not {type(settings).__name__}")
    options = dict(settings)
    if "silence" not in options and "OPENCDP_SILENCE" not in os.environ:
        options["silence"] = PROCESS_SILENCE
    try:
        return ClientConfig.from_env(**options)
    except ConfigurationError as exc:
        option = exc.option.split(".", 1)[0] if exc.option else None
        at = f"{where}[{option!r}]" if option and option in settings else where
        raise ConfigurationError(f"{at}: {exc}", option=exc.option, code=exc.code) from None
