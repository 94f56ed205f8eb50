"""No destination is special outside its own module (docs/architecture.md, DESIGN.md).

The engine, the queues, health and metrics read the registry (``opencdp.registry``); this
test fails when one of them names a concrete destination: the string ``"opencdp"`` or
``"customerio"`` as a whole literal, the ``OPENCDP``/``CUSTOMERIO`` bits or the old name
tables of ``opencdp.message``, or an import of a built-in destination's module. The
allow-list below is the short list of places that legitimately say which platform they
mean, each with its reason; anything else named there is a failure.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "opencdp"

GUARDED = sorted(
    [SRC / name for name in ("engine.py", "dispatch.py", "lane.py", "snapshot.py",
                             "holding.py", "health.py", "metrics.py", "registry.py")]
    + list((SRC / "outbox").glob("*.py"))
)
"""The engine (wiring, dispatcher, lanes, snapshot, holds), every queue, health, metrics."""

LITERALS = frozenset({"opencdp", "customerio"})
NAMES = frozenset({"OPENCDP", "CUSTOMERIO", "DESTINATION_NAMES", "DESTINATION_BITS"})
MODULES = ("destinations.opencdp", "destinations.customerio")

ALLOWED: dict[tuple[str, str], str] = {
    ("outbox/redis.py", "opencdp"):
        "the default Redis key prefix is the package's name, not the destination",
    ("outbox/cluster.py", "opencdp"):
        "the default Redis key prefix is the package's name, not the destination",
    ("outbox/url.py", "opencdp"):
        "the default Redis key prefix (``?prefix=``) is the package's name",
    ("engine.py", "destinations.opencdp"):
        "transactional sends and pings are the gateway's own API, outside the queue: the "
        "engine calls them on the registry's primary destination, typed as the gateway",
}
"""(module relative to src/opencdp, what it names) -> why. Config and options
(``config.py``, ``settings.py``, ``options.py``) map the caller's options to destinations
and are not guarded; neither are the destinations' own modules."""


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                                                                      ast.Constant):
                found.add(id(body[0].value))
        if isinstance(node, ast.Module | ast.ClassDef):
            # an attribute's docstring: a bare string after an assignment
            for before, after in zip(node.body, node.body[1:], strict=False):
                if isinstance(before, ast.Assign | ast.AnnAssign) and isinstance(
                        after, ast.Expr) and isinstance(after.value, ast.Constant):
                    found.add(id(after.value))
    return found


def named(path: Path) -> list[tuple[int, str]]:
    """What ``path`` names of a concrete destination, with line numbers."""
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstrings(tree)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docs and node.value in LITERALS:
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.Name) and node.id in NAMES:
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr in NAMES:
            out.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for alias in node.names:
                if alias.name in NAMES:
                    out.append((node.lineno, alias.name))
                full = f"{module}.{alias.name}" if module else alias.name
                for concrete in MODULES:
                    if module.endswith(concrete) or full.endswith(concrete):
                        out.append((node.lineno, concrete))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                for concrete in MODULES:
                    if alias.name.endswith(concrete):
                        out.append((node.lineno, concrete))
    return out


def test_engine_queues_health_and_metrics_name_no_destination() -> None:
    offences = []
    used = set()
    for path in GUARDED:
        relative = path.relative_to(SRC).as_posix()
        for line, what in named(path):
            if (relative, what) in ALLOWED:
                used.add((relative, what))
                continue
            offences.append(f"{relative}:{line} names {what!r}")
    assert not offences, "read the destination registry instead:\n" + "\n".join(offences)
    assert used == set(ALLOWED), f"allow-list entries no longer needed: {set(ALLOWED) - used}"


def test_the_check_catches_what_it_claims(tmp_path: Path) -> None:
    """The structural check itself: each kind of naming is found, docstrings are not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Mentions "opencdp" in prose."""\n'
        "from opencdp.message import OPENCDP\n"
        "from .destinations.customerio import CustomerIOTrack\n"
        "x = lanes['customerio']\n"
        "y = message.CUSTOMERIO\n"
        "z = 'opencdp-worker'\n"
    )
    assert sorted(what for _, what in named(sample)) == [
        "CUSTOMERIO", "OPENCDP", "customerio", "destinations.customerio"]
