"""The Python API: start/stop, URLs, and the admin calls it wraps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from opencdp.errors import ConfigurationError
from opencdp.sandbox import Sandbox

from .conftest import CDP_KEY


def test_urls_have_the_fixed_keys(sandbox: Any) -> None:
    """The URL dict carries the start-up line's keys, and the gateway ends in its prefix."""
    assert set(sandbox.urls) >= {"opencdp", "customerio_track", "customerio_app", "admin",
                                 "ca_file"}
    assert sandbox.opencdp_url.endswith("/gateway/data-gateway")
    assert sandbox.admin_url.endswith("/_sandbox")
    assert sandbox.track_url.startswith("http://127.0.0.1:")
    assert sandbox.ca_file is None


def test_stats_have_every_required_key(sandbox: Any) -> None:
    stats = sandbox.stats()
    for service in ("opencdp", "customerio"):
        assert {"requests", "people", "events", "devices", "sends", "duplicates", "rejected",
                "faults"} <= set(stats[service])


def test_person_round_trip_and_404(sandbox: Any, gateway: httpx.Client) -> None:
    r = gateway.post("/v1/persons/identify", json={"identifier": "u/1", "properties": {"a": 1}})
    assert r.status_code == 200
    person = sandbox.person("opencdp", "u/1")
    assert person is not None
    assert person["attributes"] == {"a": 1}
    assert person["suppressed"] is False
    assert sandbox.person("opencdp", "nobody") is None
    assert [p["id"] for p in sandbox.people("opencdp")] == ["u/1"]


def test_reset_empties_the_store(sandbox: Any, gateway: httpx.Client) -> None:
    gateway.post("/v1/persons/identify", json={"identifier": "u1"})
    assert sandbox.stats()["opencdp"]["people"] == 1
    sandbox.reset()
    assert sandbox.stats()["opencdp"]["people"] == 0
    assert sandbox.stats()["opencdp"]["requests"] == 0


def test_faults_round_trip_and_bad_settings_raise(sandbox: Any) -> None:
    current = sandbox.set_faults({"customerio": {"error_rate": 0.2, "statuses": [503]}})
    assert current["customerio"]["error_rate"] == 0.2
    assert sandbox.faults()["customerio"]["statuses"] == [503]
    assert sandbox.faults()["opencdp"]["error_rate"] == 0.0
    with pytest.raises(ConfigurationError):
        sandbox.set_faults({"customerio": {"error_rate": 2}})
    with pytest.raises(ConfigurationError):
        sandbox.set_faults({"elsewhere": {}})
    sandbox.set_faults({"customerio": None})
    assert sandbox.faults()["customerio"]["error_rate"] == 0.0


def test_custom_credentials_are_the_only_ones_accepted() -> None:
    with Sandbox(port=0, cdp_key="other-key") as sb, httpx.Client() as c:
        ok = c.post(f"{sb.opencdp_url}/v1/persons/identify", json={"identifier": "x"},
                    headers={"Authorization": "other-key"})
        bad = c.post(f"{sb.opencdp_url}/v1/persons/identify", json={"identifier": "x"},
                     headers={"Authorization": CDP_KEY})
    assert (ok.status_code, bad.status_code) == (200, 401)


def test_bad_options_raise_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Sandbox(port=70000)
    with pytest.raises(ConfigurationError):
        Sandbox(cdp_key="")
    with pytest.raises(ConfigurationError):
        Sandbox(faults={"customerio": {"statuses": [404]}})


def test_stop_is_idempotent_and_repr_hides_keys() -> None:
    sb = Sandbox(port=0, track_key="super-secret-track").start()
    assert "super-secret-track" not in repr(sb)
    assert "super-secret-track" not in repr(sb.config)
    sb.stop()
    sb.stop()
    assert sb.urls == {}


def test_unknown_service_raises(sandbox: Any) -> None:
    with pytest.raises(ConfigurationError):
        sandbox.person("segment", "1")


def test_oversized_bodies_are_refused_without_buffering_them_all(sandbox: Any) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"x" * (1024 * 1024)

    r = httpx.post(f"{sandbox.track_url}/api/v2/batch", content=chunks(),
                   auth=("sandbox-site", "sandbox-track-key"))
    assert r.status_code == 413


@pytest.mark.parametrize("options", [
    {"strict": "yes"}, {"read_timeout": 0}, {"read_timeout": True}, {"rate_limit_rps": -1},
])
def test_bad_strict_and_timeout_options_raise(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Sandbox(**options)


def test_the_rate_limit_is_off_by_default_and_100_in_strict_mode() -> None:
    assert Sandbox().config.effective_rate_limit == 0
    assert Sandbox(strict=True).config.effective_rate_limit == 100
    assert Sandbox(strict=True, rate_limit_rps=0).config.effective_rate_limit == 0
    assert Sandbox(rate_limit_rps=5).config.effective_rate_limit == 5
    assert "strict=True" in Sandbox(strict=True).config.describe()


def test_admin_helpers_list_what_arrived(sandbox: Any) -> None:
    auth = ("sandbox-site", "sandbox-track-key")
    with httpx.Client(base_url=sandbox.track_url, auth=auth) as c:
        c.put("/api/v1/customers/1", json={})
        c.post("/api/v1/segments/3/add_customers", json={"ids": ["1"]})
        c.post("/api/v1/forms/f/submit", json={"data": {"id": "2"}})
        c.post("/api/v1/metrics", json={"delivery_id": "d", "metric": "opened"})
        c.post("/api/v2/entity", json={"type": "object", "action": "identify",
                                       "identifiers": {"object_type_id": "1",
                                                       "object_id": "o"}})
        c.post("/api/v1/customers/2/suppress")
    assert sandbox.segments() == {"3": ["1"]}
    assert sandbox.forms() == [{"form_id": "f", "data": {"id": "2"}}]
    assert [d["metric"] for d in sandbox.deliveries()] == ["opened"]
    assert [o["object_id"] for o in sandbox.objects()] == ["o"]
    assert [p["id"] for p in sandbox.suppressed()] == ["2"]
