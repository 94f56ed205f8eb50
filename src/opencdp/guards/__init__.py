"""Pitfall guards: every known Customer.io integration mistake, caught at the call.

Each rule is a unit with a stable code (``OCDP1xx``), a one-line message saying what to do
instead, a docstring saying why, and bad/good examples from which the tests and the docs
table are generated. ``Guards`` applies them on the caller's thread and returns each call's
data as a frozen snapshot; ``customerio_refusal`` applies the limits only Customer.io has,
per message, in its encoder.
"""

from __future__ import annotations

from . import (  # noqa: F401  (registers every rule)
    arguments,
    attributes,
    entities,
    events,
    identifiers,
    keys,
    schemas,
    timestamps,
)
from ._core import RULES, Example, Finding, GuardPolicy, Rule, Severity
from ._guards import Guards
from .customerio import customerio_refusal
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
    "customerio_refusal",
    "explain_unauthorized",
    "rules_table",
]
