"""Options from environment variables, so a deployed app is configured without code.

``ENVIRONMENT`` is the one table of variables; ``ClientConfig.from_env`` reads it through
``read_environment`` and docs/options.md lists it. Values are parsed strictly
(``OPENCDP_DEBUG=maybe`` is refused, not read as true) and a bad value raises
``ConfigurationError`` naming the variable. A keyword given to ``from_env`` wins over its
variable, which is then not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import ConfigurationError
from .settings import CustomerIO, check_option

__all__ = ["ENVIRONMENT", "Variable", "parse_flag", "read_environment"]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class Variable(NamedTuple):
    name: str
    option: str
    kind: str
    """``text``, ``flag``, ``number``, ``list`` (comma-separated; empty means none)."""


ENVIRONMENT: tuple[Variable, ...] = (
    Variable("CDP_API_KEY", "cdp_api_key", "text"),
    Variable("OPENCDP_ENDPOINT", "cdp_endpoint", "text"),
    Variable("OPENCDP_FALLBACK_ENDPOINTS", "cdp_fallback_endpoints", "list"),
    Variable("OPENCDP_QUEUE_URL", "queue", "text"),
    Variable("OPENCDP_DURABILITY", "durability", "text"),
    Variable("OPENCDP_DEBUG", "debug", "flag"),
    Variable("OPENCDP_SEND", "send", "flag"),
    Variable("OPENCDP_SEND_TO_CUSTOMER_IO", "send_to_customer_io", "flag"),
    Variable("OPENCDP_STRICT", "strict", "flag"),
    Variable("OPENCDP_SILENCE", "silence", "list"),
    Variable("OPENCDP_TIMEOUT", "timeout", "number"),
    Variable("OPENCDP_SHUTDOWN_TIMEOUT", "shutdown_timeout", "number"),
    Variable("OPENCDP_PROXY", "proxy", "text"),
    Variable("OPENCDP_TLS_CA_FILE", "tls_ca_file", "text"),
    Variable("CUSTOMERIO_SITE_ID", "customer_io", "text"),
    Variable("CUSTOMERIO_TRACK_API_KEY", "customer_io", "text"),
    Variable("CUSTOMERIO_API_KEY", "customer_io", "text"),
    Variable("CUSTOMERIO_APP_API_KEY", "customer_io", "text"),
    Variable("CUSTOMERIO_REGION", "customer_io", "text"),
    Variable("CUSTOMERIO_TRACK_URL", "customer_io", "text"),
    Variable("CUSTOMERIO_APP_URL", "customer_io", "text"),
)


def parse_flag(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigurationError(
        f"environment variable {name} must be one of {', '.join(_TRUE + _FALSE)}, got {raw!r}",
        option=name)


def _parse(variable: Variable, raw: str) -> Any:
    if variable.option == "send_to_customer_io" and raw.strip().lower() == "hold":
        return "hold"  # phase 3 of a migration: see docs/hold.md
    if variable.kind == "flag":
        return parse_flag(variable.name, raw)
    if variable.kind == "list":
        return [item.strip() for item in raw.split(",") if item.strip()]
    if variable.kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise ConfigurationError(
                f"environment variable {variable.name} must be a number of seconds, got {raw!r}",
                option=variable.name) from None
    return raw.strip()


def _checked(variable: Variable, value: Any) -> Any:
    label = f"environment variable {variable.name}"
    try:
        return check_option(variable.option, value, label)
    except ConfigurationError as exc:
        raise ConfigurationError(str(exc), option=variable.name, code=exc.code) from None


def read_environment(env: Mapping[str, str], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The options the environment sets, checked; variables of overridden options are skipped."""
    options: dict[str, Any] = {}
    for variable in ENVIRONMENT:
        if variable.option == "customer_io" or variable.option in overrides:
            continue
        raw = env.get(variable.name)
        if raw is None or (not raw.strip() and variable.kind != "list"):
            continue
        value = _parse(variable, raw)
        if variable.option == "silence":
            value = set(value)
        _checked(variable, value)
        options[variable.option] = value
    if "cdp_api_key" not in options and "cdp_api_key" not in overrides:
        raise ConfigurationError("environment variable CDP_API_KEY is missing or empty",
                                 option="CDP_API_KEY")
    if "customer_io" not in overrides:
        cio = _customer_io(env)
        if cio is not None:
            options["customer_io"] = cio
    if options.get("send_to_customer_io") and "customer_io" not in options and (
            overrides.get("customer_io") is None):
        raise ConfigurationError(
            "environment variable OPENCDP_SEND_TO_CUSTOMER_IO is "
            f"{options['send_to_customer_io']!r} but Customer.io is not "
            "configured: set CUSTOMERIO_SITE_ID and CUSTOMERIO_TRACK_API_KEY (or pass "
            "customer_io=CustomerIO(...))", option="OPENCDP_SEND_TO_CUSTOMER_IO")
    return options


def _customer_io(env: Mapping[str, str]) -> CustomerIO | None:
    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value and value.strip() else None

    site = get("CUSTOMERIO_SITE_ID")
    key_name = "CUSTOMERIO_TRACK_API_KEY" if get("CUSTOMERIO_TRACK_API_KEY") else (
        "CUSTOMERIO_API_KEY")
    track_key = get(key_name)
    region = get("CUSTOMERIO_REGION") or "us"
    if region.lower() not in ("us", "eu"):
        raise ConfigurationError(
            f"environment variable CUSTOMERIO_REGION must be 'us' or 'eu', got {region!r}",
            option="CUSTOMERIO_REGION")
    urls = {name: get(name) for name in ("CUSTOMERIO_TRACK_URL", "CUSTOMERIO_APP_URL")}
    if site and not track_key:
        raise ConfigurationError(
            "CUSTOMERIO_SITE_ID is set but CUSTOMERIO_TRACK_API_KEY (or CUSTOMERIO_API_KEY) "
            "is missing", option="CUSTOMERIO_TRACK_API_KEY")
    if track_key and not site:
        raise ConfigurationError(f"{key_name} is set but CUSTOMERIO_SITE_ID is missing",
                                 option="CUSTOMERIO_SITE_ID")
    if not site:
        for name, url in urls.items():
            if url:
                raise ConfigurationError(
                    f"{name} is set but CUSTOMERIO_SITE_ID and CUSTOMERIO_TRACK_API_KEY are "
                    "missing; set them to dual-write to Customer.io", option=name)
        return None
    assert track_key is not None
    app_key = get("CUSTOMERIO_APP_API_KEY")
    checks = [(key_name, "CustomerIO api_key", track_key)]
    if app_key:
        checks.append(("CUSTOMERIO_APP_API_KEY", "CustomerIO app_api_key", app_key))
    for name, _, value in checks:
        _checked(Variable(name, "cdp_api_key", "text"), value)
    for name, url in urls.items():
        if url:
            try:
                CustomerIO(site, track_key, region=region, **{
                    name.removeprefix("CUSTOMERIO_").lower(): url})
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"environment variable {name}: {exc}", option=name, code=exc.code
                ) from None
    return CustomerIO(
        site, track_key, region=region, app_api_key=app_key,
        track_url=urls["CUSTOMERIO_TRACK_URL"], app_url=urls["CUSTOMERIO_APP_URL"],
    )
