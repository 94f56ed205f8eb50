"""Pure comparison: person records and dead letters in, differences out. No I/O, no clock.

Person records have the shape the sandbox lists (``id``/``email``/``cio_id``, ``attributes``,
``events``, ``devices``, ``suppressed``); dead letters are the outbox's ``DeadLetter``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..message import CUSTOMERIO, OPENCDP
from ..outbox.base import DeadLetter
from .report import PersonDifference

__all__ = [
    "DESTINATIONS",
    "PeopleComparison",
    "compare_people",
    "compare_person",
    "in_window",
    "person_key",
    "summarize",
    "unmatched",
    "within",
]

DESTINATIONS = ("opencdp", "customerio")
LABEL = {"opencdp": "OpenCDP", "customerio": "Customer.io"}
_BOTH = OPENCDP | CUSTOMERIO


def in_window(ts: float, since: float | None, until: float | None) -> bool:
    return (since is None or ts >= since) and (until is None or ts < until)


def within(letters: Iterable[DeadLetter], since: float | None,
           until: float | None) -> list[DeadLetter]:
    """Dead letters whose message was accepted inside the window."""
    return [d for d in letters if in_window(d.message.created_ms / 1000, since, until)]


def person_key(person: Mapping[str, Any]) -> str:
    if person.get("id"):
        return str(person["id"])
    if person.get("email"):
        return str(person["email"]).lower()
    return f"cio_{person.get('cio_id')}"


def _event_keys(person: Mapping[str, Any] | None, since: float | None,
                until: float | None) -> set[str]:
    keys = set()
    for event in (person or {}).get("events") or ():
        ts = event.get("timestamp")
        if isinstance(ts, (int, float)) and not in_window(ts, since, until):
            continue
        keys.add(str(event.get("id") or f"{event.get('name')}@{ts}"))
    return keys


def _device_names(device: Mapping[str, Any]) -> set[str]:
    return {str(device[k]) for k in ("id", "deviceId", "apnToken", "fcmToken") if device.get(k)}


def _as_stored(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(
        value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def same_value(a: Any, b: Any) -> bool:
    """Equal, or equal as Customer.io keeps them: its App API gives every attribute back as a
    string, so a person imported from it holds ``"42"`` where a call stored ``42``."""
    if a == b:
        return True
    if isinstance(a, str) == isinstance(b, str):
        return False
    try:
        return _as_stored(a) == _as_stored(b)
    except TypeError:
        return False


def compare_person(opencdp: Mapping[str, Any] | None, customerio: Mapping[str, Any] | None,
                   since: float | None = None, until: float | None = None,
                   ) -> dict[str, Any] | None:
    """How one person's records differ, or None when they agree.

    Attribute values are compared but only their names reported. Events are matched by id
    (by name and time when they have none), within the window when one is given. Devices are
    matched by id or push token; web devices are OpenCDP's alone by design and are skipped.
    The suppression flag is not compared: OpenCDP has no suppression.
    """
    if opencdp is None or customerio is None:
        if opencdp is None and customerio is None:
            return None
        missing = "opencdp" if opencdp is None else "customerio"
        present = customerio if opencdp is None else opencdp
        return {"missing_from": missing,
                "events": len(_event_keys(present, since, until)),
                "attributes": sorted((present or {}).get("attributes") or {})}
    details: dict[str, Any] = {}
    a = opencdp.get("attributes") or {}
    b = customerio.get("attributes") or {}
    attributes = {
        "only_opencdp": sorted(k for k in a if k not in b),
        "only_customerio": sorted(k for k in b if k not in a),
        "different": sorted(k for k in a.keys() & b.keys() if not same_value(a[k], b[k])),
    }
    if any(attributes.values()):
        details["attributes"] = attributes
    ea, eb = _event_keys(opencdp, since, until), _event_keys(customerio, since, until)
    if ea != eb:
        details["events"] = {"opencdp": len(ea), "customerio": len(eb),
                             "only_opencdp": len(ea - eb), "only_customerio": len(eb - ea)}
    cdp_devices = [d for d in opencdp.get("devices") or () if d.get("platform") != "web"]
    cio_devices = list(customerio.get("devices") or ())
    cdp_names = set().union(*(_device_names(d) for d in cdp_devices))
    cio_names = set().union(*(_device_names(d) for d in cio_devices))
    only_cdp = sorted(str(d.get("deviceId") or d.get("id")) for d in cdp_devices
                      if not _device_names(d) & cio_names)
    only_cio = sorted(str(d.get("id")) for d in cio_devices if not _device_names(d) & cdp_names)
    if only_cdp or only_cio:
        details["devices"] = {"only_opencdp": only_cdp, "only_customerio": only_cio}
    return details or None


def summarize(details: Mapping[str, Any]) -> str:
    """One line for a ``compare_person`` result, as the text report shows it."""
    if "missing_from" in details:
        missing = details["missing_from"]
        other = "customerio" if missing == "opencdp" else "opencdp"
        return (f"missing in {LABEL[missing]} ({details['events']} event(s) in "
                f"{LABEL[other]})")
    parts = []
    events = details.get("events")
    if events:
        for side in DESTINATIONS:
            if events[f"only_{side}"]:
                parts.append(f"{events[f'only_{side}']} event(s) only in {LABEL[side]}")
    attrs = details.get("attributes")
    if attrs:
        for side in DESTINATIONS:
            if attrs[f"only_{side}"]:
                parts.append(f"attributes only in {LABEL[side]}: "
                             f"{', '.join(attrs[f'only_{side}'])}")
        if attrs["different"]:
            parts.append(f"attributes differ: {', '.join(attrs['different'])}")
    devices = details.get("devices")
    if devices:
        for side in DESTINATIONS:
            if devices[f"only_{side}"]:
                parts.append(f"{len(devices[f'only_{side}'])} device(s) only in {LABEL[side]}")
    return "; ".join(parts)


@dataclass(frozen=True)
class PeopleComparison:
    compared: int
    suppressed: int
    differing: list[PersonDifference]


def compare_people(opencdp: Iterable[Mapping[str, Any]], customerio: Iterable[Mapping[str, Any]],
                   since: float | None = None, until: float | None = None) -> PeopleComparison:
    """Match both platforms' people by id (or email, or Customer.io id) and compare each."""
    cdp = {person_key(p): p for p in opencdp}
    cio = {person_key(p): p for p in customerio}
    differing = []
    for key in sorted(cdp.keys() | cio.keys()):
        details = compare_person(cdp.get(key), cio.get(key), since, until)
        if details is not None:
            differing.append(PersonDifference(id=key, source="sandbox",
                                              summary=summarize(details), details=details))
    suppressed = sum(1 for p in cio.values() if p.get("suppressed"))
    return PeopleComparison(len(cdp.keys() | cio.keys()), suppressed, differing)


def unmatched(dead: Mapping[str, Sequence[DeadLetter]]) -> tuple[int, list[PersonDifference]]:
    """Messages meant for both platforms but dead-lettered for one only, grouped by person."""
    ids = {name: {d.message.id for d in letters} for name, letters in dead.items()}
    people: dict[tuple[str, str], list[DeadLetter]] = {}
    count = 0
    for name, letters in dead.items():
        other = "customerio" if name == "opencdp" else "opencdp"
        for letter in letters:
            message = letter.message
            if message.destinations & _BOTH != _BOTH or message.id in ids.get(other, ()):
                continue
            count += 1
            people.setdefault((message.identifier, name), []).append(letter)
    out = []
    for (person, name), letters in people.items():
        other = "customerio" if name == "opencdp" else "opencdp"
        reasons = sorted({d.reason for d in letters})
        kinds: dict[str, int] = {}
        for d in letters:
            kinds[d.message.kind] = kinds.get(d.message.kind, 0) + 1
        out.append(PersonDifference(
            id=person, source="records",
            summary=(f"{len(letters)} message(s) dead-lettered for {LABEL[name]}, not for "
                     f"{LABEL[other]}: {reasons[0][:80]}"
                     + (f" (+{len(reasons) - 1} more reasons)" if len(reasons) > 1 else "")),
            details={"missing_from": name, "messages": len(letters), "kinds": kinds,
                     "reasons": reasons[:5],
                     "message_ids": [d.message.ulid for d in letters[:10]]},
        ))
    out.sort(key=lambda d: (d.id, d.details["missing_from"]))
    return count, out
