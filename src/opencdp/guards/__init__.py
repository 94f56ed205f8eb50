"""Pitfall guards: every known Customer.io integration mistake, caught at the call.

Each rule is a unit with a stable code (``OCDP1xx``), a one-line message saying what to do
instead, a docstring saying why, and bad/good examples from which the tests and the docs
table are generated. ``Guards`` applies them: cheap, cached checks on the caller's thread,
per-value checks in ``inspect`` (on the dispatcher for background calls).
"""

from __future__ import annotations

from . import attributes, events, identifiers, keys, schemas, timestamps  # noqa: F401  (registers every rule)
from ._core import RULES, Example, Finding, GuardPolicy, Rule, Severity
from ._guards import Guards
from .docs import rules_table
from .keys import check_track_key, explain_unauthorized
from .schemas import Event, Schemas

__all__ = [
    "RULES",
    "Event",
    "Example",
    "Finding",
    "GuardPolicy",
    "Guards",
    "Rule",
    "Schemas",
    "Severity",
    "check_track_key",
    "explain_unauthorized",
    "rules_table",
]
