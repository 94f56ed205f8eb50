"""Text, JSON and SARIF output."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from opencdp.audit import AuditResult, Finding, Severity, all_rules, render

RESULT = AuditResult(
    (
        Finding("app/settings.py", 3, 11, "OCDP201", "hard-coded credential", Severity.ERROR),
        Finding("app/views.py", 12, 5, "OCDP208", "handler waits", Severity.WARNING),
        Finding("/abs/dir with space/t.html", 2, 1, "OCDP210", "no unsubscribe", Severity.WARNING),
    ),
    files=4,
)
EMPTY = AuditResult((), files=2)

# The parts of the SARIF 2.1.0 schema (OASIS, sarif-schema-2.1.0.json) that every log must
# satisfy: the required properties and the value constraints of the objects we emit.
_MESSAGE = {
    "type": "object",
    "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
    "properties": {"text": {"type": "string"}},
}
SARIF_REQUIRED = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "shortDescription": _MESSAGE,
                                                "fullDescription": _MESSAGE,
                                                "help": _MESSAGE,
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {
                                                        "level": {
                                                            "enum": [
                                                                "none", "note", "warning",
                                                                "error",
                                                            ]
                                                        }
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": _MESSAGE,
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "anyOf": [
                                                    {"required": ["address"]},
                                                    {"required": ["artifactLocation"]},
                                                ],
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "properties": {
                                                            "uri": {
                                                                "type": "string",
                                                                "format": "uri-reference",
                                                            },
                                                            "uriBaseId": {"type": "string"},
                                                        },
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "properties": {
                                                            "startLine": {
                                                                "type": "integer",
                                                                "minimum": 1,
                                                            },
                                                            "startColumn": {
                                                                "type": "integer",
                                                                "minimum": 1,
                                                            },
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_text_lists_findings_then_the_score() -> None:
    lines = render(RESULT, "text").splitlines()
    assert lines[0] == "app/settings.py:3:11: OCDP201 hard-coded credential [error]"
    assert lines[1] == "app/views.py:12:5: OCDP208 handler waits [warning]"
    assert lines[-1] == (
        "opencdp audit: score 75/100, 3 findings (1 error, 2 warnings) in 4 files"
    )
    assert render(EMPTY).splitlines() == ["opencdp audit: score 100/100, no findings in 2 files"]


def test_json_has_the_fixed_shape() -> None:
    document = json.loads(render(RESULT, "json"))
    assert set(document) == {"score", "findings"}
    assert document["score"] == 75
    assert document["findings"][0] == {
        "path": "app/settings.py",
        "line": 3,
        "col": 11,
        "code": "OCDP201",
        "message": "hard-coded credential",
        "severity": "error",
    }
    assert json.loads(render(EMPTY, "json")) == {"score": 100, "findings": []}


@pytest.mark.parametrize("result", [RESULT, EMPTY], ids=["findings", "empty"])
def test_sarif_satisfies_the_required_structure(result: AuditResult) -> None:
    log = json.loads(render(result, "sarif"))
    jsonschema.validate(log, SARIF_REQUIRED, format_checker=jsonschema.FormatChecker())
    run = log["runs"][0]
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-schema-2.1.0.json")
    assert run["tool"]["driver"]["name"] == "opencdp-audit"
    assert run["properties"]["score"] == result.score
    assert len(run["results"]) == len(result.findings)


def test_sarif_rules_catalogue_and_indexes_agree() -> None:
    log = json.loads(render(RESULT, "sarif"))
    run = log["runs"][0]
    rules: list[dict[str, Any]] = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.code for r in all_rules()]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_locations_are_one_based_and_uris_are_encoded() -> None:
    results = json.loads(render(RESULT, "sarif"))["runs"][0]["results"]
    relative = results[0]["locations"][0]["physicalLocation"]
    assert relative["artifactLocation"] == {"uri": "app/settings.py", "uriBaseId": "%SRCROOT%"}
    assert relative["region"] == {"startLine": 3, "startColumn": 11}
    absolute = results[2]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert absolute == {"uri": "file:///abs/dir%20with%20space/t.html"}
    assert [r["level"] for r in results] == ["error", "warning", "warning"]
