"""The recording store: what each emulated service accepted, and its counters.

Plain dicts, lists and slotted records, touched only from the server's event loop (the admin
API reads them over HTTP, never across threads), so there are no locks. Events are kept as
tuples and turned into JSON objects only when inspected: the batch path stores tens of
thousands per second.
"""

from __future__ import annotations

import itertools
from typing import Any

from ..message import ulid_str

__all__ = ["Person", "ServiceStore", "Store", "event_id"]

Event = tuple[str, "str | int", int, Any, str]  # name, id (text, or a ULID int), ts, data, type


def event_id(value: str | int) -> str:
    return value if isinstance(value, str) else ulid_str(value)


class Person:
    """One person as a service sees it."""

    __slots__ = ("attributes", "cio_id", "devices", "email", "events", "id", "phone",
                 "segments", "suppressed")

    def __init__(self, id: str | None, cio_id: str) -> None:
        self.id = id
        self.cio_id = cio_id
        self.email: str | None = None
        self.phone: str | None = None
        self.attributes: dict[str, Any] = {}
        self.events: list[Event] = []
        self.devices: dict[str, dict[str, Any]] = {}
        self.segments: set[str] = set()
        self.suppressed = False

    def identifier_keys(self) -> list[str]:
        """Every identifier of this person, as suppression keys (``id:…``, ``email:…``)."""
        out = [] if self.id is None else [f"id:{self.id}"]
        if self.email:
            out.append(f"email:{self.email.lower()}")
        if self.phone:
            out.append(f"phone:{self.phone}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "phone": self.phone,
            "cio_id": self.cio_id,
            "attributes": self.attributes,
            "events": [
                {"name": n, "id": event_id(i), "timestamp": ts, "data": d, "type": t}
                for n, i, ts, d, t in self.events
            ],
            "devices": list(self.devices.values()),
            "segments": sorted(self.segments),
            "suppressed": self.suppressed,
        }


class ServiceStore:
    """People, sends and counters of one emulated service (``opencdp`` or ``customerio``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cio_ids = itertools.count(1)
        self.people: dict[str, Person] = {}
        self.by_email: dict[str, Person] = {}
        self.by_cio: dict[str, Person] = {}
        self.by_phone: dict[str, Person] = {}
        self.anonymous_events: list[dict[str, Any]] = []
        self.event_ids: set[str] = set()
        self.idempotency_keys: set[str] = set()
        self.sends: list[dict[str, Any]] = []
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.forms: list[dict[str, Any]] = []
        self.suppressed: dict[str, Person] = {}
        self.requests = 0
        self.accepted = 0
        self.events = 0
        self.duplicates = 0
        self.rejected: dict[str, int] = {}
        self.ignored: dict[str, int] = {}
        self.responses: dict[int, int] = {}
        self.faults: dict[str, int] = {}

    # --- people -------------------------------------------------------------------------
    def find(self, kind: str, value: str) -> Person | None:
        if kind == "id":
            person = self.people.get(value)
            return person if person is not None and person.id == value else None
        if kind == "email":
            return self.by_email.get(value.lower())
        if kind == "cio_id":
            return self.by_cio.get(value)
        if kind == "phone":
            return self.by_phone.get(value)
        return None

    def find_any(self, value: str) -> Person | None:
        """Find a person by whatever ``value`` is: id, email, cio id (``cio_`` optional), phone;
        failing that, the suppressed profile that held it."""
        person = self.people.get(value) or self.by_email.get(value.lower())
        if person is None:
            cio = value[4:] if value.startswith("cio_") else value
            person = self.by_cio.get(cio) or self.by_phone.get(value)
        if person is None and self.suppressed:
            for key in (f"id:{value}", f"email:{value.lower()}", f"phone:{value}"):
                if key in self.suppressed:
                    return self.suppressed[key]
        return person

    # --- suppression ----------------------------------------------------------------------
    def is_suppressed(self, kind: str, value: str) -> bool:
        if not self.suppressed:
            return False
        return f"{kind}:{value.lower() if kind == 'email' else value}" in self.suppressed

    def suppress(self, person: Person | None, kind: str, value: str) -> None:
        """Customer.io's suppress: the profile is deleted and its identifiers are refused from
        now on; the deleted profile is kept only so the admin API can show it."""
        if person is None:
            person = Person(value if kind == "id" else None, "")
            if kind == "email":
                person.email = value
            elif kind == "phone":
                person.phone = value
        else:
            self.delete(person)
        person.suppressed = True
        for key in person.identifier_keys():
            self.suppressed[key] = person

    def unsuppress(self, kind: str, value: str) -> None:
        """Frees every identifier the suppressed profile held; the profile stays deleted."""
        key = f"{kind}:{value.lower() if kind == 'email' else value}"
        person = self.suppressed.get(key)
        if person is not None:
            for k in person.identifier_keys():
                self.suppressed.pop(k, None)

    def create(self, kind: str, value: str) -> Person:
        person = Person(value if kind == "id" else None, f"{next(self._cio_ids):012x}")
        self.by_cio[person.cio_id] = person
        if kind == "email":
            person.email = value
            self.by_email[value.lower()] = person
        elif kind == "phone":
            person.phone = value
            self.by_phone[value] = person
        self.people[self._key(person, kind, value)] = person
        return person

    @staticmethod
    def _key(person: Person, kind: str, value: str) -> str:
        if person.id is not None:
            return person.id
        if kind == "email":
            return value.lower()
        return value if kind == "phone" else f"cio_{person.cio_id}"

    def _key_of(self, person: Person) -> str | None:
        for key in (person.id, person.email and person.email.lower(), person.phone,
                    f"cio_{person.cio_id}"):
            if key is not None and self.people.get(key) is person:
                return key
        for key, p in self.people.items():
            if p is person:
                return key
        return None

    def get_or_create(self, kind: str, value: str) -> Person:
        person = self.find(kind, value)
        return person if person is not None else self.create(kind, value)

    def set_identifiers(self, person: Person, attrs: dict[str, Any]) -> None:
        """Apply ``id``/``email``/``phone`` found in identify attributes to the indexes."""
        new_id = attrs.get("id")
        if new_id is not None and str(new_id) != person.id:
            old_key = self._key_of(person)
            if old_key is not None:
                del self.people[old_key]
            person.id = str(new_id)
            self.people[person.id] = person
        email = attrs.get("email")
        if isinstance(email, str) and email and email != person.email:
            if person.email:
                self.by_email.pop(person.email.lower(), None)
            person.email = email
            self.by_email[email.lower()] = person
        phone = attrs.get("phone")
        if isinstance(phone, str) and phone and phone != person.phone:
            if person.phone:
                self.by_phone.pop(person.phone, None)
            person.phone = phone
            self.by_phone[phone] = person

    def delete(self, person: Person) -> None:
        key = self._key_of(person)
        if key is not None:
            del self.people[key]
        if self.by_cio.get(person.cio_id) is person:
            del self.by_cio[person.cio_id]
        if person.email and self.by_email.get(person.email.lower()) is person:
            del self.by_email[person.email.lower()]
        if person.phone and self.by_phone.get(person.phone) is person:
            del self.by_phone[person.phone]

    def merge(self, primary: Person, secondary: Person) -> None:
        """Customer.io's merge: the primary keeps its values, gains the rest, secondary goes."""
        if primary is secondary:
            return
        for k, v in secondary.attributes.items():
            primary.attributes.setdefault(k, v)
        primary.events.extend(secondary.events)
        primary.events.sort(key=lambda e: e[2])
        for token, device in secondary.devices.items():
            primary.devices.setdefault(token, device)
        primary.segments |= secondary.segments
        self.delete(secondary)
        if primary.email is None and secondary.email:
            primary.email = secondary.email
            self.by_email[secondary.email.lower()] = primary

    # --- counters -----------------------------------------------------------------------
    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def ignore(self, reason: str) -> None:
        """Acknowledged (2xx) but not stored, as the real service does."""
        self.ignored[reason] = self.ignored.get(reason, 0) + 1

    def fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def stats(self) -> dict[str, Any]:
        responses = {str(k): v for k, v in sorted(self.responses.items())}
        return {
            "requests": self.requests,
            "accepted": self.accepted,
            "people": len(self.people),
            "events": self.events,
            "anonymous_events": len(self.anonymous_events),
            "devices": sum(len(p.devices) for p in self.people.values()),
            "sends": len(self.sends),
            "objects": len(self.objects),
            "deliveries": len(self.deliveries),
            "forms": len(self.forms),
            "suppressed": len({id(p) for p in self.suppressed.values()}),
            "duplicates": self.duplicates,
            "rejected": dict(sorted(self.rejected.items())),
            "rejected_total": sum(self.rejected.values()),
            "ignored": dict(sorted(self.ignored.items())),
            "responses": responses,
            "2xx": sum(v for k, v in self.responses.items() if 200 <= k < 300),
            "4xx": sum(v for k, v in self.responses.items() if 400 <= k < 500),
            "5xx": sum(v for k, v in self.responses.items() if k >= 500),
            "faults": dict(sorted(self.faults.items())),
            "faults_total": sum(self.faults.values()),
        }


class Store:
    """Both services' stores, resettable as one."""

    def __init__(self) -> None:
        self.opencdp = ServiceStore("opencdp")
        self.customerio = ServiceStore("customerio")

    def service(self, name: str) -> ServiceStore:
        return self.opencdp if name == "opencdp" else self.customerio

    def reset(self) -> None:
        self.opencdp = ServiceStore("opencdp")
        self.customerio = ServiceStore("customerio")
