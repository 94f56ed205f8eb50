"""The audit over a small realistic app (Django, FastAPI, Flask, Celery, Segment, email
templates): exactly the marked lines are reported, nothing else."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from audit_markers import expected_tree, found_tree
from click.testing import CliRunner

from opencdp.audit import audit_paths, score
from opencdp.cli import main

SAMPLE = Path(__file__).resolve().parent / "sample_app"
SOURCE = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def marks() -> Counter[tuple[str, int, str]]:
    return expected_tree(SAMPLE)


def test_sample_app_findings_are_exactly_the_marked_lines(
    marks: Counter[tuple[str, int, str]],
) -> None:
    result = audit_paths([SAMPLE])
    assert found_tree(result) == marks
    assert result.files == 17
    assert result.score == score(result.findings)


def test_every_python_rule_is_exercised_by_the_corpus(
    marks: Counter[tuple[str, int, str]],
) -> None:
    codes = {code for _, _, code in marks}
    assert codes == {f"OCDP{n}" for n in range(201, 213)}


def test_command_reports_the_same_findings_as_json(
    marks: Counter[tuple[str, int, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SAMPLE)
    result = CliRunner().invoke(main, ["audit", "--format", "json", "."])
    assert result.exit_code == 1
    document = json.loads(result.output)
    got = Counter(
        ((SAMPLE / f["path"]).as_posix(), f["line"], f["code"]) for f in document["findings"]
    )
    assert got == marks


@pytest.mark.parametrize(
    "name",
    ["django_views.py", "api.py", "flask_app.py", "tasks.py", "helpers.py", "webhooks.py",
     "settings.py"],
)
def test_a_file_audited_alone_still_resolves_its_imports(
    name: str, marks: Counter[tuple[str, int, str]]
) -> None:
    """Pre-commit passes only changed files; clients imported from files not given are read
    from disk (not reported on), so the findings are the same as in a whole-tree run."""
    path = SAMPLE / "shop" / name
    alone = found_tree(audit_paths([path]))
    assert alone == Counter({k: v for k, v in marks.items() if k[0] == path.as_posix()})
    assert alone


def test_opencdp_audits_its_own_source_clean() -> None:
    """Every idiom the audit learns is also tried on opencdp itself, where the integrations
    define the accessors it recognises: a new heuristic must not find fault there."""
    result = audit_paths([SOURCE])
    assert [(f.path, f.line, f.code) for f in result.findings] == []
    assert result.score == 100
