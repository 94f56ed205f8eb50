"""What every ``opencdp`` subcommand shares: --json, usage errors, the right extra in hints."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from opencdp.cli import _COMMANDS, _SUMMARIES, extra_for, main


@pytest.mark.parametrize(("command", "module", "extra"), [
    ("sandbox", "uvicorn", "sandbox"),
    ("sandbox", "trustme", "sandbox"),
    ("serve", "uvicorn", "server"),
    ("serve", "starlette.applications", "server"),
    ("queue", "redis", "redis"),
    ("worker", "redis.asyncio", "redis"),
    ("serve", "prometheus_client", "metrics"),
    ("audit", "something_else", "all"),
    ("audit", None, "all"),
])
def test_extra_for(command: str, module: str | None, extra: str) -> None:
    assert extra_for(command, module) == extra


@pytest.mark.parametrize(("blocked", "args", "extra"), [
    ("uvicorn", ["sandbox", "--port", "0"], "opencdp[sandbox]"),
    ("starlette", ["serve", "--help"], "opencdp[server]"),
])
def test_a_missing_extra_is_named(blocked: str, args: list[str], extra: str) -> None:
    code = (f"import sys; sys.modules[{blocked!r}] = None\n"
            f"from opencdp.cli import main\nmain({args!r})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert f"pip install '{extra}'" in done.stderr
    assert "Traceback" not in done.stderr and "opencdp[all]" not in done.stderr


def _commands() -> list[tuple[str, click.Command]]:
    out = []
    ctx = click.Context(main)
    for name in ("audit", "queue", "reconcile"):
        command = main.get_command(ctx, name)  # type: ignore[attr-defined]
        assert command is not None
        if isinstance(command, click.Group):
            out += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
        else:
            out.append((name, command))
    return out


def test_every_command_with_machine_output_takes_json() -> None:
    commands = _commands()
    assert len(commands) == 7
    for name, command in commands:
        flags = {opt for p in command.params for opt in getattr(p, "opts", ())}
        assert "--json" in flags, name
        if name != "audit":
            assert "--format" not in flags, name


def test_unknown_commands_and_options_exit_2() -> None:
    assert CliRunner().invoke(main, ["nope"]).exit_code == 2
    assert CliRunner().invoke(main, ["queue", "stats", "--bogus"]).exit_code == 2
    assert CliRunner().invoke(main, ["audit"]).exit_code == 2


def test_help_lists_every_command_even_with_an_extra_missing() -> None:
    code = ("import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
            "from opencdp.cli import main\nmain(['--help'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0]: line for line in done.stdout.split("Commands:")[1].splitlines()
              if line.strip()}
    assert set(listed) == set(_COMMANDS)
    assert {"audit", "explain", "queue", "reconcile", "sandbox", "serve", "worker"} <= set(listed)
    assert "(needs pip install 'opencdp[server]')" in listed["serve"]


def test_the_help_summaries_are_the_commands_own() -> None:
    """``opencdp --help`` lists commands from a table so it imports none of them; each line
    must still be its command's short help."""
    ctx = click.Context(main)
    for name, summary in _SUMMARIES.items():
        command = main.get_command(ctx, name)  # type: ignore[attr-defined]
        assert command is not None
        assert command.get_short_help_str(500) == summary, name
    assert set(_SUMMARIES) == set(_COMMANDS)
