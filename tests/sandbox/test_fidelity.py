"""The sandbox answers as Customer.io's Track OpenAPI says (issue 13, "Sandbox fidelity").

Each test quotes the line of ``../shared/spec/customerio/track-api.openapi.json`` (or of
``../shared/spec/customerio.md``, or the HTTP RFC) that decides the answer.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from opencdp.sandbox import Sandbox

from .conftest import APP_KEY, SITE, TRACK_KEY, Stilled

Person = dict[str, Any]


def _live(sandbox: Sandbox) -> list[Person]:
    """The people the service holds (the admin list also shows suppressed profiles)."""
    return [p for p in sandbox.people("customerio") if not p["suppressed"]]


def _ignored(sandbox: Sandbox) -> dict[str, int]:
    result: dict[str, int] = sandbox.stats()["customerio"]["ignored"]
    return result


# --- 1, 2: identify -----------------------------------------------------------------------

def test_a_body_email_that_belongs_to_someone_updates_that_person(
        sandbox: Sandbox, track: httpx.Client) -> None:
    """identify: "If the identifier in the path does not belong to a person but you use an
    identifier in your request body that _does_ belong to a person, your request updates
    the person and assigns them the identifier in the path." And the tip: "you send an
    identify call with a new `id` but an `email` that already belongs to someone, we update
    the existing person rather than creating a new one. The existing person gets the new
    `id`." """
    assert track.put("/api/v1/customers/ada%40example.com", json={"plan": "a"}
                     ).status_code == 200
    assert track.put("/api/v1/customers/u1", json={"email": "ADA@example.com", "seats": 2}
                     ).status_code == 200
    people = sandbox.people("customerio")
    assert len(people) == 1
    assert (people[0]["id"], people[0]["email"]) == ("u1", "ada@example.com")
    assert people[0]["attributes"]["seats"] == 2
    assert track.put("/api/v1/customers/u2", json={"email": "ada@example.com"}
                     ).status_code == 200
    assert [p["id"] for p in sandbox.people("customerio")] == ["u2"]


def test_path_and_body_naming_different_people_is_an_update_failure(
        sandbox: Sandbox, track: httpx.Client) -> None:
    """identify: "If the identifier in the path and request body belong to different people,
    your request may return `200 OK` but produce an *Attribute Update Failure*"."""
    track.put("/api/v1/customers/a", json={"email": "a@example.com"})
    track.put("/api/v1/customers/b", json={"email": "b@example.com"})
    r = track.put("/api/v1/customers/a", json={"email": "b@example.com", "x": 1})
    assert r.status_code == 200
    assert "x" not in sandbox.person("customerio", "a")["attributes"]
    assert sandbox.person("customerio", "b@example.com")["id"] == "b"
    assert _ignored(sandbox) == {"attribute_update_failure": 1}


def test_changing_an_id_needs_the_cio_id(sandbox: Sandbox, track: httpx.Client) -> None:
    """identify `id`: "You can set a person's ID if you identify them by email (in the path);
    you can update this value if you identify a person by `cio_id`." And: "If you want to
    update a person's identifiers after they are set, you must reference them using their
    `cio_id`"."""
    track.put("/api/v1/customers/old", json={"email": "o@example.com"})
    assert track.put("/api/v1/customers/old", json={"id": "new", "plan": "p"}
                     ).status_code == 200
    assert sandbox.person("customerio", "new") is None
    old = sandbox.person("customerio", "old")
    assert old["attributes"]["plan"] == "p"
    assert "id" not in old["attributes"]
    assert track.put("/api/v1/customers/old", json={"email": "other@example.com"}
                     ).status_code == 200
    assert sandbox.person("customerio", "old")["email"] == "o@example.com"
    assert _ignored(sandbox) == {"identifier_change_needs_cio_id": 2}
    cio = old["cio_id"]
    assert track.put(f"/api/v1/customers/cio_{cio}",
                     json={"id": "new", "email": "n@example.com"}).status_code == 200
    renamed = sandbox.person("customerio", "new")
    assert (renamed["cio_id"], renamed["email"]) == (cio, "n@example.com")
    assert sandbox.person("customerio", "old") is None
    assert sandbox.person("customerio", "o@example.com") is None


def test_an_id_can_be_set_on_a_person_known_by_email(sandbox: Sandbox,
                                                     track: httpx.Client) -> None:
    """identify `id`: "You can set a person's ID if you identify them by email (in the
    path)"."""
    track.put("/api/v1/customers/e%40example.com", json={})
    track.put("/api/v1/customers/e%40example.com", json={"id": "e1"})
    assert sandbox.person("customerio", "e1")["email"] == "e@example.com"
    assert len(sandbox.people("customerio")) == 1


# --- 3: unknown cio_ ids --------------------------------------------------------------------

@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("PUT", "", {"a": 1}),
    ("POST", "/suppress", None),
    ("POST", "/unsuppress", None),
    ("DELETE", "", None),
    ("POST", "/events", {"name": "x"}),
    ("PUT", "/devices", {"device": {"id": "t", "platform": "ios"}}),
])
def test_unknown_cio_ids_are_dropped_with_200(sandbox: Sandbox, track: httpx.Client,
                                              method: str, suffix: str,
                                              body: Any) -> None:
    """identify: "If the `cio_id` does not exist or belongs to a person who was deleted,
    we'll drop the request." The same holds for every call addressed by ``cio_``."""
    r = track.request(method, f"/api/v1/customers/cio_ffff{suffix}", json=body)
    assert (r.status_code, r.json()) == (200, {})
    assert sandbox.people("customerio") == []
    assert sandbox.stats()["customerio"]["suppressed"] == 0
    assert _ignored(sandbox) == {"unknown_cio_id": 1}


def test_v2_unknown_cio_id_is_dropped_too(sandbox: Sandbox, track: httpx.Client) -> None:
    """As above, for Track v2 ``identifiers: {"cio_id": ...}``."""
    ops = [{"type": "person", "identifiers": {"cio_id": "ffff"}, "action": a, **extra}
           for a, extra in (("identify", {"attributes": {"a": 1}}), ("suppress", {}),
                            ("delete", {}), ("event", {"name": "x"}))]
    r = track.post("/api/v2/batch", json={"batch": ops})
    assert (r.status_code, r.json()) == (200, {})
    assert sandbox.people("customerio") == []
    assert _ignored(sandbox) == {"unknown_cio_id": 4}


# --- 4: suppress ----------------------------------------------------------------------------

def test_suppress_deletes_and_unsuppress_does_not_restore(sandbox: Sandbox,
                                                          track: httpx.Client) -> None:
    """suppress: "Delete a customer profile and prevent the person's identifier(s) from being
    re-added to your workspace. Any future API calls or operations referencing the specified
    ID are ignored." unsuppress: "Unsuppressing a profile does not recreate the profile that
    you previously suppressed. [...] Identifying a person after unsuppressing them creates a
    new profile, with none of the history of the previously suppressed identifier." """
    track.put("/api/v1/customers/s1", json={"email": "s1@example.com", "plan": "p"})
    track.post("/api/v1/customers/s1/events", json={"name": "before"})
    assert track.post("/api/v1/customers/s1/suppress").status_code == 200
    assert _live(sandbox) == []
    assert sandbox.stats()["customerio"]["people"] == 0
    assert sandbox.stats()["customerio"]["suppressed"] == 1
    # both identifiers are refused, whichever names the person
    track.put("/api/v1/customers/s1%40example.com", json={"plan": "q"})
    track.post("/api/v2/entity", json={"type": "person", "identifiers": {"id": "s1"},
                                       "action": "event", "name": "x"})
    (listed,) = sandbox.people("customerio")
    assert (listed["attributes"], listed["suppressed"]) == (
        {"email": "s1@example.com", "plan": "p"}, True)
    assert _ignored(sandbox) == {"suppressed_identifier": 2}
    suppressed = httpx.get(f"{sandbox.admin_url}/suppressed").json()
    assert [(p["id"], p["email"], p["suppressed"]) for p in suppressed] == [
        ("s1", "s1@example.com", True)]
    assert track.post("/api/v1/customers/s1%40example.com/unsuppress").status_code == 200
    assert sandbox.person("customerio", "s1") is None
    track.put("/api/v1/customers/s1", json={"plan": "fresh"})
    fresh = sandbox.person("customerio", "s1")
    assert (fresh["attributes"], fresh["events"], fresh["suppressed"]) == (
        {"plan": "fresh"}, [], False)


def test_suppressing_an_unknown_identifier_refuses_it(sandbox: Sandbox,
                                                      track: httpx.Client) -> None:
    """suppress: the identifier is what is suppressed ("prevent the person's identifier(s)
    from being re-added"), whether or not a profile holds it yet."""
    assert track.post("/api/v1/customers/ghost/suppress").status_code == 200
    track.put("/api/v1/customers/ghost", json={"a": 1})
    assert _live(sandbox) == []
    assert sandbox.person("customerio", "ghost")["suppressed"] is True


# --- 5: forms -------------------------------------------------------------------------------

def test_form_submit_answers_204_and_identifies(sandbox: Sandbox, track: httpx.Client) -> None:
    """submitForm: responses ``204`` and ``400``; "If the person who submitted the form does
    not already exist, we create them (like an identify request)." and "Customer.io reserves
    `form_id`, `form_name`, `form_type`, `form_url`, and `form_url_param` keys. If your
    request includes these keys, Customer.io ignores them." """
    body = {"data": {"email": "cool.person@example.com", "first_name": "cool",
                     "form_name": "ignored"}}
    r = track.post("/api/v1/forms/signup/submit", json=body)
    assert (r.status_code, r.content) == (204, b"")
    person = sandbox.person("customerio", "cool.person@example.com")
    assert person["attributes"] == {"email": "cool.person@example.com", "first_name": "cool"}
    forms = httpx.get(f"{sandbox.admin_url}/forms").json()
    assert forms == [{"form_id": "signup", "data": body["data"]}]


@pytest.mark.parametrize(("body", "needle"), [
    ({}, "data is required"),
    ({"data": {"first_name": "x"}}, "exactly one of email or id"),
    ({"data": {"email": "a@example.com", "id": "1"}}, "exactly one of email or id"),
    ({"data": {"id": "1", "age": 3}}, "data.age must be a string"),
    ({"data": "x"}, "data must be an object"),
])
def test_form_submit_rejections(track: httpx.Client, body: Any, needle: str) -> None:
    """submitForm: "Your request must contain one of—and only one of—`email` or `id`" and
    "Values for form fields _must_ be formatted as strings."; 400 is
    ``{"meta": {"errors": [string]}}``."""
    r = track.post("/api/v1/forms/f/submit", json=body)
    assert r.status_code == 400
    assert needle in r.json()["meta"]["errors"][0]


# --- 6: no auth on metrics ----------------------------------------------------------------

def test_metrics_and_push_events_need_no_auth(sandbox: Sandbox) -> None:
    """metrics / pushMetrics: ``"security": []``, "This endpoint is a part of the Track
    API. It does not require authentication." """
    with httpx.Client(base_url=sandbox.track_url) as anon:
        r1 = anon.post("/api/v1/metrics", json={"delivery_id": "RPIL", "metric": "bounced"})
        r2 = anon.post("/api/v1/push/events", json={"delivery_id": "d", "event": "opened",
                                                    "device_id": "t"})
        r3 = anon.post("/api/v1/metrics", json={"delivery_id": "d", "metric": "opened",
                                                "recipient": 42})
    assert [r.status_code for r in (r1, r2, r3)] == [200, 200, 200]
    stored = httpx.get(f"{sandbox.admin_url}/deliveries").json()
    assert [(d["delivery_id"], d.get("metric", d.get("event"))) for d in stored] == [
        ("RPIL", "bounced"), ("d", "opened"), ("d", "opened")]


# --- 7: object identify_anonymous -----------------------------------------------------------

def test_object_identify_anonymous_in_the_schemas_form(sandbox: Sandbox,
                                                       track: httpx.Client) -> None:
    """object_identify_anonymous: ``cio_relationships: [{"identifiers": {"anonymous_id":
    ...}, "relationship_attributes": {...}}]`` (the anonymous id sits inside the
    relationship)."""
    op = {"type": "object", "action": "identify_anonymous",
          "identifiers": {"object_type_id": "1", "object_id": "acme"},
          "attributes": {"name": "Acme"},
          "cio_relationships": [{"identifiers": {"anonymous_id": "anon-9"},
                                 "relationship_attributes": {"role": "viewer"}}]}
    r = track.post("/api/v2/entity", json=op)
    assert (r.status_code, r.json()) == (200, {})
    objects = httpx.get(f"{sandbox.admin_url}/objects").json()
    assert objects == [{"object_type_id": "1", "object_id": "acme",
                        "attributes": {"name": "Acme"},
                        "relationships": op["cio_relationships"]}]


# --- 8: merge -------------------------------------------------------------------------------

def test_merge_with_a_missing_primary_does_nothing(sandbox: Sandbox,
                                                   track: httpx.Client) -> None:
    """merge: "The primary profile must already exist in Customer.io for the merge operation
    to work. If the primary profile doesn't exist, your request won't do anything." """
    track.put("/api/v1/customers/2", json={"k": 1})
    for path, body in (("/api/v1/merge_customers", {"primary": {"id": "1"},
                                                     "secondary": {"id": "2"}}),
                       ("/api/v2/entity", {"type": "person", "action": "merge",
                                           "primary": {"id": "1"},
                                           "secondary": {"id": "2"}})):
        r = track.post(path, json=body)
        assert (r.status_code, r.json()) == (200, {})
    assert sandbox.person("customerio", "2")["attributes"] == {"k": 1}


@pytest.mark.parametrize("body", [b"{", b"[1]", b'{"primary": {"id": "1"}}', b"null"])
def test_merge_errors_all_use_meta_error(track: httpx.Client, body: bytes) -> None:
    """merge 400: ``{"meta": {"error": "Describes the error that caused your request to
    fail."}}`` (a string, not v1's usual ``errors`` list), whatever is wrong."""
    r = track.post("/api/v1/merge_customers", content=body,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert list(r.json()) == ["meta"]
    assert list(r.json()["meta"]) == ["error"]
    assert isinstance(r.json()["meta"]["error"], str) and r.json()["meta"]["error"]


# --- 10: paths, auth scheme, methods --------------------------------------------------------

@pytest.mark.parametrize("raw", ["%FF%FE", "a%00b", "%C3%28"])
def test_path_ids_that_are_not_utf8_or_hold_nul_are_400(sandbox: Sandbox,
                                                        track: httpx.Client,
                                                        raw: str) -> None:
    """track_customer_id is a JSON string: it can hold neither bytes that are not UTF-8
    nor, as an identifier, NUL. Refused by name (400, v1 error shape), never stored."""
    r = track.put(f"/api/v1/customers/{raw}", json={})
    assert r.status_code == 400
    assert "path" in r.json()["meta"]["errors"][0]
    assert sandbox.people("customerio") == []


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "bAsIc"])
def test_auth_scheme_word_is_case_insensitive(sandbox: Sandbox, scheme: str) -> None:
    """RFC 9110 §11.1: "It uses a case-insensitive token to identify the authentication
    scheme"."""
    token = base64.b64encode(f"{SITE}:{TRACK_KEY}".encode()).decode()
    with httpx.Client(base_url=sandbox.track_url,
                      headers={"Authorization": f"{scheme} {token}"}) as c:
        assert c.put("/api/v1/customers/1", json={}).status_code == 200
    with httpx.Client(base_url=sandbox.app_url,
                      headers={"Authorization": f"bearer {APP_KEY}"}) as c:
        r = c.post("/v1/send/sms", json={"transactional_message_id": "1", "to": "+14155550100",
                                         "identifiers": {"id": "1"}})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/api/v1/customers/1", "PUT, DELETE"),
    ("POST", "/api/v1/customers/1", "PUT, DELETE"),
    ("GET", "/api/v1/customers/1/events", "POST"),
    ("DELETE", "/api/v1/customers/1/devices", "PUT"),
    ("PUT", "/api/v2/batch", "POST"),
    ("GET", "/api/v2/entity", "POST"),
    ("POST", "/api/v1/accounts/region", "GET, HEAD"),
    ("GET", "/api/v1/forms/f/submit", "POST"),
    ("GET", "/unsubscribe/d1", "POST"),
])
def test_wrong_methods_are_405_with_allow(track: httpx.Client, method: str, path: str,
                                          allow: str) -> None:
    """RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field in a 405
    response containing a list of the target resource's currently supported methods." The
    body keeps the path's Track error shape."""
    r = track.request(method, path)
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    body = r.json()
    if path.startswith("/api/v2/"):
        assert body["errors"][0]["reason"] == "method_not_allowed"
    else:
        assert method in body["meta"]["errors"][0]


def test_head_where_get_exists(sandbox: Sandbox, track: httpx.Client) -> None:
    """RFC 9110 §9.3.2: "The HEAD method is identical to GET except that the server MUST NOT
    send content in the response." """
    get = track.get("/api/v1/accounts/region")
    head = track.head("/api/v1/accounts/region")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == get.headers["content-length"]
    assert httpx.head(f"{sandbox.admin_url}/stats").status_code == 200


# --- 11: error messages and 413 -------------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    (b"[1]", "the body must be an object"),
    (b'"x"', "the body must be an object"),
])
def test_error_messages_name_their_subject(track: httpx.Client, body: bytes,
                                           message: str) -> None:
    """400: "Invalid or malformed request." with ``errors``: "Error descriptions." A
    description must say what is wrong with what."""
    r = track.put("/api/v1/customers/1", content=body,
                  headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (400, {"meta": {"errors": [message]}})


def test_too_many_attributes_names_the_body(track: httpx.Client) -> None:
    """As above: the message names the body that has too many attributes."""
    r = track.put("/api/v1/customers/1", json={f"a{i}": i for i in range(301)})
    assert r.json() == {"meta": {"errors": ["the body has 301 attributes; the limit is 300"]}}


@pytest.mark.parametrize(("path", "size"), [("/api/v2/batch", 500 * 1024),
                                            ("/api/v2/entity", 33 * 1024)])
def test_bodies_over_the_cap_are_413_in_the_track_shape(track: httpx.Client, path: str,
                                                        size: int) -> None:
    """batch 400 schema: ``{"errors": [{"reason", "field", "message"}]}``; the size caps
    (batch 500 KB, entity 32 KB) answer 413 in that same shape."""
    r = track.post(path, content=b'{"pad": "' + b"x" * size + b'"}',
                   headers={"content-type": "application/json"})
    assert r.status_code == 413
    (err,) = r.json()["errors"]
    assert (err["reason"], err["field"]) == ("too_large", "body")
    assert "limit" in err["message"]


def test_bodies_over_the_sandbox_cap_are_413_in_the_v1_shape(track: httpx.Client) -> None:
    """The sandbox's own 20 MB cap (far above every documented limit) answers 413 in the
    path's Track error shape too."""
    r = track.put("/api/v1/customers/1", content=b"x" * (21 * 1024 * 1024),
                  headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "limited to" in r.json()["meta"]["errors"][0]


# --- 12: App API ----------------------------------------------------------------------------

@pytest.mark.parametrize(("channel", "extra"), [
    ("in_app", {}),
    ("inbox_message", {"to": "inbox"}),
])
def test_in_app_and_inbox_sends_exist(sandbox: Sandbox, app_api: httpx.Client, channel: str,
                                      extra: dict[str, Any]) -> None:
    """customerio.md §8: "Also in the App API [...]: `/v1/send/in_app`,
    `/v1/send/inbox_message`"; the Track document's ``sendinapp``/``sendinbox`` schemas
    require ``transactional_message_id`` and ``identifiers``."""
    ok = app_api.post(f"/v1/send/{channel}", json={
        "transactional_message_id": 3, "identifiers": {"id": "1"}, **extra})
    assert ok.status_code == 200, ok.text
    assert set(ok.json()) == {"delivery_id", "queued_at"}
    missing = app_api.post(f"/v1/send/{channel}", json={"identifiers": {"id": "1"}})
    assert missing.status_code == 400
    assert "transactional_message_id" in missing.json()["meta"]["error"]
    assert [s["channel"] for s in sandbox.sends("customerio")] == [channel]


def test_a_service_account_token_needs_the_workspace_header(sandbox: Sandbox) -> None:
    """customerio.md §1: "App API transactional sends also accept a service-account token
    (`Bearer sa_live_...`) together with an `X-Workspace-Id: <int>` header." """
    body = {"transactional_message_id": 1, "identifiers": {"id": "1"}}
    with httpx.Client(base_url=sandbox.app_url) as c:
        auth = {"Authorization": "Bearer sa_live_sandbox"}
        ok = c.post("/v1/send/push", json=body, headers={**auth, "X-Workspace-Id": "1"})
        bare = c.post("/v1/send/push", json=body, headers=auth)
        other = c.post("/v1/send/push", json=body, headers={**auth, "X-Workspace-Id": "2"})
    assert ok.status_code == 200, ok.text
    assert (bare.status_code, other.status_code) == (401, 401)
    assert "X-Workspace-Id" in bare.json()["meta"]["error"]
    assert "sa_live_sandbox" not in bare.text + other.text


# --- 13: what the admin API shows -----------------------------------------------------------

def test_admin_shows_phones_event_ids_and_segments(sandbox: Sandbox,
                                                   track: httpx.Client) -> None:
    """Track v2 identifiers may be ``{"phone"}``; every stored event has an id (dedupe_id:
    "A [ULID] we use to deduplicate events"; Customer.io assigns one when none is sent);
    add_to_segment: "you can pass an `id_type` query parameter [...] `id`, `email`, or
    `cio_id`"."""
    track.post("/api/v2/entity", json={"type": "person", "identifiers": {"phone": "+14155550100"},
                                       "action": "identify", "attributes": {"a": 1}})
    track.post("/api/v2/entity", json={"type": "person", "identifiers": {"phone": "+14155550100"},
                                       "action": "page", "name": "/home"})
    track.put("/api/v1/customers/u1", json={"email": "u1@example.com"})
    track.post("/api/v1/customers/u1/events", json={"name": "x"})
    by_phone = sandbox.person("customerio", "+14155550100")
    assert by_phone["phone"] == "+14155550100"
    for person in (by_phone, sandbox.person("customerio", "u1")):
        (event,) = person["events"]
        assert len(event["id"]) == 26
    track.post("/api/v1/segments/7/add_customers", json={"ids": ["u1", "nobody"]})
    track.post("/api/v1/segments/8/add_customers?id_type=email",
               json={"ids": ["u1@example.com"]})
    track.post("/api/v1/segments/9/add_customers?id_type=cio_id",
               json={"ids": [f"cio_{by_phone['cio_id']}"]})
    assert sandbox.person("customerio", "u1")["segments"] == ["7", "8"]
    segments = httpx.get(f"{sandbox.admin_url}/segments").json()
    assert segments == {"7": ["u1"], "8": ["u1"], "9": ["+14155550100"]}
    track.post("/api/v1/segments/7/remove_customers", json={"ids": ["u1"]})
    assert sandbox.person("customerio", "u1")["segments"] == ["8"]
    assert _ignored(sandbox) == {"segment_unknown_person": 1}
    bad = track.post("/api/v1/segments/seven/add_customers", json={"ids": ["u1"]})
    assert bad.status_code == 400


# --- strict mode ----------------------------------------------------------------------------

def _burst(client: httpx.Client, n: int) -> list[int]:
    return [client.put(f"/api/v1/customers/{i}", json={}).status_code for i in range(n)]


def test_the_default_sandbox_does_not_enforce_a_rate_limit(stilled: Stilled) -> None:
    """customerio.md §5: the Track request rate is "not strictly enforced"; the default
    sandbox accepts a burst well over 100 requests in a second."""
    with stilled.client("track") as track:
        assert set(_burst(track, 150)) == {200}


def test_strict_mode_enforces_100_per_second_and_refuses_milliseconds(
        stilled_strict: Stilled) -> None:
    """Strict mode keeps the sandbox's deliberate strictness: a hard 100 req/s and
    millisecond timestamps refused by name."""
    with stilled_strict.client("track") as strict_track:
        statuses = _burst(strict_track, 130)
        assert statuses.count(200) == 100
        assert statuses.count(429) == 30
        stilled_strict.clock.advance(1.0)
        r = strict_track.post("/api/v2/entity", json={
            "type": "person", "identifiers": {"id": "1"}, "action": "event", "name": "x",
            "timestamp": 1_700_000_000_000})
    assert r.status_code == 400
    assert r.json()["errors"][0]["reason"] == "timestamp_milliseconds"
