"""Any value for any option: construction raises a ConfigurationError naming that option, or
gives a configuration whose every field has its documented type."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opencdp import (
    BreakerConfig,
    ClientConfig,
    ConfigurationError,
    CustomerIO,
    RateLimitConfig,
    RetryConfig,
)
from opencdp.environment import ENVIRONMENT
from opencdp.options import ClientOptions


def seconds(v: object, zero: bool = False) -> bool:
    return type(v) is float and math.isfinite(v) and (v >= 0 if zero else v > 0)


def count(v: object, low: int = 1, high: float = math.inf) -> bool:
    return type(v) is int and low <= v <= high


def flag(v: object) -> bool:
    return type(v) is bool


def url(v: object) -> bool:
    return type(v) is str and v.startswith(("http://", "https://")) and not v.endswith("/")


def optional(check: Any) -> Any:
    return lambda v: v is None or check(v)


DOCUMENTED: dict[str, Any] = {
    "cdp_api_key": lambda v: type(v) is str and v and v == v.strip() and " " not in v,
    "send_to_customer_io": optional(lambda v: flag(v) or v == "hold"),
    "hold_retention": seconds,
    "customer_io": optional(lambda v: isinstance(v, CustomerIO)),
    "debug": flag,
    "logger": optional(lambda v: callable(v.debug) and callable(v.error)),
    "max_concurrent_requests": lambda v: count(v, 1, 30),
    "timeout": seconds,
    "fail_on_exception": flag,
    "cdp_endpoint": optional(url),
    "cdp_fallback_endpoints": optional(lambda v: type(v) is tuple and all(map(url, v))),
    "delivery": lambda v: v in ("background", "blocking"),
    "queue": lambda v: type(v) is str and v.strip() == v and v,
    "max_queue_size": count,
    "queue_full": lambda v: v in ("block", "drop_oldest", "spill"),
    "queue_full_timeout": lambda v: seconds(v, zero=True),
    "durability": lambda v: v in ("durable", "batched"),
    "batch_size": count,
    "tls_ca_file": optional(lambda v: type(v) is str),
    "idempotency_ttl": lambda v: seconds(v, zero=True),
    "blocking_timeout": seconds,
    "retry": lambda v: type(v) is RetryConfig and all(
        seconds(x, zero=True) for x in (v.base_delay, v.max_delay, v.max_age))
    and count(v.max_attempts),
    "breaker": lambda v: type(v) is BreakerConfig and count(v.failure_threshold)
    and count(v.success_threshold) and seconds(v.reset_timeout, zero=True),
    "rate_limits": lambda v: type(v) is RateLimitConfig and all(
        x is None or seconds(x) for x in (v.opencdp, v.customerio)),
    "strict": flag,
    "silence": lambda v: type(v) is frozenset and all(type(c) is str for c in v),
    "schemas": lambda v: v is None,
    "email_hint": lambda v: v in ("off", "debug", "warning"),
    "max_event_names": count,
    "register_atexit": flag,
    "start_worker": flag,
    "shutdown_timeout": seconds,
    "max_queue_bytes": optional(count),
    "queue_timeout": seconds,
    "spill_path": optional(lambda v: type(v) is str and v.strip()),
    "send": flag,
    "on_error": optional(callable),
    "before_send": optional(callable),
    "proxy": optional(url),
    "trust_env": flag,
    "transport": lambda v: v is None,
}

SPECIAL = ["5", "yes", "false", "", " ", "memory", "sqlite:///x.db", "redis://:pw@h:1/0",
           "drop_oldest", "block", "blocking", "batched", "debug", "OCDP115", "Bearer abc1",
           "https://a.example/g", "https://a.example/g/v1", "http://127.0.0.1:9/g",
           "http://example.com/g", "socks5://p:1", "http://u:p@proxy:1", "ftp://x"]
values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(SPECIAL), st.lists(st.sampled_from(SPECIAL), max_size=3),
    st.tuples(st.sampled_from(SPECIAL)), st.frozensets(st.sampled_from(SPECIAL), max_size=2),
    st.dictionaries(st.sampled_from(["max_attempts", "base_delay", "customerio", "site_id",
                                     "api_key", "reset_timeout", "x"]),
                    st.one_of(st.integers(-1, 5), st.floats(), st.none(), st.text(max_size=3)),
                    max_size=3),
    st.builds(object), st.just(print), st.just(RetryConfig()), st.just(BreakerConfig()),
    st.just(CustomerIO("site", "key-1234")),
)
OPTIONS = sorted(DOCUMENTED)


def test_the_table_covers_every_option() -> None:
    assert set(DOCUMENTED) == {f.name for f in fields(ClientConfig)}
    assert set(DOCUMENTED) == set(ClientOptions.__annotations__)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(OPTIONS), values, min_size=1, max_size=4))
def test_any_value_is_refused_by_name_or_has_the_documented_type(
        drawn: dict[str, Any]) -> None:
    options = {"cdp_api_key": "key-1234", **drawn}
    try:
        config = ClientConfig(**options)
    except ConfigurationError as exc:
        assert exc.option in options, (exc.option, str(exc))
        assert exc.option in str(exc)
        return
    for name, check in DOCUMENTED.items():
        assert check(getattr(config, name)), (name, getattr(config, name))
    assert config.with_options() == config


VARIABLES = sorted({v.name for v in ENVIRONMENT})
"""A bad value is named by its variable; a missing partner (a site id without its key) by the
variable that is missing."""
ENV_VALUES = st.one_of(st.text(max_size=16), st.sampled_from(
    ["true", "no", "maybe", "5", "-1", "nan", "1e309", "", " , ", "https://a.example/g",
     "https://a.example/g/v1", "http://127.0.0.1:9", "sqlite:///x.db", "OCDP115,OCDP101",
     "eu", "Bearer abc1", "site-1", "key-1234"]))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(VARIABLES), ENV_VALUES,
                       min_size=1, max_size=4))
def test_any_environment_is_refused_by_variable_or_typed(env: dict[str, str]) -> None:
    environ = {"CDP_API_KEY": "key-1234", **env}
    try:
        config = ClientConfig.from_env(environ)
    except ConfigurationError as exc:
        assert exc.option in VARIABLES, (exc.option, str(exc))
        assert exc.option in str(exc)
        return
    for name, check in DOCUMENTED.items():
        assert check(getattr(config, name)), (name, getattr(config, name))
