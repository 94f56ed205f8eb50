"""Text, JSON and SARIF renderings of an audit result.

JSON is the fixed shape ``{"score": int, "findings": [{"path", "line", "col", "code",
"message", "severity"}]}``. SARIF is a minimal valid 2.1.0 log (one run, the rule catalogue
in the tool driver, one result per finding, 1-based regions) that code-scanning services
accept.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import quote

from .._version import __version__
from .model import AuditResult, Severity
from .rules import all_rules

__all__ = ["SARIF_SCHEMA", "Format", "render", "to_json", "to_sarif", "to_text"]

Format = Literal["text", "json", "sarif"]
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL_NAME = "opencdp-audit"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def to_text(result: AuditResult) -> str:
    """``path:line:col: CODE message [severity]`` lines, then a score line."""
    lines = [
        f"{f.path}:{f.line}:{f.col}: {f.code} {f.message} [{f.severity.value}]"
        for f in result.findings
    ]
    counts = Counter(f.severity for f in result.findings)
    if result.findings:
        parts = [
            _plural(counts[s], s.value) for s in Severity if counts[s]
        ]
        summary = f"{_plural(len(result.findings), 'finding')} ({', '.join(parts)})"
    else:
        summary = "no findings"
    lines.append(
        f"opencdp audit: score {result.score}/100, {summary} in {_plural(result.files, 'file')}"
    )
    return "\n".join(lines) + "\n"


def to_json(result: AuditResult) -> str:
    document = {"score": result.score, "findings": [f.to_dict() for f in result.findings]}
    return json.dumps(document, indent=2) + "\n"


def _uri(path: str) -> tuple[str, bool]:
    """A SARIF artifact URI, and whether it is relative to the source root."""
    pure = PurePosixPath(path)
    if pure.is_absolute():
        return "file://" + quote(pure.as_posix()), False
    return quote(pure.as_posix()), True


def to_sarif(result: AuditResult) -> str:
    rules = list(all_rules())
    index = {rule.code: i for i, rule in enumerate(rules)}
    descriptors = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary()},
            "fullDescription": {"text": rule.explanation() or rule.summary()},
            "help": {"text": rule.message},
            "defaultConfiguration": {"level": rule.severity.value},
        }
        for rule in rules
    ]
    results = []
    for finding in result.findings:
        uri, relative = _uri(finding.path)
        artifact: dict[str, str] = {"uri": uri}
        if relative:
            artifact["uriBaseId"] = "%SRCROOT%"
        entry: dict[str, object] = {
            "ruleId": finding.code,
            "level": finding.severity.value,
            "message": {"text": finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": artifact,
                        "region": {"startLine": finding.line, "startColumn": finding.col},
                    }
                }
            ],
        }
        if finding.code in index:
            entry["ruleIndex"] = index[finding.code]
        results.append(entry)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": __version__,
                        "rules": descriptors,
                    }
                },
                "results": results,
                "properties": {"score": result.score},
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def render(result: AuditResult, output_format: Format = "text") -> str:
    """The result in one of the three formats."""
    if output_format == "json":
        return to_json(result)
    if output_format == "sarif":
        return to_sarif(result)
    return to_text(result)
