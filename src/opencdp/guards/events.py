"""Event names: a small, stable, snake_case vocabulary, free of personal data.

Event names become segment and campaign-trigger names in Customer.io. A name that embeds an id
or an email creates one event type per user (clutter, and personal data in places that are
not access-controlled), and mixed casing splits one event into several. Names are checked once
each and the verdict cached, so the caller pays one dict lookup per call.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Final

from ._core import Example, Reporter, Rule
from .attributes import UnencodableText
from .identifiers import EMAIL

__all__ = [
    "EmptyEventName",
    "EventNameCardinality",
    "EventNameNotSnakeCase",
    "EventNameTooLong",
    "PIIInEventName",
    "check_event_name",
    "pii_in_name",
]

GATEWAY_MAX_CHARS: Final = 255
CUSTOMERIO_MAX_BYTES: Final = 100
SNAKE: Final = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_PII: Final = (
    (EMAIL, "an email address"),
    (re.compile(r"(?<![A-Za-z0-9])[\w.+-]+@[\w-]+\.[A-Za-z]{2,}"), "an email address"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                r"[0-9a-fA-F]{12}"), "a UUID"),
    (re.compile(r"(?<![\d+])\+[1-9](?:[\s().-]{0,2}\d){7,14}(?![\d+])"), "a phone number"),
    (re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])"
                r"[0-9a-fA-F]{8,}(?![0-9A-Za-z])"), "a hex id"),
    (re.compile(r"(?<!\d)(?:19|20)\d\d([_\-./]?)(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])"
                r"(?!\d)"), "a date"),
    (re.compile(r"(?:^|[_\-.:/ ])\d{3,}(?:$|[_\-.:/ ])|\d{5,}|\d\d(?:[\s.-]\d\d+){3,}"),
     "a number (an id?)"),
)


class EmptyEventName(Rule):
    """An event needs a name; the gateway and Customer.io refuse a blank one."""

    code = "OCDP120"
    severity = "error"
    message = "event name is empty or not a string; pass a fixed snake_case name"
    silenceable = False
    bad = ('client.track("42", "")', 'client.track("42", None)')
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed")',)


class EventNameNotSnakeCase(Rule):
    """Mixed naming styles split one event into several (``UserSignedUp``, ``user-signed-up``).

    Pick one convention; snake_case is Customer.io's and this SDK's.
    """

    code = "OCDP121"
    severity = "warning"
    message = "event name is not snake_case; use lower_case_with_underscores"
    bad = ('client.identify("42", {"email": "a@example.com"})\n'
           'client.track("42", "UserSignedUp")',
           'client.identify("42", {"email": "a@example.com"})\n'
           'client.track("42", "user-signed-up")')
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "user_signed_up")',)


class PIIInEventName(Rule):
    """Names embedding ids, emails, phone numbers, UUIDs, hex ids, dates or long numbers.

    Every distinct name becomes a segment name: personal data would leak into places without
    access control, and each id or date creates an event type of its own. Put the value in the
    properties instead. A phone number is one that looks like E.164: ``+``, then 8 to 15
    digits, separators allowed (``sms_to_+1 415 555 0100``); a bare digit run
    (``viewed_product_12345678``) is an id, since nothing tells it from a product or order
    number. A number counts as an id when it is a segment of three or more digits
    (``viewed_product_834``), has five or more digits anywhere, or is four or more groups of
    two or more digits (``called_06 12 34 56 78``); a date is ``2024_11_05``,
    ``2024-11-05`` or ``20241105``; ``checkout_step_2`` and ``sha256_verified`` pass. Refused
    (the message names the kind, never the value); silence the code if a name is a false
    positive. ``opencdp.compat`` warns instead: the SDK it stands in for sent such names.
    """

    code = "OCDP122"
    lenient = True
    severity = "error"
    message = "event name embeds an id or personal data; move the value into properties"
    bad = ('client.track("42", "viewed_product_83412")',
           'client.track("42", "email_ada@example.com")',
           'client.track("42", "invoice_3f2a9c1e7b")')
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "product_viewed", {"product_id": 83412})',
            'client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "checkout_step_2")')


class EventNameCardinality(Rule):
    """More distinct event names in one process than a taxonomy should ever need.

    Usually a dynamic part (a product, a page) is being formatted into the name. The warning
    names the name families with the most members; ``GuardPolicy.max_event_names`` sets the
    threshold (500 by default).
    """

    code = "OCDP123"
    severity = "warning"
    message = "too many distinct event names; put the varying part into properties"
    bad = (Example('client.identify("42", {"email": "a@example.com"})\n'
                   'for page in ("home", "pricing", "docs", "blog"):\n'
                   '    client.track("42", f"viewed_{page}")', {"max_event_names": 3}),)
    good = (Example('client.identify("42", {"email": "a@example.com"})\n'
                    'for page in ("home", "pricing", "docs", "blog"):\n'
                    '    client.track("42", "page_viewed", {"page": page})',
                    {"max_event_names": 3}),)


class EventNameTooLong(Rule):
    """Names longer than a destination allows are refused there, after the call returned.

    The gateway caps names at 255 characters: a longer one is refused at the call.
    Customer.io caps them at 100 bytes: a longer one still reaches OpenCDP, and only its
    Customer.io copy is dead-lettered with this code.
    """

    code = "OCDP124"
    severity = "error"
    message = "event name is too long (gateway: 255 characters, Customer.io: 100 bytes)"
    silenceable = False
    bad = ('client.track("42", "order_" * 20)',
           'client.track("42", "order_" * 50)')
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed")',)


def pii_in_name(name: str) -> str | None:
    """What kind of personal data or id ``name`` embeds, if any."""
    for pattern, kind in _PII:
        if pattern.search(name):
            return kind
    return None


def check_event_name(
    value: object, reporter: Reporter
) -> tuple[str, tuple[type[Rule], ...]]:
    """Validate and normalise (trim) an event name; return it with the rules it warned.

    A name that drew a warning is not cached as clean: the caller replays its warnings on
    every call, so that every occurrence is counted and strict mode refuses every one.
    """
    text = type(value) is str or issubclass(type(value), str)  # a mock claiming str is not
    if not text or not str.strip(value):  # type: ignore[arg-type]
        kind = "empty" if text else type(value).__name__
        raise reporter.refuse(EmptyEventName, "event", f"event name is {kind}")
    name = str.strip(value)  # type: ignore[arg-type]
    if len(name) > GATEWAY_MAX_CHARS:
        raise reporter.refuse(EventNameTooLong, "event", f"event name has {len(name)} characters")
    if not name.isascii():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise reporter.refuse(UnencodableText, "event", "event name has a lone surrogate"
                                  ) from None
    warned: tuple[type[Rule], ...] = ()
    pii = pii_in_name(name)
    if pii is not None:
        if not (reporter.silenced(PIIInEventName) or reporter.lenient(PIIInEventName)):
            raise reporter.refuse(PIIInEventName, "event", f"event name embeds {pii}")
        warned += (PIIInEventName,)
    if not SNAKE.fullmatch(name):
        warned += (EventNameNotSnakeCase,)
    for rule in warned:
        replay(rule, name, reporter, pii)
    return name, warned


def replay(rule: type[Rule], name: str, reporter: Reporter, pii: str | None = None) -> None:
    """Report (once) and count one warning about event ``name``.

    A name embedding ``pii`` (its kind) is never written to the log, whichever rule reports
    it; a lenient OCDP122 report names the kind instead.
    """
    if pii is None:
        detail = f"event {name!r}"
    elif rule is PIIInEventName and reporter.lenient(rule):
        detail = f"event name embeds {pii}, sent as it is"
    else:
        detail = ""
    reporter.warn(rule, "event", name, detail)


def family(name: str) -> str:
    """The name with its varying part masked: ``viewed_pricing`` -> ``viewed_*``."""
    parts = re.split(r"([_\-.:/ ]+)", name)
    if len(parts) >= 3:
        return "".join(parts[:-1]) + "*"
    return re.sub(r"\d+", "#", name)


def top_families(names: list[str], limit: int = 5) -> str:
    counts = Counter(family(n) for n in names)
    return ", ".join(f"{f} ({n})" for f, n in counts.most_common(limit))
