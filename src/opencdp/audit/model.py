"""Findings, severities and the 0-100 score.

The score follows the audit script of Customer.io's pitfalls guide: start at 100 and subtract a
fixed weight per finding, by severity, never going below 0. Weights are per severity (not per
rule) so that a reader can predict the score from the finding list alone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["WEIGHTS", "AuditResult", "Finding", "Severity", "score"]


class Severity(str, enum.Enum):
    """How bad a finding is; the values are also SARIF result levels."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    @property
    def weight(self) -> int:
        return WEIGHTS[self]

    @property
    def rank(self) -> int:
        """Higher is worse; ``--fail-on`` compares ranks."""
        return _RANKS[self]


WEIGHTS: dict[Severity, int] = {Severity.ERROR: 15, Severity.WARNING: 5, Severity.NOTE: 1}
_RANKS = {Severity.ERROR: 3, Severity.WARNING: 2, Severity.NOTE: 1}


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """One problem at one place. ``line`` and ``col`` are 1-based, as editors show them."""

    path: str
    line: int
    col: int
    code: str
    message: str
    severity: Severity

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "message": self.message,
            "severity": self.severity.value,
        }


def score(findings: Iterable[Finding]) -> int:
    """``max(0, 100 - sum(weight(severity)))`` with the weights in ``WEIGHTS``."""
    return max(0, 100 - sum(f.severity.weight for f in findings))


@dataclass(frozen=True, slots=True)
class AuditResult:
    """Everything one audit run found, sorted by path, line, column and code."""

    findings: tuple[Finding, ...]
    files: int

    @property
    def score(self) -> int:
        return score(self.findings)

    def failed(self, *, fail_under: int | None = None, fail_on: Severity | None = None) -> bool:
        """True when the score is below ``fail_under`` or a finding is at least ``fail_on``."""
        if fail_under is not None and self.score < fail_under:
            return True
        if fail_on is not None:
            return any(f.severity.rank >= fail_on.rank for f in self.findings)
        return False
