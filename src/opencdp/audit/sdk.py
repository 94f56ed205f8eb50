"""What the audit knows about the client libraries it understands.

Each client class maps to a ``ClientKind`` (does a call wait for HTTP? does the client batch
and rate-limit on its own?) and each method to a ``Signature`` that names the role of every
argument (user id, event name, properties, timestamp...). Rules then reason about roles, not
about four libraries' spellings of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BLOCKING_VARIANTS",
    "CLIENT_CLASSES",
    "CLIENT_FUNCTIONS",
    "CLIENT_NAMES",
    "CONFIG_CLASSES",
    "FACTORY_METHODS",
    "HOLDER_CLASSES",
    "MODULE_CLIENTS",
    "NETWORK_OPS",
    "SETTINGS_ENVIRONMENT",
    "SETTINGS_NAMES",
    "STATE_CLIENTS",
    "UNTYPED",
    "ClientKind",
    "Credential",
    "Holder",
    "Op",
    "Role",
    "Signature",
    "Slot",
    "signature_for",
]

Op = Literal[
    "identify",
    "track",
    "track_anonymous",
    "device",
    "send",
    "delete",
    "suppress",
    "merge",
    "batch",
    "page",
    "flush",
    "close",
    "other",
]
Role = Literal[
    "user_id",
    "anonymous_id",
    "event",
    "properties",
    "attributes",
    "timestamp",
    "event_id",
    "device_id",
    "other",
]

NETWORK_OPS: frozenset[Op] = frozenset(
    {"identify", "track", "track_anonymous", "device", "send", "delete", "suppress", "merge",
     "batch", "page"}
)


@dataclass(frozen=True, slots=True)
class ClientKind:
    """A family of client objects. ``blocking``: each call waits for the HTTP response.
    ``rate_limited``: the client queues, batches and paces requests itself. ``awaitable``:
    methods are coroutines, so they wait only where they are awaited."""

    family: Literal["opencdp", "customerio", "customerio_app", "cdp", "segment", "untyped"]
    label: str
    blocking: bool
    rate_limited: bool
    awaitable: bool = False


OPENCDP = ClientKind("opencdp", "opencdp.Client", blocking=False, rate_limited=True)
OPENCDP_BLOCKING = ClientKind(
    "opencdp", "opencdp.Client(delivery='blocking')", blocking=True, rate_limited=True
)
OPENCDP_ASYNC = ClientKind(
    "opencdp", "opencdp.AsyncClient", blocking=False, rate_limited=True, awaitable=True
)
OPENCDP_ASYNC_BLOCKING = ClientKind(
    "opencdp",
    "opencdp.AsyncClient(delivery='blocking')",
    blocking=True,
    rate_limited=True,
    awaitable=True,
)
CUSTOMERIO = ClientKind("customerio", "customerio.CustomerIO", blocking=True, rate_limited=False)
CUSTOMERIO_APP = ClientKind(
    "customerio_app", "customerio.APIClient", blocking=True, rate_limited=False
)
CDP = ClientKind(
    "cdp", "cdp_client.CDPClient", blocking=True, rate_limited=False, awaitable=True
)
SEGMENT = ClientKind("segment", "segment analytics", blocking=False, rate_limited=True)
SEGMENT_SYNC = ClientKind(
    "segment", "segment analytics (sync_mode=True)", blocking=True, rate_limited=True
)

CLIENT_CLASSES: Mapping[str, ClientKind] = {
    "opencdp.Client": OPENCDP,
    "opencdp.client.Client": OPENCDP,
    "opencdp.AsyncClient": OPENCDP_ASYNC,
    "opencdp.client.AsyncClient": OPENCDP_ASYNC,
    "customerio.CustomerIO": CUSTOMERIO,
    "customerio.track.CustomerIO": CUSTOMERIO,
    "customerio.APIClient": CUSTOMERIO_APP,
    "customerio.api.APIClient": CUSTOMERIO_APP,
    "cdp_client.CDPClient": CDP,
    "cdp_client.client.CDPClient": CDP,
    "segment.analytics.Client": SEGMENT,
    "segment.analytics.client.Client": SEGMENT,
    "analytics.Client": SEGMENT,
    "customerio.analytics.Client": SEGMENT,
}
"""Client classes by qualified name."""

BLOCKING_VARIANTS: Mapping[ClientKind, tuple[str, object, ClientKind]] = {
    OPENCDP: ("delivery", "blocking", OPENCDP_BLOCKING),
    OPENCDP_ASYNC: ("delivery", "blocking", OPENCDP_ASYNC_BLOCKING),
    SEGMENT: ("sync_mode", True, SEGMENT_SYNC),
}
"""A constructor keyword that turns a background client into a blocking one."""

MODULE_CLIENTS: Mapping[str, ClientKind] = {
    "segment.analytics": SEGMENT,
    "customerio.analytics": SEGMENT,
    "analytics": SEGMENT,
}
"""Modules used as clients (``analytics.track(...)`` with a module-level write key):
Segment's library and Customer.io's Data Pipelines library (``customerio-cdp-analytics``)."""

FACTORY_METHODS = frozenset({"from_env"})
"""Class methods that build a client of their class."""

CLIENT_FUNCTIONS: Mapping[str, ClientKind] = {
    "opencdp.integrations.django.get_client": OPENCDP,
    "opencdp.integrations.fastapi.get_client": OPENCDP_ASYNC,
}
"""The integrations' functions that hand out the process's client. They are known by name
even when the audit reads opencdp's own source, where their bodies return through a holder
the analysis does not follow."""


@dataclass(frozen=True, slots=True, eq=False)
class Holder:
    """An integration object that hands out the process's client: through a property
    (``cdp.client``) or a method (``cdp.client_for(app)``)."""

    label: str
    properties: Mapping[str, ClientKind]
    methods: Mapping[str, ClientKind] = field(default_factory=dict)


_CELERY = Holder("opencdp.integrations.celery.OpenCDP", {"client": OPENCDP})
_FLASK = Holder(
    "opencdp.integrations.flask.OpenCDP", {"client": OPENCDP}, {"client_for": OPENCDP}
)

HOLDER_CLASSES: Mapping[str, Holder] = {
    "opencdp.integrations.celery.OpenCDP": _CELERY,
    "opencdp.integrations.flask.OpenCDP": _FLASK,
}
"""Integration classes whose instances hold a client, by qualified name."""

STATE_CLIENTS: Mapping[str, ClientKind] = {"opencdp": OPENCDP_ASYNC}
"""``app.state`` attributes that the FastAPI/Starlette lifespan fills with a client
(``request.app.state.opencdp``)."""

UNTYPED = ClientKind(
    "untyped", "an unannotated client parameter", blocking=False, rate_limited=True
)
"""A parameter that is only named like a client. Its library is unknown, so it is taken to
neither block nor need pacing: only what the call itself says (event names, user ids,
timestamps) is judged."""

CLIENT_NAMES = frozenset({"client", "cio", "cdp", "analytics"})
"""Names that make an unannotated parameter an ``UNTYPED`` client. Only the network methods
of opencdp's API count as calls into it (``track``, ``identify``, ``send_email``...), so a
test ``client`` fixture's ``get``/``post`` or another library's ``close`` is no finding."""

SETTINGS_NAMES = frozenset({"OPENCDP"})
"""Framework settings that hold ``Client`` options: Django's ``settings.OPENCDP`` and
Flask's ``app.config["OPENCDP"]``. A nested ``"customer_io"`` dict holds ``CustomerIO``'s."""

SETTINGS_ENVIRONMENT: Mapping[str, str] = {
    "cdp_api_key": "CDP_API_KEY",
    "site_id": "CUSTOMERIO_SITE_ID",
    "api_key": "CUSTOMERIO_TRACK_API_KEY",
    "app_api_key": "CUSTOMERIO_APP_API_KEY",
}
"""The variable the environment fills each credential option from when settings leave it
out."""


@dataclass(frozen=True, slots=True)
class Slot:
    """An argument given by position (None when keyword-only) or by keyword."""

    position: int | None
    keyword: str


@dataclass(frozen=True, slots=True)
class Credential:
    """Where a constructor takes secrets, and which of them is a Track or an App API key."""

    secrets: tuple[Slot, ...]
    track_key: Slot | None = None
    app_key: Slot | None = None


def _kw(*names: str) -> Credential:
    return Credential(tuple(Slot(None, n) for n in names))


_CIO_TRACK = Credential((Slot(0, "site_id"), Slot(1, "api_key")), track_key=Slot(1, "api_key"))
_OPENCDP_CIO = Credential(
    (Slot(0, "site_id"), Slot(1, "api_key"), Slot(3, "app_api_key")),
    track_key=Slot(1, "api_key"),
    app_key=Slot(3, "app_api_key"),
)
_CIO_APP = Credential((Slot(0, "key"),), app_key=Slot(0, "key"))
_CDP_CIO = Credential(
    (Slot(None, "site_id"), Slot(None, "api_key")), track_key=Slot(None, "api_key")
)
_SEGMENT_CLIENT = Credential((Slot(0, "write_key"),))

CONFIG_CLASSES: Mapping[str, Credential] = {
    "opencdp.Client": _kw("cdp_api_key"),
    "opencdp.AsyncClient": _kw("cdp_api_key"),
    "opencdp.ClientConfig": _kw("cdp_api_key"),
    "opencdp.config.ClientConfig": _kw("cdp_api_key"),
    "opencdp.CustomerIO": _OPENCDP_CIO,
    "opencdp.config.CustomerIO": _OPENCDP_CIO,
    "customerio.CustomerIO": _CIO_TRACK,
    "customerio.track.CustomerIO": _CIO_TRACK,
    "customerio.APIClient": _CIO_APP,
    "customerio.api.APIClient": _CIO_APP,
    "cdp_client.CDPConfig": _kw("cdp_api_key"),
    "cdp_client.models.CDPConfig": _kw("cdp_api_key"),
    "cdp_client.CustomerIoConfig": _CDP_CIO,
    "cdp_client.models.CustomerIoConfig": _CDP_CIO,
    "segment.analytics.Client": _SEGMENT_CLIENT,
    "segment.analytics.client.Client": _SEGMENT_CLIENT,
    "analytics.Client": _SEGMENT_CLIENT,
    "customerio.analytics.Client": _SEGMENT_CLIENT,
}
"""Every constructor that takes credentials (clients and their configuration objects)."""


@dataclass(frozen=True, slots=True)
class Signature:
    """The roles of a method's arguments; ``rest`` is the role of unmatched ``**kwargs``."""

    op: Op
    params: tuple[Role, ...] = ()
    keywords: Mapping[str, Role] = field(default_factory=dict)
    rest: Role | None = None


def _sig(
    op: Op, params: tuple[Role, ...] = (), rest: Role | None = None, **keywords: Role
) -> Signature:
    return Signature(op, params, keywords, rest)


_OPENCDP: dict[str, Signature] = {
    "identify": _sig(
        "identify", ("user_id", "attributes"), user_id="user_id", attributes="attributes",
        anonymous_id="anonymous_id", timestamp="timestamp",
    ),
    "track": _sig(
        "track", ("user_id", "event", "properties"), user_id="user_id", event="event",
        properties="properties", timestamp="timestamp", event_id="event_id",
    ),
    "track_anonymous": _sig(
        "track_anonymous", ("anonymous_id", "event", "properties"), anonymous_id="anonymous_id",
        event="event", properties="properties", timestamp="timestamp", event_id="event_id",
    ),
    "register_device": _sig(
        "device", ("user_id", "device_id", "other"), user_id="user_id", device_id="device_id",
        attributes="attributes",
    ),
    "remove_device": _sig("device", ("user_id", "device_id"), user_id="user_id"),
    "suppress": _sig("suppress", ("user_id",), user_id="user_id"),
    "unsuppress": _sig("suppress", ("user_id",), user_id="user_id"),
    "delete_person": _sig("delete", ("user_id",), user_id="user_id"),
    "merge_people": _sig("merge"),
    "send_email": _sig("send"),
    "send_push": _sig("send"),
    "send_sms": _sig("send"),
    "send_whatsapp": _sig("send"),
    "flush": _sig("flush"),
    "close": _sig("close"),
    "aclose": _sig("close"),
}

_CUSTOMERIO: dict[str, Signature] = {
    "identify": _sig("identify", ("user_id",), "attributes", id="user_id"),
    "track": _sig(
        "track", ("user_id", "event", "properties", "event_id", "timestamp"), "properties",
        customer_id="user_id", name="event", data="properties", id="event_id",
        timestamp="timestamp",
    ),
    "track_anonymous": _sig(
        "track_anonymous", ("anonymous_id", "event", "properties", "event_id", "timestamp"),
        "properties", anonymous_id="anonymous_id", name="event", data="properties",
        id="event_id", timestamp="timestamp",
    ),
    "backfill": _sig(
        "track", ("user_id", "event", "timestamp"), "properties", customer_id="user_id",
        name="event", timestamp="timestamp",
    ),
    "pageview": _sig("page", ("user_id", "other"), "properties", customer_id="user_id"),
    "add_device": _sig(
        "device", ("user_id", "device_id", "other"), "attributes", customer_id="user_id",
        device_id="device_id",
    ),
    "delete_device": _sig("device", ("user_id", "device_id"), customer_id="user_id"),
    "delete": _sig("delete", ("user_id",), customer_id="user_id"),
    "suppress": _sig("suppress", ("user_id",), customer_id="user_id"),
    "unsuppress": _sig("suppress", ("user_id",), customer_id="user_id"),
    "merge_customers": _sig("merge"),
    "batch": _sig("batch"),
}

_CUSTOMERIO_APP: dict[str, Signature] = {
    name: _sig("send")
    for name in (
        "send_email", "send_push", "send_sms", "send_whatsapp", "send_inbox_message",
        "send_in_app",
    )
}

_CDP: dict[str, Signature] = {
    "identify": _sig(
        "identify", ("user_id", "attributes"), identifier="user_id", properties="attributes"
    ),
    "track": _sig(
        "track", ("user_id", "event", "properties"), identifier="user_id", event_name="event",
        properties="properties",
    ),
    "register_device": _sig("device", ("user_id", "other"), identifier="user_id"),
    "send_email": _sig("send"),
    "send_push": _sig("send"),
    "send_sms": _sig("send"),
    "send_whatsapp": _sig("send"),
    "close": _sig("close"),
}

_SEGMENT: dict[str, Signature] = {
    "track": _sig(
        "track", ("user_id", "event", "properties", "other", "timestamp", "anonymous_id"),
        user_id="user_id", event="event", properties="properties", timestamp="timestamp",
        anonymous_id="anonymous_id", message_id="event_id",
    ),
    "identify": _sig(
        "identify", ("user_id", "attributes", "other", "timestamp", "anonymous_id"),
        user_id="user_id", traits="attributes", timestamp="timestamp",
        anonymous_id="anonymous_id",
    ),
    "page": _sig("page", ("user_id",), user_id="user_id", timestamp="timestamp"),
    "screen": _sig("page", ("user_id",), user_id="user_id", timestamp="timestamp"),
    "group": _sig("other", ("user_id",), user_id="user_id", timestamp="timestamp"),
    "alias": _sig("merge"),
    "flush": _sig("flush"),
    "join": _sig("flush"),
    "shutdown": _sig("close"),
}

_FAMILIES: tuple[Mapping[str, Signature], ...] = (_OPENCDP, _CUSTOMERIO, _CDP, _SEGMENT)


def _untyped(name: str, signature: Signature) -> Signature:
    """opencdp's positional roles with every library's keywords for the same operation, as
    the receiver may be any of them (``cio.track(customer_id=..., name=...)``)."""
    keywords: dict[str, Role] = {}
    for family in _FAMILIES:
        other = family.get(name)
        if other is not None and other.op == signature.op:
            for keyword, role in other.keywords.items():
                keywords.setdefault(keyword, role)
    return Signature(signature.op, signature.params, keywords)


_METHODS: Mapping[str, Mapping[str, Signature]] = {
    "opencdp": _OPENCDP,
    "customerio": _CUSTOMERIO,
    "customerio_app": _CUSTOMERIO_APP,
    "cdp": _CDP,
    "segment": _SEGMENT,
    "untyped": {
        name: _untyped(name, sig) for name, sig in _OPENCDP.items() if sig.op in NETWORK_OPS
    },
}


def signature_for(kind: ClientKind, method: str) -> Signature | None:
    """The signature of ``method`` on a client of ``kind``, or None for a method we ignore."""
    return _METHODS[kind.family].get(method)
