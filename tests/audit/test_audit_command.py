"""``opencdp audit`` through the CLI group, exit codes, and the pre-commit hook definition."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from opencdp.cli import main

ROOT = Path(__file__).resolve().parents[2]
WARNING_ONLY = 'from opencdp import Client\nc = Client.from_env()\nc.track("1", "SignedUp")\n'
ERROR_AND_WARNING = WARNING_ONLY + 'API_KEY = "8d7e6f5a4b3c"\n'


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", *args])
    return result.exit_code, result.output


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    path = tmp_path / "clean.py"
    path.write_text('from opencdp import Client\nc = Client.from_env()\nc.track("1", "x_done")\n')
    return path


@pytest.fixture
def warned(tmp_path: Path) -> Path:
    path = tmp_path / "warned.py"
    path.write_text(WARNING_ONLY)
    return path


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.py"
    path.write_text(ERROR_AND_WARNING)
    return path


def test_clean_code_exits_zero(clean: Path) -> None:
    code, output = run(str(clean))
    assert code == 0
    assert output == "opencdp audit: score 100/100, no findings in 1 file\n"


def test_any_finding_fails_by_default(warned: Path) -> None:
    code, output = run(str(warned))
    assert code == 1
    assert "OCDP206" in output and "score 95/100" in output


def test_fail_under_sets_the_passing_score(mixed: Path) -> None:
    assert run(str(mixed), "--fail-under", "80")[0] == 0
    assert run(str(mixed), "--fail-under", "81")[0] == 1


def test_fail_on_alone_fails_only_at_that_severity(warned: Path, mixed: Path) -> None:
    assert run(str(warned), "--fail-on", "error")[0] == 0
    assert run(str(mixed), "--fail-on", "error")[0] == 1
    assert run(str(warned), "--fail-on", "warning")[0] == 1


def test_select_and_ignore_accept_comma_separated_codes(mixed: Path) -> None:
    code, output = run(str(mixed), "--format", "json", "--ignore", "OCDP201,OCDP206")
    assert code == 0
    assert json.loads(output) == {"score": 100, "findings": []}
    code, output = run(str(mixed), "--format", "json", "--select", "ocdp201")
    assert [f["code"] for f in json.loads(output)["findings"]] == ["OCDP201"]


def test_sarif_format_is_json(mixed: Path) -> None:
    code, output = run(str(mixed), "--format", "sarif")
    assert code == 1
    assert json.loads(output)["version"] == "2.1.0"


@pytest.mark.parametrize(
    "args",
    [[], ["does-not-exist.py"], ["--format", "xml", "."], ["--fail-under", "101", "."]],
)
def test_usage_errors_exit_two(args: list[str]) -> None:
    assert run(*args)[0] == 2


def test_pre_commit_hook_runs_the_command(warned: Path, clean: Path) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [hook["id"] for hook in hooks] == ["opencdp-audit"]
    hook = hooks[0]
    assert hook["language"] == "python"
    assert {"python", "html"} <= set(hook["types_or"])
    entry = shlex.split(hook["entry"])
    assert entry == ["opencdp", "audit"]
    script = Path(sys.executable).with_name("opencdp")
    assert script.is_file(), "the opencdp console script is installed with the package"
    failing = subprocess.run(
        [str(script), *entry[1:], str(warned), str(clean)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert failing.returncode == 1
    assert f"{warned.as_posix()}:3:" in failing.stdout
    passing = subprocess.run(
        [str(script), *entry[1:], str(clean)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert passing.returncode == 0


def test_json_flag_is_the_json_format(warned: Path) -> None:
    flag = run(str(warned), "--json")
    alias = run(str(warned), "--format", "json")
    assert flag == alias and flag[0] == 1
    assert json.loads(flag[1])["findings"][0]["code"].startswith("OCDP")


def test_json_with_another_format_is_a_usage_error(warned: Path) -> None:
    code, output = run(str(warned), "--json", "--format", "sarif")
    assert code == 2 and "give one" in output
    assert run(str(warned), "--json", "--format", "text")[0] == 1, "text is the default"


def _audit_on(tmp_path: Path, stderr_tty: bool) -> bytes:
    import os
    import pty

    tree = tmp_path / "tree"
    for i in range(40):
        package = tree / f"pkg{i}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "views.py").write_text(WARNING_ONLY)
    args = [sys.executable, "-m", "opencdp", "audit", str(tree), "--json"]
    if not stderr_tty:
        done = subprocess.run(args, capture_output=True, timeout=120, check=False)
        assert done.returncode == 1 and len(json.loads(done.stdout)["findings"]) >= 40
        return done.stderr
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        out, _ = proc.communicate(timeout=120)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert proc.returncode == 1 and len(json.loads(out)["findings"]) >= 40, "stdout: clean JSON"
    return seen


def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    assert b"auditing" in _audit_on(tmp_path / "a", stderr_tty=True)
    assert b"auditing" not in _audit_on(tmp_path / "b", stderr_tty=False)
