"""Customer.io Track API: messages to ``/api/v2/batch`` requests, responses to outcomes.

Batching is what lets thousands of events a second fit under the 100 requests/s limit: each
operation is serialised once, requests are cut before 500 KB, and an operation over 32 KB is
refused before it is sent. Person, object and push-delivery operations share the batches.
What has no v2 shape goes to its v1 endpoint one by one: anonymous events and views (v2
persons need identifiers), email metrics (``/api/v1/metrics``), unsubscribes
(``/unsubscribe/{delivery_id}``) and manual segment membership. Every event carries its ULID as
``id``, so a retried request is de-duplicated by Customer.io.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import orjson

from .. import registry
from ..guards.timestamps import SECONDS_BELOW
from ..message import Message, split_kind
from ..outbox.base import Leased
from ..policies.retry import classify_status, parse_retry_after
from .base import Dead, Delivered, Failure, Outcome, Request, Response, Retry, Split

if TYPE_CHECKING:
    from ..config import ClientConfig

NAME: Final = "customerio"
"""This destination's name in the registry, the queues, health and metrics."""

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_OP_BYTES",
    "CustomerIOTrack",
    "basic_auth",
    "classify",
    "describe",
    "encode",
    "event_time",
    "operation",
]

MAX_OP_BYTES: Final = 32 * 1024
MAX_BATCH_BYTES: Final = 490_000  # the documented limit is "< 500 KB"; keep a margin
_OPTS: Final = orjson.OPT_NON_STR_KEYS
_DEVICE_ATTRIBUTES: Final = {
    "os_version": "device_os",
    "model": "device_model",
    "app_version": "app_version",
    "name": "device_name",
}


def basic_auth(site_id: str, api_key: str) -> str:
    return "Basic " + base64.b64encode(f"{site_id}:{api_key}".encode()).decode("ascii")


def _who(identifier: str, key: str = "id") -> dict[str, str]:
    if key != "id":
        return {key: identifier}
    if identifier.startswith("cio_") and len(identifier) > 4:
        return {"cio_id": identifier[4:]}
    return {"id": identifier}


def device_token(data: Mapping[str, Any] | None, device_id: str | None) -> str | None:
    """Customer.io keys devices by push token, not by the app's device id."""
    data = data or {}
    token = data.get("fcm_token") or data.get("apn_token") or device_id
    return str(token) if token else None


_ULID_EPOCH: Final = 1_451_606_400  # 2016-01-01: no id this SDK minted is older


def event_time(m: Message) -> int | None:
    """The event's Unix seconds, or None to let Customer.io use the time of receipt.

    A message carries its time (``ts``) whenever its id came from a caller; one without
    ``ts`` was minted here, so its id holds the time of the call. A queue written before
    messages carried their time may still hold a caller's id without ``ts``: its id time is
    used only when it could be one this SDK minted (not before 2016, still in seconds), so
    an id of all zeros or ``7ZZZ…`` never becomes the year 1970 or 10889.
    """
    if m.ts is not None:
        return m.ts
    seconds = m.created_ms // 1000
    return seconds if _ULID_EPOCH <= seconds < SECONDS_BELOW else None


def _timed(body: dict[str, Any], m: Message) -> dict[str, Any]:
    ts = event_time(m)
    if ts is not None:
        body["timestamp"] = ts
    return body


_V1_KINDS: Final = frozenset({"track_anonymous", "page_anonymous", "screen_anonymous",
                              "metric", "unsubscribe", "segment_add", "segment_remove"})
_EVENT_ACTIONS: Final = {"track": "event", "page": "page", "screen": "screen"}


def _object(m: Message, action: str) -> dict[str, Any]:
    return {"type": "object", "action": action,
            "identifiers": {"object_type_id": m.name, "object_id": m.identifier}}


def operation(m: Message) -> dict[str, Any] | None:
    """The v2 operation for a message, or None when it must go through v1."""
    kind, key = split_kind(m.kind)
    if kind in _V1_KINDS:
        return None
    data = m.data or {}
    if kind == "merge":
        return {"type": "person", "action": "merge",
                "primary": data["primary"], "secondary": data["secondary"]}
    if kind == "object_identify":
        op = _object(m, "identify")
        op["attributes"] = dict(data)
        return op
    if kind == "object_delete":
        return _object(m, "delete")
    if kind == "object_anonymous":
        op = _object(m, "identify_anonymous")
        rel: dict[str, Any] = {"identifiers": {"anonymous_id": data["anonymous_id"]}}
        if data.get("attributes"):
            rel["relationship_attributes"] = data["attributes"]
        op["cio_relationships"] = [rel]
        return op
    if kind == "delivery_event":
        return _timed({"type": "delivery", "action": "event", "identifiers": {"id": m.identifier},
                       "name": m.name, "attributes": {"device_token": data["device_token"]}}, m)
    op = {"type": "person", "identifiers": _who(m.identifier, key), "action": kind}
    if kind in _EVENT_ACTIONS:
        op["action"] = _EVENT_ACTIONS[kind]
        op["name"] = m.name
        op["id"] = m.ulid
        _timed(op, m)
        if m.data:
            op["attributes"] = m.data
    elif kind == "identify":
        op["attributes"] = m.data or {}
        if m.ts is not None:
            op["timestamp"] = m.ts
    elif kind in ("add_relationships", "delete_relationships"):
        op["cio_relationships"] = data["relationships"]
    elif kind == "add_device":
        device: dict[str, Any] = {
            "token": device_token(data, m.name),
            "platform": data.get("platform"),
        }
        if data.get("last_used") is not None:
            device["last_used"] = data["last_used"]
        attributes = dict(data.get("attributes") or {})
        for name, wire in _DEVICE_ATTRIBUTES.items():
            if data.get(name) is not None:
                attributes.setdefault(wire, data[name])
        if attributes:
            device["attributes"] = attributes
        op["device"] = device
    elif kind == "delete_device":
        op["device"] = {"token": m.name}
    return op


def _v1(item: Leased) -> Request:
    """The one v1 request of a message that has no v2 operation."""
    m = item.message
    kind = m.kind
    body: dict[str, Any]
    if kind == "metric":
        body = _timed({"delivery_id": m.identifier, "metric": m.name, **(m.data or {})}, m)
        path = "/api/v1/metrics"
    elif kind == "unsubscribe":
        body = {"unsubscribe": True}
        path = f"/unsubscribe/{quote(m.identifier, safe='')}"
    elif kind in ("segment_add", "segment_remove"):
        body = {"ids": list((m.data or {}).get("ids", ()))}
        verb = "add_customers" if kind == "segment_add" else "remove_customers"
        path = (f"/api/v1/segments/{quote(m.identifier, safe='')}/{verb}"
                f"?id_type={quote(m.name or 'id', safe='')}")
    else:
        return _anonymous(item)
    return Request("track", "POST", path, orjson.dumps(body, option=_OPTS), [item])


def _anonymous(item: Leased) -> Request:
    m = item.message
    body = _timed({"name": m.name, "anonymous_id": m.identifier, "id": m.ulid}, m)
    if m.kind != "track_anonymous":
        body["type"] = m.kind.partition("_")[0]
    if m.data:
        body["data"] = m.data
    return Request("track", "POST", "/api/v1/events", orjson.dumps(body, option=_OPTS), [item])


def _batch(parts: list[bytes], items: list[Leased]) -> Request:
    body = b'{"batch":[' + b",".join(parts) + b"]}"
    return Request("track", "POST", "/api/v2/batch", body, items)


def encode(
    items: list[Leased], max_batch_bytes: int = MAX_BATCH_BYTES
) -> tuple[list[Request], list[Dead]]:
    """Requests for ``items`` (in order), and the ones refused for size before sending."""
    requests: list[Request] = []
    refused: list[Dead] = []
    parts: list[bytes] = []
    batch_items: list[Leased] = []
    size = 12
    for item in items:
        op = operation(item.message)
        if op is None:
            requests.append(_v1(item))
            continue
        raw = orjson.dumps(op, option=_OPTS)
        if len(raw) > MAX_OP_BYTES:
            refused.append(Dead([item], f"OCDP308: operation is {len(raw)} bytes; "
                                        f"Customer.io takes at most {MAX_OP_BYTES}"))
            continue
        if parts and size + len(raw) + 1 > max_batch_bytes:
            requests.append(_batch(parts, batch_items))
            parts, batch_items, size = [], [], 12
        parts.append(raw)
        batch_items.append(item)
        size += len(raw) + 1
    if parts:
        requests.append(_batch(parts, batch_items))
    return requests, refused


def _errors(body: bytes) -> list[dict[str, Any]]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(parsed, dict):
        return []
    errors = parsed.get("errors")
    if isinstance(errors, list):
        return [e for e in errors if isinstance(e, dict)]
    meta = parsed.get("meta")
    if isinstance(meta, dict):
        found = meta.get("errors") or ([meta["error"]] if "error" in meta else [])
        return [{"message": str(e)} for e in found]
    return []


def _reason(status: int, error: Mapping[str, Any] | None) -> str:
    if not error:
        return f"HTTP {status}"
    parts = [str(error.get(k)) for k in ("reason", "field", "message") if error.get(k)]
    return f"HTTP {status}: " + " ".join(parts)[:200]


UNREADABLE_207: Final = ("OCDP336 HTTP 207: Customer.io's partial answer does not say which "
                         "operations it refused; the batch is sent again (events are "
                         "de-duplicated by id)")


def refused_operations(body: bytes, count: int | None = None
                       ) -> dict[int, Mapping[str, Any]] | None:
    """A 207's refused operations by batch index, or None when the answer does not say which
    ones: not JSON, no ``errors``, or an error without a valid ``batch_index``. A partial
    answer is only trusted whole: one unreadable error could be any operation."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if not isinstance(errors, list) or not errors:
        return None
    bad: dict[int, Mapping[str, Any]] = {}
    for error in errors:
        index = error.get("batch_index") if isinstance(error, dict) else None
        if type(index) is not int or index < 0 or (count is not None and index >= count):
            return None
        bad[index] = error
    return bad


def classify(request: Request, result: Response | Failure, now: float) -> list[Outcome]:
    """Outcomes of one exchange.

    A 207 from ``/api/v2/batch`` names the refused operations and means every other one was
    accepted (spec §4). When it cannot be read, nothing is known to be accepted, so it is
    never counted as a success: the whole batch is retried (OCDP336, logged by ``explain``)
    rather than split, because halves would resend the same operations anyway and a
    retry keeps the batch's order. Customer.io de-duplicates events by their ``id``; the
    person operations set state, so applying an accepted one again changes nothing. An
    answer that stays unreadable ends as a dead letter with that reason once the retry
    budget is spent.
    """
    items = request.items
    if isinstance(result, Failure):
        return [Retry(items, result.reason)]
    status = result.status
    if status == 207 and request.path == "/api/v2/batch":
        refused = refused_operations(result.body, len(items))
        if refused is None:
            return [Retry(items, UNREADABLE_207, status)]
        bad = {i: _reason(status, error) for i, error in refused.items()}
        outcomes: list[Outcome] = [
            Dead([items[i]], reason, status) for i, reason in sorted(bad.items())
        ]
        good = [item for i, item in enumerate(items) if i not in bad]
        if good:
            outcomes.append(Delivered(good))
        return outcomes
    verdict = classify_status(status)
    if verdict == "ok":
        return [Delivered(items)]
    errors = _errors(result.body)
    reason = _reason(status, errors[0] if errors else None)
    if verdict == "retry":
        return [Retry(items, reason, status, parse_retry_after(result.headers.get("retry-after"),
                                                               now))]
    if status in (400, 413) and len(items) > 1:
        return [Split(items, reason, status)]
    return [Dead(items, reason, status)]


_DESCRIPTIONS: Final = {
    "page": "Tracked page {name} for {who}",
    "page_anonymous": "Tracked page {name} for {who}",
    "screen": "Tracked screen {name} for {who}",
    "screen_anonymous": "Tracked screen {name} for {who}",
    "add_relationships": "Added relationships for {who}",
    "delete_relationships": "Deleted relationships for {who}",
    "object_identify": "Identified object {name}/{who}",
    "object_delete": "Deleted object {name}/{who}",
    "object_anonymous": "Related object {name}/{who} to an anonymous person",
    "metric": "Reported {name} for delivery {who}",
    "delivery_event": "Reported {name} for delivery {who}",
    "unsubscribe": "Unsubscribed delivery {who}",
    "segment_add": "Added people to segment {who}",
    "segment_remove": "Removed people from segment {who}",
}


def describe(message: Message) -> str:
    """The dual-write guide's debug line, without its prefix."""
    kind, who = split_kind(message.kind)[0], message.identifier
    if kind == "identify":
        return f"Identified {who}"
    if kind in ("track", "track_anonymous"):
        return f"Tracked event {message.name} for {who}"
    if kind in _DESCRIPTIONS:
        return _DESCRIPTIONS[kind].format(who=who, name=message.name)
    if kind == "add_device":
        return f"Registered device for {who}"
    if kind == "delete_device":
        return f"Removed device for {who}"
    if kind == "merge":
        return "Merged people"
    return f"{kind.capitalize()}ed {who}" if kind.endswith("suppress") else f"Deleted {who}"


_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
# Objects have the limits of people (ids of 150 bytes; 300 attributes of 150/1000 bytes), and
# a person keyed by email, cio_id or phone those of the same call keyed by id.
_LIMITS_OF: Final = {"object_identify": "identify"}


class CustomerIOTrack:
    """Customer.io's Track API as a ``Destination``: batches of up to ``batch_size``."""

    name = NAME
    prefix = "[Customer.io]"
    batched = True

    def __init__(self, track_url: str, site_id: str, api_key: str,
                 refuse: Callable[[Message], str | None] | None = None,
                 region_hint: Callable[[str | None], str | None] | None = None) -> None:
        self.base = track_url
        self._refuse = refuse
        self._region_hint = region_hint
        self._auth = {"Authorization": basic_auth(site_id, api_key),
                      "Content-Type": "application/json"}

    def _address(self, request: Request) -> Request:
        request.base = self.base
        request.headers.update(self._auth)
        return request

    def encode(self, items: list[Leased]) -> tuple[list[Request], list[Dead]]:
        refused: list[Dead] = []
        if self._refuse is not None:
            keep: list[Leased] = []
            for item in items:
                message = item.message
                kind = _LIMITS_OF.get(message.kind) or split_kind(message.kind)[0]
                if kind != message.kind:
                    message = message._replace(kind=kind)
                reason = self._refuse(message)
                if reason is None:
                    keep.append(item)
                else:
                    refused.append(Dead([item], reason))
            items = keep
        requests, too_big = encode(items)
        return [self._address(r) for r in requests], refused + too_big

    def classify(self, request: Request, result: Response | Failure, now: float) -> list[Outcome]:
        return classify(request, result, now)

    def failover(self, request: Request, result: Response | Failure) -> str | None:
        return None

    def probe(self) -> Request:
        return self._address(Request("track", "GET", "/api/v1/accounts/region", None, []))

    def describe(self, message: Message) -> str:
        return describe(message)

    def explain(self, response: Response) -> str | None:
        status = response.status
        if status == 207 and refused_operations(response.body) is None:
            return UNREADABLE_207
        if status in (401, 403):
            from ..guards import explain_unauthorized

            return (f"OCDP305 {explain_unauthorized('track')} Messages are dead-lettered; "
                    "replay them with `opencdp queue replay` once the keys are fixed.")
        if status in _REDIRECTS:
            location = response.headers.get("location")
            hint = self._region_hint(location) if self._region_hint is not None else None
            return hint or (f"OCDP334 HTTP {status}: the Track host {self.base} redirected to "
                            f"{location or 'nowhere'}; redirects are not followed. Check "
                            "CustomerIO(region=...) and track_url. Messages are dead-lettered; "
                            "replay them once fixed.")
        return None


def from_config(config: ClientConfig) -> CustomerIOTrack | None:
    """Customer.io's Track API when the configuration dual-writes (held copies included)."""
    from ..guards import customerio_refusal

    cio = config.customer_io
    if cio is None or not config.dual_write:
        return None
    return CustomerIOTrack(cio.track_url, cio.site_id, cio.api_key, refuse=customerio_refusal,
                           region_hint=cio.region_hint)


# Bit 2 since the first queue file: fixed, so files and streams written before stay readable.
registry.register(NAME, from_config, bit=2)
