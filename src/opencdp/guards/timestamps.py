"""Timestamps: Customer.io and the gateway read integer Unix seconds, nothing else.

A millisecond value (``Date.now()``, ``time.time() * 1000``) is the most common integration
bug: it is accepted and reads as a date tens of thousands of years ahead, so timestamp
segments and campaign conditions silently never match. Values are classified by magnitude:
below 10^11 seconds (until the year 5138), then milliseconds, microseconds, nanoseconds.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone
from typing import Final

from ._core import Reporter, Rule

__all__ = [
    "BadTimestamp",
    "MillisecondAttribute",
    "MillisecondTimestamp",
    "NaiveDatetime",
    "is_time_attribute",
    "to_seconds",
]

SECONDS_BELOW: Final = 10**11
_UNITS: Final = ((10**17, 10**9, "nanoseconds"), (10**14, 10**6, "microseconds"),
                 (SECONDS_BELOW, 10**3, "milliseconds"))
_INT64: Final = 2**63
_INDEX: Final = re.compile(r"\[\d+\]")


class MillisecondTimestamp(Rule):
    """A timestamp in milliseconds (or micro/nanoseconds) reads as a date far in the future.

    Customer.io does not reject it; segments and campaign conditions on it never match. The
    value is converted to Unix seconds with a warning, and refused in strict mode.
    """

    code = "OCDP101"
    severity = "warning"
    message = "timestamp is not in Unix seconds; pass int(time.time()) or a datetime"
    bad = ('client.track("42", "order_placed", timestamp=1704067200000)',)
    good = (
        'client.identify("42", {"email": "a@example.com"})\n'
        'client.track("42", "order_placed", timestamp=1704067200)',
        'client.identify("42", {"email": "a@example.com"})\n'
        'client.track("42", "order_placed", timestamp=datetime(2024, 1, 1, tzinfo=timezone.utc))',
    )


class NaiveDatetime(Rule):
    """A datetime without a time zone is ambiguous; it is treated as UTC with a warning.

    Local time would shift every event by the server's offset, so the guard never guesses it.
    """

    code = "OCDP102"
    severity = "warning"
    message = "naive datetime treated as UTC; pass an aware datetime (tzinfo=timezone.utc)"
    bad = ('client.track("42", "order_placed", timestamp=datetime(2024, 1, 1, 12))',)
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed", timestamp=datetime(2024, 1, 1, 12, '
            'tzinfo=timezone.utc))',)


class BadTimestamp(Rule):
    """A timestamp that is no time at all (a string, a bool, NaN, negative) is refused.

    ISO-8601 strings are a documented Customer.io mistake: they never match time conditions.
    """

    code = "OCDP103"
    severity = "error"
    message = "timestamp must be a datetime or Unix seconds (int)"
    silenceable = False
    bad = (
        'client.track("42", "order_placed", timestamp="2024-01-01T00:00:00Z")',
        'client.identify("42", {"email": "a@example.com"}, timestamp=-5)',
    )
    good = ('client.identify("42", {"email": "a@example.com"}, timestamp=1704067200)',)


class MillisecondAttribute(Rule):
    """An attribute named ``*_at``, ``*_time`` or ``created`` holding milliseconds.

    Customer.io treats such attributes as dates in Unix seconds (``created_at`` above all);
    the value is converted to seconds with a warning once per attribute name.
    """

    code = "OCDP104"
    lenient = True
    severity = "warning"
    message = "time attribute is not in Unix seconds; send int(time.time()) or a datetime"
    bad = ('client.identify("42", {"email": "a@example.com", "created_at": 1704067200000})',)
    good = (
        'client.identify("42", {"email": "a@example.com", "created_at": 1704067200})',
        'client.identify("42", {"email": "a@example.com", "order_count": 1704067200000})',
    )


def is_time_attribute(name: str) -> bool:
    """Whether an attribute name says it holds a time (Customer.io's date conventions)."""
    return name.endswith(("_at", "_time")) or name == "created"


def to_seconds(value: object, field: str, reporter: Reporter,
               rule: type[Rule] = MillisecondTimestamp) -> int | None:
    """Return ``value`` as Unix seconds; warn about (and convert) ms/µs/ns; refuse non-times."""
    if value is None:
        return None
    if type(value) is int:
        seconds: int = value  # type: ignore[assignment,unused-ignore]
        if 0 <= seconds < SECONDS_BELOW:
            return seconds
    elif isinstance(value, datetime):
        return datetime_seconds(value, field, reporter)
    elif not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    ):
        seconds = int(value)
    else:
        kind = "a date without a time" if isinstance(value, date) else type(value).__name__
        raise reporter.refuse(BadTimestamp, field, f"{field} is {kind}")
    if seconds < 0 or seconds >= _INT64:
        raise reporter.refuse(BadTimestamp, field, f"{field} is out of range ({seconds})")
    for floor, divisor, unit in _UNITS:
        if seconds >= floor:
            converted = seconds // divisor
            reporter.warn(rule, field, field,
                          f"{field}={seconds} looks like {unit}, converted to {converted}")
            return converted
    return seconds


def datetime_seconds(value: datetime, field: str, reporter: Reporter) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        # One cause per field, whatever the list positions, so a list of naive datetimes
        # makes one report.
        reporter.warn(NaiveDatetime, field, _INDEX.sub("[]", field), f"{field} has no time zone")
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp())
