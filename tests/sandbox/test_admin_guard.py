"""The admin API refuses what a web page can send (cross-site requests, DNS rebinding), and
the sandbox refuses to listen beyond loopback unless told to, before it binds anything."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from click.testing import CliRunner

from opencdp.cli import main
from opencdp.errors import ConfigurationError
from opencdp.sandbox import Sandbox, command, runner
from opencdp.sandbox.config import SandboxConfig

from .conftest import SITE, TRACK_KEY

FAULTS = orjson.dumps({"customerio": {"down": True}})


def _port(sandbox: Sandbox) -> int:
    port = urlsplit(sandbox.admin_url).port
    assert port is not None
    return port


def _down(sandbox: Sandbox) -> bool:
    return bool(sandbox.faults()["customerio"]["down"])


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1:1",
                                  "127.0.0.1", "10.0.0.1:{port}", "localhost.evil.example:{port}",
                                  "[::1]:1", "127.0.0.1:{port}x"])
def test_a_foreign_host_is_refused_on_every_admin_route(sandbox: Sandbox, host: str) -> None:
    host = host.format(port=_port(sandbox))
    with httpx.Client(base_url=sandbox.admin_url, headers={"Host": host}) as http:
        for method, path, body in [("GET", "/stats", None), ("GET", "", None),
                                   ("POST", "/faults", FAULTS), ("POST", "/reset", None),
                                   ("DELETE", "/faults", None)]:
            answer = http.request(method, path, content=body,
                                  headers={"Content-Type": "application/json"})
            assert answer.status_code == 403, (method, path)
            assert answer.json()["reason"] == "forbidden_host"
    assert not _down(sandbox)


@pytest.mark.parametrize("origin", ["http://evil.example", "https://evil.example:443", "null",
                                    "file://", "http://127.0.0.1.evil.example"])
def test_a_foreign_origin_is_refused(sandbox: Sandbox, origin: str) -> None:
    answer = httpx.post(f"{sandbox.admin_url}/faults", content=FAULTS,
                        headers={"Origin": origin, "Content-Type": "application/json"})
    assert answer.status_code == 403
    assert answer.json() == {"reason": "forbidden_origin", "error": answer.json()["error"]}
    assert not _down(sandbox)


def test_the_testers_cross_site_text_plain_post_is_refused(sandbox: Sandbox) -> None:
    answer = httpx.post(f"{sandbox.admin_url}/faults", content=FAULTS,
                        headers={"Content-Type": "text/plain", "Origin": "http://evil.example",
                                 "Host": f"evil.example:{_port(sandbox)}"})
    assert answer.status_code == 403
    assert not _down(sandbox)


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x", None])
def test_an_admin_post_that_is_not_json_is_refused(sandbox: Sandbox, kind: str | None) -> None:
    headers = {} if kind is None else {"Content-Type": kind}
    answer = httpx.post(f"{sandbox.admin_url}/faults", content=FAULTS, headers=headers)
    if kind is None:  # httpx sends no Content-Type for raw bytes
        assert "content-type" not in answer.request.headers
    assert answer.status_code == 415
    assert answer.json()["reason"] == "unsupported_media_type"
    assert not _down(sandbox)


def test_loopback_names_origins_and_json_are_served(sandbox: Sandbox) -> None:
    port = _port(sandbox)
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        answer = httpx.get(f"{sandbox.admin_url}/stats", headers={"Host": host})
        assert answer.status_code == 200, host
    answer = httpx.post(f"{sandbox.admin_url}/faults", content=FAULTS,
                        headers={"Content-Type": "application/json; charset=utf-8",
                                 "Origin": "http://localhost:3000"})
    assert answer.status_code == 200
    assert _down(sandbox)
    assert httpx.post(f"{sandbox.admin_url}/reset").status_code == 200  # no body, no type
    assert not _down(sandbox)


def test_the_platform_routes_do_not_check_the_host(sandbox: Sandbox) -> None:
    answer = httpx.put(f"{sandbox.track_url}/api/v1/customers/1", json={},
                       auth=(SITE, TRACK_KEY), headers={"Host": "api.customer.io"})
    assert answer.status_code == 200


# -- binding -----------------------------------------------------------------------------------


@pytest.fixture
def no_bind(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fail the test if anything binds; what would have been bound is recorded."""
    tried: list[Any] = []

    def bind(host: str, port: int, what: str) -> Any:
        tried.append((host, port))
        raise AssertionError(f"bound {host}:{port}")

    monkeypatch.setattr(runner, "bind", bind)
    return tried


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.1", "example.com"])
def test_the_command_refuses_a_non_loopback_host_without_the_flag(no_bind: list[Any],
                                                                  host: str) -> None:
    result = CliRunner().invoke(main, ["sandbox", "--host", host, "--port", "0"])
    assert result.exit_code == 2
    assert "not a loopback address" in result.output and "--allow-remote" in result.output
    assert no_bind == []


def test_the_command_warns_when_remote_is_allowed(monkeypatch: pytest.MonkeyPatch,
                                                  no_bind: list[Any]) -> None:
    built: list[SandboxConfig] = []

    class Stopped(Exception):
        pass

    def server(config: SandboxConfig, **_: Any) -> Any:
        built.append(config)
        raise Stopped

    monkeypatch.setattr(command, "SandboxServer", server)
    result = CliRunner().invoke(main, ["sandbox", "--host", "0.0.0.0", "--allow-remote"])
    assert isinstance(result.exception, Stopped)
    assert "WARNING: --allow-remote" in result.output
    assert [(c.host, c.allow_remote) for c in built] == [("0.0.0.0", True)]
    assert no_bind == []


def test_the_python_api_refuses_a_non_loopback_host_before_binding(no_bind: list[Any]) -> None:
    with pytest.raises(ConfigurationError, match="allow_remote=True"):
        Sandbox(host="0.0.0.0")
    with pytest.raises(ConfigurationError, match="not a loopback address"):
        SandboxConfig(host="192.168.1.10")
    assert Sandbox(host="0.0.0.0", allow_remote=True).config.allow_remote is True
    for host in ("127.0.0.1", "::1", "localhost", "127.8.9.10"):
        assert SandboxConfig(host=host).host == host
    assert no_bind == []
