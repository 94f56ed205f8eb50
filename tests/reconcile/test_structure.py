"""The reconcile package reads the SDK through public names only, and its command is thin."""

from __future__ import annotations

import ast
from pathlib import Path

import click

import opencdp.reconcile as package
from opencdp.reconcile import reconcile
from opencdp.reconcile.command import command

PACKAGE = Path(package.__file__).parent


def _private_reach_ins(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [f"import {a.name}" for a in node.names if a.name.startswith("_")]
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.append(f"{ast.unparse(node)} (line {node.lineno})")
    return found


def test_no_module_reaches_into_another_modules_underscore_names() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert {f.name for f in files} >= {"api.py", "command.py", "compare.py", "report.py",
                                       "sources.py"}
    offenders = {f.name: _private_reach_ins(f) for f in files}
    assert all(not v for v in offenders.values()), offenders
    source = "\n".join(f.read_text() for f in files)
    assert "_core" not in source and ".lanes" not in source and "_lanes" not in source


def test_the_command_is_a_plain_click_command_and_the_api_a_plain_function() -> None:
    assert type(command) is click.Command
    assert not isinstance(reconcile, click.Command)
    assert callable(reconcile) and reconcile.__module__ == "opencdp.reconcile.api"


def test_compare_has_no_io() -> None:
    tree = ast.parse((PACKAGE / "compare.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree)
                if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert not imported & {"os", "socket", "urllib", "ssl", "time", "click", "sqlite3",
                           "redis", "asyncio"}
