"""The default client (``opencdp.init``, then ``opencdp.track``): the same ``Client``, a named
error before ``init``, one client per process however many threads race, and a script that
exits without ``close()`` still delivers everything (the client's own atexit hook)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opencdp
from opencdp.testing import sandbox_options


@pytest.fixture(autouse=True)
def _no_default_client() -> Iterator[None]:
    opencdp.close()
    yield
    opencdp.close(timeout=2)


def test_calls_before_init_raise_a_named_error() -> None:
    with pytest.raises(opencdp.NotInitializedError, match=r"opencdp\.init"):
        opencdp.track("u1", "signed_up")
    with pytest.raises(opencdp.NotInitializedError):
        opencdp.get_client()
    assert isinstance(opencdp.NotInitializedError("x"), opencdp.OpenCDPError)
    assert opencdp.close() is True  # nothing to close


def test_module_calls_are_the_clients_calls(sandbox: Any) -> None:
    client = opencdp.init(**sandbox_options(sandbox))
    assert opencdp.get_client() is client
    opencdp.identify("u1", {"email": "u1@example.com"})
    event_id = opencdp.track("u1", "signed_up", {"plan": "pro"}, context={"ip": "192.0.2.1"})
    opencdp.page("u1", "https://shop.example/")
    with pytest.raises(opencdp.ValidationError):
        opencdp.track("u1", "")
    assert opencdp.flush(timeout=10)
    for service in ("opencdp", "customerio"):
        # The gateway takes one request per message, in flight together: any order.
        events = {e["name"]: e for e in sandbox.person(service, "u1")["events"]}
        assert sorted(events) == sorted(["signed_up", "page_viewed" if service == "opencdp"
                                         else "https://shop.example/"]), service
        assert events["signed_up"]["data"] == {"plan": "pro",
                                               "context": {"ip": "192.0.2.1"}}, service
    assert sandbox.person("customerio", "u1")["events"][0]["id"] == event_id
    with pytest.raises(opencdp.ConfigurationError, match=r"already called"):
        opencdp.init(**sandbox_options(sandbox))
    assert opencdp.close(timeout=5) is True
    with pytest.raises(opencdp.NotInitializedError):
        opencdp.track("u1", "signed_up")
    assert opencdp.init(**sandbox_options(sandbox)) is not client  # close() allows a new one


def test_init_reads_the_environment_without_a_key(sandbox: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_API_KEY", "cdp-env-key")
    client = opencdp.init(cdp_endpoint=sandbox.opencdp_url, cdp_fallback_endpoints=[],
                          register_atexit=False, send=False)
    assert client.config.cdp_api_key == "cdp-env-key"


def test_racing_inits_make_one_client(sandbox: Any) -> None:
    made: list[opencdp.Client] = []
    refused: list[Exception] = []
    start = threading.Barrier(8)

    def race() -> None:
        start.wait()
        try:
            made.append(opencdp.init(**sandbox_options(sandbox, send=False)))
        except opencdp.ConfigurationError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(made) == 1 and len(refused) == 7
    assert opencdp.get_client() is made[0]


SCRIPT = textwrap.dedent("""
    import json, sys, types
    import opencdp
    from opencdp.testing import sandbox_options

    urls = types.SimpleNamespace(**json.loads(sys.argv[1]))
    opencdp.init(**sandbox_options(urls, register_atexit=True))
    opencdp.identify("script-user", {"email": "s@example.com"})
    for i in range(300):
        opencdp.track("script-user", "step", {"i": i})
    # no flush, no close: the client's atexit hook drains
""")


def test_a_script_that_exits_without_close_delivers_everything(sandbox: Any,
                                                               tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    urls = {"opencdp_url": sandbox.opencdp_url, "track_url": sandbox.track_url,
            "app_url": sandbox.app_url, "ca_file": sandbox.ca_file}
    done = subprocess.run([sys.executable, str(script), json.dumps(urls)], check=False,
                          timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for service in ("opencdp", "customerio"):
        events = sandbox.person(service, "script-user")["events"]
        assert sorted(e["data"]["i"] for e in events) == list(range(300)), service
