"""Whom a Track API call is about: person resolution, shared by v1 and v2.

People follow the identify rules of ``PUT /customers/{identifier}``: a body identifier that
belongs to someone updates that person; changing an ``id`` or an ``email`` needs the person
addressed as ``cio_<cio_id>``; unknown ``cio_`` ids are dropped with 200; suppressing deletes
the profile and refuses its identifiers until they are unsuppressed. Whatever is dropped is
counted in stats ``ignored`` under its reason. These rules are one thing whichever version of
the API asks, so they live here as plain functions of the store, not in either version.
"""

from __future__ import annotations

from typing import Any

from .http import Reject
from .store import Person, ServiceStore
from .validate import check_id

__all__ = ["body_ids", "identify", "merge", "relate", "resolve", "suppress", "target",
           "unsuppress", "v1_lookup"]


def v1_lookup(st: ServiceStore, ident: str) -> tuple[str, str, Person | None]:
    """A v1 path identifier's kind (from its shape, as the spec says), value and person."""
    if ident.startswith("cio_"):
        value = ident[4:]
        if not value.strip():
            raise Reject(400, "invalid_identifier", "identifier cio_ needs a cio_id after it",
                         "identifier")
        return "cio_id", value, st.by_cio.get(value)
    check_id(ident, "identifier")
    person = st.find("id", ident)
    if person is not None:
        return "id", ident, person
    if "@" in ident:
        return "email", ident, st.by_email.get(ident.lower())
    return "id", ident, None


def body_ids(attrs: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for kind in ("id", "email"):
        value = attrs.get(kind)
        if type(value) is int and kind == "id":
            value = str(value)
        if type(value) is str and value.strip():
            out.append((kind, value))
    return out


def target(st: ServiceStore, kind: str, value: str, person: Person | None,
           create: bool = True) -> Person | None:
    """The person an operation other than identify applies to, or None when it is
    dropped: a suppressed identifier, an unknown ``cio_id``."""
    if st.suppressed and st.is_suppressed(kind, value):
        st.ignore("suppressed_identifier")
        return None
    if person is not None:
        return person
    if kind == "cio_id":
        st.ignore("unknown_cio_id")
        return None
    return st.create(kind, value) if create else None


def resolve(st: ServiceStore, kind: str, value: str, person: Person | None,
            attrs: dict[str, Any]) -> Person | None:
    """Whom an identify updates, following the spec of ``PUT /customers/{identifier}``:
    the person the path names; else the one a body identifier names (who then gets the
    path's identifier too); else a new person. None (dropped) when the identifiers are
    suppressed, the ``cio_id`` is unknown, or path and body name different people."""
    body = body_ids(attrs)
    if st.suppressed and (st.is_suppressed(kind, value)
                          or any(st.is_suppressed(k, v) for k, v in body)):
        st.ignore("suppressed_identifier")
        return None
    if kind == "cio_id" and person is None:
        st.ignore("unknown_cio_id")
        return None
    others = {id(p): p for p in (st.find(k, v) for k, v in body) if p is not None}
    if person is None:
        if len(others) == 1:
            (found,) = others.values()
            st.set_identifiers(found, {kind: value})
            return found
        if others:
            st.ignore("attribute_update_failure")
            return None
        if attrs.get("_update") is True:
            st.ignore("update_only_no_person")
            return None
        return st.create(kind, value)
    if others and (len(others) > 1 or id(person) not in others):
        st.ignore("attribute_update_failure")
        return None
    return person


def identify(st: ServiceStore, person: Person, attrs: dict[str, Any], by_cio: bool) -> None:
    """Apply attributes. ``id`` and ``email`` may be set where the person has none, and
    changed only when the person was addressed by ``cio_id``."""
    changes: dict[str, Any] = {}
    for kind, value in body_ids(attrs):
        current = person.id if kind == "id" else person.email
        if current is not None and (current == value if kind == "id"
                                    else current.lower() == value.lower()):
            continue
        if current is None or by_cio:
            changes[kind] = value
        else:
            st.ignore("identifier_change_needs_cio_id")
    refused = {k for k in ("id", "email") if k in attrs and k not in changes
               and attrs[k] != getattr(person, k)}
    for key, value in attrs.items():
        if key not in ("_update", "_timestamp", "cio_relationships") and key not in refused:
            person.attributes[key] = value
    phone = attrs.get("phone")
    if type(phone) is str and phone:
        changes["phone"] = phone
    if changes:
        st.set_identifiers(person, changes)


def relate(person: Person, rels: list[Any], add: bool) -> None:
    current = person.attributes.setdefault("cio_relationships", [])
    if add:
        current.extend(r for r in rels if r not in current)
    else:
        person.attributes["cio_relationships"] = [r for r in current if r not in rels]


def suppress(st: ServiceStore, kind: str, value: str, person: Person | None) -> None:
    if person is None and kind == "cio_id":
        st.ignore("unknown_cio_id")
        return
    st.suppress(person, kind, value)


def unsuppress(st: ServiceStore, kind: str, value: str) -> None:
    if kind == "cio_id":
        match = next((p for p in st.suppressed.values() if p.cio_id == value), None)
        if match is None:
            st.ignore("unknown_cio_id")
            return
        kind, value = match.identifier_keys()[0].split(":", 1)
    st.unsuppress(kind, value)


def merge(st: ServiceStore, pk: str, pv: str, sk: str, sv: str) -> None:
    """The spec's merge: ``primary`` must already exist; when it (or the secondary)
    does not, nothing happens and the request still succeeds."""
    primary = st.find(pk, pv)
    secondary = st.find(sk, sv)
    if primary is None:
        st.ignore("merge_primary_missing")
    elif secondary is None:
        st.ignore("merge_secondary_missing")
    else:
        st.merge(primary, secondary)
