"""``opencdp audit``: an AST-based checker for Customer.io integration pitfalls.

Rules live one per module in ``opencdp.audit.rules`` (code, message, docstring, good and bad
examples); the engine runs them over Python files and email templates and scores the result
from 100 down. Pure standard library (``ast``, ``tokenize``, ``html.parser``) plus click for
the command.
"""

from __future__ import annotations

from .docs import rules_reference, rules_table
from .engine import audit_paths, audit_source
from .model import WEIGHTS, AuditResult, Finding, Severity, score
from .report import render
from .rule import Rule
from .rules import all_rules, get_rule

__all__ = [
    "WEIGHTS",
    "AuditResult",
    "Finding",
    "Rule",
    "Severity",
    "all_rules",
    "audit_paths",
    "audit_source",
    "get_rule",
    "render",
    "rules_reference",
    "rules_table",
    "score",
]
