"""Status codes and bodies from hand-built snapshots; path matching; bad sources."""

from __future__ import annotations

import pytest

from opencdp.errors import ConfigurationError
from opencdp.health import (
    DestinationHealth,
    Health,
    health_asgi_app,
    health_wsgi_app,
    render,
)
from opencdp.redaction import scrub


def dest(name: str, state: str = "CLOSED", **kw: object) -> DestinationHealth:
    values: dict[str, object] = {
        "name": name, "circuit_state": state, "failure_count": 0, "last_failure": None,
        "last_failure_reason": None, "pending": 0, "in_flight": 0, "oldest_pending_age": None,
        "dead_letters": 0, "dropped": {}, "rate_limit": {}, "requests": 0, "delivered": 0,
        "retried": 0, "failed": 0, "avg_latency_ms": None,
    }
    values.update(kw)
    return DestinationHealth(**values)  # type: ignore[arg-type]


def health(opencdp: str, customerio: str, status: str) -> Health:
    return Health(status=status,  # type: ignore[arg-type]
                  destinations={"opencdp": dest("opencdp", opencdp),
                                "customerio": dest("customerio", customerio)},
                  guards={"OCDP101": 2}, idempotency_suppressed=1, taken_at=1714564800.0)


@pytest.mark.parametrize(("cdp", "cio", "status", "overall", "cdp_code", "cio_code"), [
    ("CLOSED", "CLOSED", "ok", 200, 200, 200),
    ("CLOSED", "OPEN", "degraded", 200, 200, 503),
    ("CLOSED", "HALF_OPEN", "degraded", 200, 200, 503),
    ("OPEN", "CLOSED", "down", 503, 503, 200),
    ("HALF_OPEN", "CLOSED", "down", 503, 503, 200),
])
def test_status_codes(cdp: str, cio: str, status: str, overall: int, cdp_code: int,
                      cio_code: int) -> None:
    snap = health(cdp, cio, status)
    assert render(snap)[0] == overall
    assert render(snap, "opencdp")[0] == cdp_code
    assert render(snap, "customerio")[0] == cio_code


def test_bodies_have_the_guides_shape() -> None:
    code, body = render(health("CLOSED", "OPEN", "degraded"), "customerio")
    assert code == 503
    assert list(body) == ["customerio"]
    assert body["customerio"]["circuit_state"] == "OPEN"
    assert {"failure_count", "last_failure", "queue", "rate_limit", "counters"} <= set(
        body["customerio"])
    _, overall = render(health("CLOSED", "CLOSED", "ok"))
    assert overall["status"] == "ok"
    assert overall["guards"] == {"OCDP101": 2}
    assert overall["idempotency_suppressed"] == 1
    assert overall["taken_at"] == "2024-05-01T12:00:00Z"
    assert overall["opencdp"]["circuit_state"] == "CLOSED"


def test_unknown_destination_is_404() -> None:
    code, body = render(health("CLOSED", "CLOSED", "ok"), "segment")
    assert code == 404
    assert "customerio, opencdp" in body["message"]


def test_scrub_redacts_every_secret_but_ignores_short_ones() -> None:
    assert scrub("key abcd1234 and xyz", ["abcd1234", "xyz", None]) == "key <redacted> and xyz"
    assert scrub(None, ["abcd"]) is None


@pytest.mark.parametrize("factory", [health_asgi_app, health_wsgi_app])
def test_a_source_must_give_health(factory: object) -> None:
    with pytest.raises(ConfigurationError, match="callable returning Health"):
        factory(42)  # type: ignore[operator]
