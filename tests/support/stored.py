"""What the sandbox stored, counted by a field of the events' data (each test numbers its
events, so a loss or a duplicate shows as a missing or doubled number)."""

from __future__ import annotations

from collections import Counter
from typing import Any


def stored(sandbox: Any, service: str, field: str = "seq") -> Counter[Any]:
    seen: Counter[Any] = Counter()
    for person in sandbox.people(service):
        for event in person.get("events", []):
            value = (event.get("data") or event.get("properties") or {}).get(field)
            if value is not None:
                seen[value] += 1
    return seen
