"""Customer.io encoder: v2 batches, size limits, outcomes. Pure data, no I/O."""

from __future__ import annotations

import orjson

from opencdp.destinations import customerio as cio
from opencdp.destinations.base import Dead, Delivered, Failure, Response, Retry, Split
from opencdp.message import Message, new_ulid
from opencdp.outbox.base import Leased


def leased(kind: str = "track", ident: str = "42", name: str | None = "purchase",
           data: dict | None = None, ts: int | None = None) -> Leased:
    return Leased(Message(new_ulid(), kind, ident, name, data, ts, 3))


def test_batch_carries_event_ulid_and_seconds_timestamp() -> None:
    item = leased(data={"price": 9.5}, ts=1_700_000_000)
    (request,), refused = cio.encode([item])
    assert not refused
    assert request.path == "/api/v2/batch"
    body = orjson.loads(request.body or b"")
    assert body == {"batch": [{
        "type": "person", "identifiers": {"id": "42"}, "action": "event", "name": "purchase",
        "id": item.message.ulid, "timestamp": 1_700_000_000, "attributes": {"price": 9.5},
    }]}


def test_operations_for_every_person_kind() -> None:
    device = leased("add_device", name="dev-1",
                    data={"platform": "ios", "apn_token": "tok", "model": "iPhone"})
    ops = {m.message.kind: cio.operation(m.message) for m in [
        leased("identify", name=None, data={"email": "a@b.co"}),
        device,
        leased("delete_device", name="tok"),
        leased("suppress", name=None),
        leased("unsuppress", name=None),
        leased("delete", name=None),
        leased("merge", name=None, data={"primary": {"id": "1"}, "secondary": {"email": "x@y.z"}}),
    ]}
    assert ops["identify"] == {"type": "person", "identifiers": {"id": "42"},
                               "action": "identify", "attributes": {"email": "a@b.co"}}
    assert ops["add_device"]["device"] == {"token": "tok", "platform": "ios",
                                           "attributes": {"device_model": "iPhone"}}
    assert ops["delete_device"]["device"] == {"token": "tok"}
    assert ops["suppress"]["action"] == "suppress"
    assert ops["merge"] == {"type": "person", "action": "merge", "primary": {"id": "1"},
                            "secondary": {"email": "x@y.z"}}


def test_anonymous_events_go_to_v1() -> None:
    item = leased("track_anonymous", ident="anon-1", name="page_viewed")
    (request,), _ = cio.encode([item])
    assert request.path == "/api/v1/events"
    body = orjson.loads(request.body or b"")
    assert body["anonymous_id"] == "anon-1" and body["id"] == item.message.ulid


def test_batches_are_cut_below_the_size_limit_and_big_ops_refused() -> None:
    items = [leased(data={"blob": "x" * 20_000}) for _ in range(60)]
    huge = leased(data={"blob": "x" * 40_000})
    requests, refused = cio.encode([*items, huge])
    assert all(len(r.body or b"") <= cio.MAX_BATCH_BYTES for r in requests)
    assert sum(len(r.items) for r in requests) == 60
    assert len(requests) >= 3
    assert [d.items for d in refused] == [[huge]]
    assert "OCDP308" in refused[0].reason


def test_207_dead_letters_only_the_named_ops() -> None:
    items = [leased() for _ in range(4)]
    (request,), _ = cio.encode(items)
    body = orjson.dumps({"errors": [{"batch_index": 2, "reason": "invalid", "field": "name",
                                     "message": "bad"}]})
    outcomes = cio.classify(request, Response(207, body, {}), 0.0)
    dead = [o for o in outcomes if isinstance(o, Dead)]
    ok = [o for o in outcomes if isinstance(o, Delivered)]
    assert [d.items for d in dead] == [[items[2]]]
    assert ok[0].items == [items[0], items[1], items[3]]


def test_whole_batch_refusal_is_split_and_failures_retried() -> None:
    items = [leased() for _ in range(4)]
    (request,), _ = cio.encode(items)
    (split,) = cio.classify(request, Response(400, b'{"errors":[]}', {}), 0.0)
    assert isinstance(split, Split)
    (retry,) = cio.classify(request, Response(429, b"", {"retry-after": "2"}), 0.0)
    assert isinstance(retry, Retry) and retry.after == 2.0
    (retry,) = cio.classify(request, Failure("ReadTimeout", "timeout"), 0.0)
    assert isinstance(retry, Retry)
    (dead,) = cio.classify(request, Response(401, b"", {}), 0.0)
    assert isinstance(dead, Dead) and dead.status == 401


def test_debug_lines_match_the_dual_write_guide() -> None:
    assert cio.describe(leased("identify", ident="user123").message) == "Identified user123"
    assert (cio.describe(leased("track", ident="user123", name="purchase_completed").message)
            == "Tracked event purchase_completed for user123")


def test_track_api_operations_beyond_people() -> None:
    page = leased("page", name="/pricing", data={"title": "Pricing"}, ts=1_700_000_000)
    ops = [cio.operation(m.message) for m in [
        page,
        leased("identify:email", ident="ada@example.com", name=None, data={"plan": "pro"}),
        leased("suppress:phone", ident="+15551234567", name=None),
        leased("track:cio_id", ident="abc", name="renewed"),
        leased("object_identify", ident="acme", name="1", data={"name": "Acme"}),
        leased("object_delete", ident="acme", name="1"),
        leased("object_anonymous", ident="acme", name="1", data={"anonymous_id": "anon-1"}),
        leased("add_relationships", name=None, data={"relationships": [
            {"identifiers": {"object_type_id": "1", "object_id": "acme"}}]}),
        leased("delivery_event", ident="d-1", name="opened", data={"device_token": "t"},
               ts=1_700_000_000),
    ]]
    assert ops[0] == {"type": "person", "identifiers": {"id": "42"}, "action": "page",
                      "name": "/pricing", "id": page.message.ulid, "timestamp": 1_700_000_000,
                      "attributes": {"title": "Pricing"}}
    assert ops[1] == {"type": "person", "identifiers": {"email": "ada@example.com"},
                      "action": "identify", "attributes": {"plan": "pro"}}
    assert ops[2] == {"type": "person", "identifiers": {"phone": "+15551234567"},
                      "action": "suppress"}
    assert (ops[3] or {})["identifiers"] == {"cio_id": "abc"}
    assert (ops[3] or {})["action"] == "event"
    acme = {"object_type_id": "1", "object_id": "acme"}
    assert ops[4] == {"type": "object", "action": "identify", "identifiers": acme,
                      "attributes": {"name": "Acme"}}
    assert ops[5] == {"type": "object", "action": "delete", "identifiers": acme}
    assert ops[6] == {"type": "object", "action": "identify_anonymous", "identifiers": acme,
                      "cio_relationships": [{"identifiers": {"anonymous_id": "anon-1"}}]}
    assert ops[7] == {"type": "person", "identifiers": {"id": "42"},
                      "action": "add_relationships",
                      "cio_relationships": [{"identifiers": acme}]}
    assert ops[8] == {"type": "delivery", "action": "event", "identifiers": {"id": "d-1"},
                      "name": "opened", "timestamp": 1_700_000_000,
                      "attributes": {"device_token": "t"}}


def test_v1_only_kinds_get_one_request_each_and_batches_keep_the_rest() -> None:
    items = [
        leased("page", name="/a"),
        leased("metric", ident="d/1", name="clicked", data={"href": "https://x.test"},
               ts=1_700_000_000),
        leased("object_identify", ident="acme", name="1", data={}),
        leased("unsubscribe", ident="d/1 x", name=None),
        leased("segment_add", ident="7", name="email", data={"ids": ["a@example.com"]}),
        leased("segment_remove", ident="7", name="id", data={"ids": ["42"]}),
        leased("screen_anonymous", ident="anon-1", name="Home"),
    ]
    requests, refused = cio.encode(items)
    assert not refused
    assert [(r.path, len(r.items)) for r in requests] == [
        ("/api/v1/metrics", 1),
        ("/unsubscribe/d%2F1%20x", 1),
        ("/api/v1/segments/7/add_customers?id_type=email", 1),
        ("/api/v1/segments/7/remove_customers?id_type=id", 1),
        ("/api/v1/events", 1),
        ("/api/v2/batch", 2),
    ]
    bodies = [orjson.loads(r.body or b"") for r in requests]
    assert bodies[0] == {"delivery_id": "d/1", "metric": "clicked", "timestamp": 1_700_000_000,
                         "href": "https://x.test"}
    assert bodies[1] == {"unsubscribe": True}
    assert bodies[2] == {"ids": ["a@example.com"]}
    assert bodies[4]["type"] == "screen" and bodies[4]["name"] == "Home"
    assert [op["type"] for op in bodies[5]["batch"]] == ["person", "object"]


def test_limits_of_people_apply_to_people_keyed_by_other_identifiers() -> None:
    from opencdp.guards import customerio_refusal

    too_many = {f"a{i}": i for i in range(301)}
    track = cio.CustomerIOTrack("http://127.0.0.1:1", "s", "k", refuse=customerio_refusal)
    requests, refused = track.encode([
        leased("identify:email", ident="a@example.com", name=None, data=too_many),
        leased("object_identify", ident="acme", name="1", data=too_many),
        leased("object_identify", ident="o" * 151, name="1", data={}),
        leased("object_identify", ident="fine", name="1", data={"a": 1})])
    assert [d.reason.split(" ", 1)[0] for d in refused] == ["OCDP135", "OCDP135", "OCDP113"]
    (request,) = requests
    assert [m.message.identifier for m in request.items] == ["fine"]


def test_debug_lines_for_the_track_api() -> None:
    assert (cio.describe(leased("identify:email", ident="a@b.co", name=None).message)
            == "Identified a@b.co")
    assert (cio.describe(leased("page", name="/pricing").message)
            == "Tracked page /pricing for 42")
    assert (cio.describe(leased("object_identify", ident="acme", name="1").message)
            == "Identified object 1/acme")
    assert (cio.describe(leased("segment_add", ident="7", name="id").message)
            == "Added people to segment 7")
