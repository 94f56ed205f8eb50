"""The pytest plugin as a user gets it: ``pip install opencdp[sandbox]`` into a fresh
virtual environment, and a test suite that uses the fixtures without configuring them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

USER_SUITE = '''
import asyncio
import math

import pytest
from opencdp import Client, ValidationError


def signup(client: Client, user_id: str) -> None:
    client.identify(user_id, {"email": f"{user_id}@example.com"})
    client.track(user_id, "signed_up", {"plan": "pro"})


def test_signup_is_captured_for_both_platforms(opencdp_capture):
    signup(opencdp_capture.client, "user_1")
    calls = [(m.kind, m.name, m.destinations) for m in opencdp_capture.messages]
    assert calls == [("identify", None, ("opencdp", "customerio")),
                     ("track", "signed_up", ("opencdp", "customerio"))]


def test_what_production_refuses_is_refused_here_too(opencdp_capture):
    with pytest.raises(ValidationError):
        opencdp_capture.client.track("user_2", "scored", {"score": math.nan})
    assert opencdp_capture.messages == []


def test_a_customerio_only_limit_costs_only_that_copy(opencdp_capture):
    opencdp_capture.client.identify("user_2", {"bio": "x" * 1200})
    assert opencdp_capture.flush(5)
    assert [m.destinations for m in opencdp_capture.messages] == [("opencdp",)]
    assert [d.destination for d in opencdp_capture.dead_letters()] == ["customerio"]


def test_async_code(opencdp_async_capture):
    async def handler(client):
        await client.track("user_3", "checked_out", {"total": 12})

    async def run():
        await handler(opencdp_async_capture.client)
        assert await opencdp_async_capture.flush(5)

    asyncio.run(run())
    assert [m.name for m in opencdp_async_capture.messages] == ["checked_out"]


def test_signup_reaches_the_sandbox(opencdp_client, opencdp_sandbox):
    signup(opencdp_client, "user_4")
    assert opencdp_client.flush(10)
    assert opencdp_sandbox.person("customerio", "user_4")["events"][0]["name"] == "signed_up"
    person = opencdp_sandbox.person("opencdp", "user_4")
    assert person["attributes"]["email"] == "user_4@example.com"


def test_the_sandbox_is_reset_between_tests(opencdp_sandbox):
    assert opencdp_sandbox.people("customerio") == []
'''


@pytest.mark.slow
def test_plugin_loads_itself_in_a_fresh_environment(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    f"{ROOT}[sandbox]", "pytest"], check=True, timeout=300,
                   capture_output=True)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_user.py").write_text(textwrap.dedent(USER_SUITE))
    collected = subprocess.run([str(python), "-m", "pytest", "--collect-only",
                                "-p", "no:cacheprovider"], cwd=suite, capture_output=True,
                               text=True, timeout=120, check=False)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    plugins = next(line for line in collected.stdout.splitlines()
                   if line.startswith("plugins:"))
    assert "opencdp-" in plugins
    assert "6 tests collected" in collected.stdout
    run = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-W", "error"], cwd=suite, capture_output=True, text=True,
                         timeout=180, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "6 passed" in run.stdout
    disabled = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-p", "no:opencdp"], cwd=suite, capture_output=True, text=True,
                              timeout=120, check=False)
    assert "fixture 'opencdp_capture' not found" in disabled.stdout
