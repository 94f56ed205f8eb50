"""The App API reader against the sandbox over loopback: a workspace seeded through the Track
API (by our client, dual-writing), read back whole, by segment and by filter, resumed from
cursors, under strict mode's 10 requests/s, through injected failures, and with a wrong key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from opencdp import Client
from opencdp.errors import AppAPIAuthError, AppAPIError, ConfigurationError
from opencdp.migrate.appapi import AppAPIReader, Cursor, Record, record_key
from opencdp.sandbox import Sandbox
from opencdp.sandbox.app_people import text
from opencdp.testing import sandbox_options

APP_KEY = "sandbox-app-key"
PEOPLE = 1_200
NO_ID = 6  # people known only by email
SEGMENT = 42
IN_SEGMENT = range(0, PEOPLE, 4)
NOW = int(time.time())


def uid(i: int) -> str:
    return f"user-{i:05d}"


def seed(sandbox: Sandbox, people: int = PEOPLE) -> None:
    client = Client(**sandbox_options(sandbox))
    try:
        for i in range(people):
            client.identify(uid(i), {"email": f"{uid(i)}@example.com",
                                     "plan": "pro" if i % 3 == 0 else "free", "score": i,
                                     "vip": i % 2 == 0})
            token = {"apn_token": f"apn-{i}"} if i % 2 else {"fcm_token": f"fcm-{i}"}
            client.register_device(uid(i), f"dev-{i}", "ios" if i % 2 else "android",
                                   app_version="2.1", **token)  # type: ignore[arg-type]
            for k in range(2):
                client.track(uid(i), "purchased", {"amount": i + k, "sku": f"s{k}"},
                             timestamp=NOW - 3600 * (k + 1) - 86400 * 40 * (i % 2))
        assert client.flush(60)
    finally:
        client.close(timeout=5)
    with httpx.Client(base_url=sandbox.track_url, auth=("sandbox-site", "sandbox-track-key"),
                      timeout=10) as track:
        for i in range(NO_ID):
            email = f"no-id-{i}@example.com"
            assert track.put(f"/api/v1/customers/{email}",
                             json={"email": email, "source": "form"}).status_code == 200
        for first in range(0, len(IN_SEGMENT), 1000):
            ids = [uid(i) for i in IN_SEGMENT[first:first + 1000]]
            r = track.post(f"/api/v1/segments/{SEGMENT}/add_customers", json={"ids": ids})
            assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def workspace() -> Iterator[Sandbox]:
    with Sandbox(port=0) as sb:
        seed(sb)
        yield sb


@pytest.fixture(scope="module")
def strict_workspace() -> Iterator[Sandbox]:
    with Sandbox(port=0, strict=True) as sb:
        seed(sb, 1_000)
        yield sb


def reader(sandbox: Sandbox, **options: Any) -> AppAPIReader:
    return AppAPIReader(APP_KEY, app_url=sandbox.app_url, **options)


def expected(sandbox: Sandbox, keep: Any = lambda p: True) -> dict[str, Any]:
    """What a read of the people ``keep`` selects must yield, from the admin API's view of
    the Customer.io store."""
    people = [p for p in sandbox.people("customerio") if keep(p)]
    out: dict[str, Any] = {"identify": {}, "device": set(), "track": {}}
    for p in people:
        user = p["id"] or p["email"]
        out["identify"][user] = {k: text(v) for k, v in p["attributes"].items()}
        out["device"] |= {(user, d["id"], d["platform"]) for d in p["devices"]}
        for e in p["events"]:
            out["track"][e["id"]] = (user, e["name"], e["timestamp"], e["data"])
    return out


def person(record: Record) -> str:
    """Who a record names: its ``user_id``, or the email of a person without an id."""
    return str(record.get("user_id") or record["identifiers"]["email"])


def check(records: list[Record], want: dict[str, Any]) -> None:
    """Every selected person once, with their attributes, devices and events; nothing else."""
    kinds: dict[str, list[Record]] = {"identify": [], "device": [], "track": []}
    for r in records:
        kinds[r["type"]].append(r)
    users = [person(r) for r in kinds["identify"]]
    assert len(users) == len(set(users)) == len(want["identify"])
    assert {person(r): r["attributes"] for r in kinds["identify"]} == want["identify"]
    devices = [(person(r), r["device_id"], r["platform"]) for r in kinds["device"]]
    assert all(r["apn_token" if r["platform"] == "ios" else "fcm_token"] == r["device_id"]
               for r in kinds["device"]), "the push token, as register_device needs it"
    assert len(devices) == len(set(devices)) and set(devices) == want["device"]
    events = {r["event_id"]: (person(r), r["event"], r["timestamp"], r["properties"])
              for r in kinds["track"]}
    assert len(events) == len(kinds["track"]) and events == want["track"]


def window_max(times: list[float]) -> int:
    """The most requests in any sliding second ``(t - 1, t]``, as the sandbox counts."""
    times = sorted(times)
    most = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def app_reads(sandbox: Sandbox) -> list[dict[str, Any]]:
    answer = httpx.get(f"{sandbox.admin_url}/app_reads", timeout=10).json()
    requests: list[dict[str, Any]] = answer["requests"]
    return requests


# --- whole reads ---------------------------------------------------------------------------

def test_reads_every_person_device_and_event_once(workspace: Sandbox) -> None:
    """The default reader (paced, pages of 1000, batches of 100): everything, counted."""
    rd = reader(workspace, activities=True)
    records = [r for _, r in rd.read()]
    check(records, expected(workspace))
    assert rd.counts["people"] == PEOPLE + NO_ID
    assert rd.counts["devices"] == PEOPLE and rd.counts["events"] == 2 * PEOPLE
    assert rd.counts["people_without_id"] == NO_ID and rd.counts["people_gone"] == 0
    # 2 search pages, 13 batches of <= 100, 24 activity pages of 100
    assert rd.counts["requests"] == 2 + 13 + 24
    assert rd.counts["429s"] == 0 and rd.counts["retries"] == 0
    assert rd.counts["events_older_than_30_days"] == PEOPLE  # the odd users' events
    report = rd.report()
    assert report["activity_guarantee_days"] == 30
    assert any("guarantees only the last 30 days" in n and f"{PEOPLE} older" in n
               for n in report["notes"])
    by_email = [r for r in records if r["type"] == "identify"
                and r.get("identifiers", {}).get("email", "").startswith("no-id-")]
    assert all("user_id" not in r for r in by_email), "never a made-up user_id"
    assert len(by_email) == NO_ID and all("id" not in r["attributes"] for r in records
                                         if r["type"] == "identify")


def test_track_records_carry_the_activity_ids(workspace: Sandbox) -> None:
    rd = reader(workspace, activities=True, rate=None)
    pairs = list(rd.read())
    tracks = [(c, r) for c, r in pairs if r["type"] == "track"]
    assert all(record_key(c) == f"event:{r['event_id']}" for c, r in tracks)
    keys = [record_key(c) for c, _ in pairs]
    assert len(keys) == len(set(keys))  # a key names one record


def test_segment_selection(workspace: Sandbox) -> None:
    members = {uid(i) for i in IN_SEGMENT}
    rd = reader(workspace, segment=SEGMENT, activities=True, rate=None)
    records = [r for _, r in rd.read()]
    check(records, expected(workspace, lambda p: p["id"] in members))
    assert rd.counts["people"] == len(members)
    assert rd.counts["activities_outside_selection"] == 2 * (PEOPLE - len(members))


def test_filter_selection(workspace: Sandbox) -> None:
    flt = {"and": [{"attribute": {"field": "plan", "operator": "eq", "value": "pro"}},
                   {"not": {"segment": {"id": SEGMENT}}}]}
    rd = reader(workspace, filter=json.dumps(flt), rate=None)
    records = [r for _, r in rd.read()]
    members = {uid(i) for i in range(PEOPLE) if i % 3 == 0 and i % 4}
    want = expected(workspace, lambda p: p["id"] in members)
    want["track"] = {}
    check(records, want)


# --- resuming ------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [
    {"activities": True},
    {"activities": True, "segment": SEGMENT},
])
def test_resume_from_any_cursor_yields_exactly_the_rest(workspace: Sandbox,
                                                        options: dict[str, Any]) -> None:
    full = list(reader(workspace, page_size=250, rate=None, **options).read())
    people_end = max(i for i, (c, _) in enumerate(full) if c["phase"] == "people")
    picks = sorted({0, 1, people_end // 2, people_end // 2 + 1, people_end, people_end + 1,
                    (people_end + len(full)) // 2, len(full) - 2, len(full) - 1})
    for k in picks:
        cursor: Cursor = json.loads(json.dumps(full[k][0]))  # as a checkpoint holds it
        rd = reader(workspace, page_size=250, rate=None, **options)
        rest = list(rd.read(start_from=cursor))
        assert [r for _, r in rest] == [r for _, r in full[k + 1:]], k
        assert [c for c, _ in rest] == [c for c, _ in full[k + 1:]], k


def test_a_cursor_of_another_selection_is_refused(workspace: Sandbox) -> None:
    cursor, _ = next(iter(reader(workspace, segment=SEGMENT, rate=None).read()))
    for other in (reader(workspace, rate=None), reader(workspace, segment=SEGMENT,
                                                       activities=True)):
        with pytest.raises(ConfigurationError, match="OCDP364") as info:
            other.read(start_from=cursor)
        assert info.value.code == "OCDP364"
    with pytest.raises(ConfigurationError, match="OCDP364"):
        reader(workspace).read(start_from={"page": 3})


# --- the rate limit ------------------------------------------------------------------------

def test_strict_paced_reader_stays_within_10_per_second(strict_workspace: Sandbox) -> None:
    before = len(app_reads(strict_workspace))
    rd = reader(strict_workspace, activities=True)
    records = [r for _, r in rd.read()]
    check(records, expected(strict_workspace))
    log = app_reads(strict_workspace)[before:]
    assert len(log) == rd.counts["requests"] == 2 + 11 + 20
    assert rd.counts["429s"] == 0 and {e["status"] for e in log} == {200}
    assert window_max([e["t"] for e in log]) <= 10


def test_strict_429s_are_honoured(strict_workspace: Sandbox) -> None:
    """Unpaced, the reader runs into the limit; it backs off on each 429 (no Retry-After is
    sent) and completes, and what the sandbox accepted never exceeded 10 in a second."""
    before = len(app_reads(strict_workspace))
    rd = reader(strict_workspace, activities=True, rate=None)
    records = [r for _, r in rd.read()]
    check(records, expected(strict_workspace))
    log = app_reads(strict_workspace)[before:]
    limited = [e for e in log if e["status"] == 429]
    assert limited and rd.counts["429s"] == len(limited)
    assert rd.counts["requests"] == len(log) == 33 + len(limited)
    assert window_max([e["t"] for e in log if e["status"] == 200]) <= 10


def test_retry_after_is_honoured_when_sent(workspace: Sandbox) -> None:
    """The sandbox's 429 storm sends ``Retry-After: 1``; the reader waits that long."""
    waits: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    workspace.set_faults({"customerio": {"rate_limit_storm": 0.5, "retry_after": 1,
                                         "seed": 3}})
    try:
        rd = reader(workspace, rate=None, max_retries=20, sleep=sleep, clock=lambda: now[0])
        records = [r for _, r in rd.read()]
    finally:
        workspace.clear_faults()
    assert sum(r["type"] == "identify" for r in records) == PEOPLE + NO_ID
    assert rd.counts["429s"] > 0
    assert len(waits) == rd.counts["429s"] and min(waits) == 1.0  # paused for the second


# --- failures ------------------------------------------------------------------------------

def test_transient_failures_are_retried(workspace: Sandbox) -> None:
    waits: list[float] = []
    workspace.set_faults({"customerio": {"error_rate": 0.2, "reset_rate": 0.1, "seed": 7}})
    try:
        rd = reader(workspace, activities=True, rate=None, sleep=waits.append)
        records = [r for _, r in rd.read()]
    finally:
        workspace.clear_faults()
    check(records, expected(workspace))
    assert rd.counts["retries"] > 0 and len(waits) == rd.counts["retries"]
    assert all(0 < w <= 10 for w in waits)


def test_retries_are_bounded(workspace: Sandbox) -> None:
    workspace.set_faults({"customerio": {"down": True}})
    try:
        rd = reader(workspace, max_retries=2, sleep=lambda _s: None)
        with pytest.raises(AppAPIError, match="OCDP362") as info:
            next(iter(rd.read()))
    finally:
        workspace.clear_faults()
    assert info.value.code == "OCDP362" and info.value.status == 503
    assert rd.counts["requests"] == 3


def test_a_wrong_key_is_a_named_error_without_the_key(workspace: Sandbox) -> None:
    key = "wrong-app-key-8f3a9c2e71"
    rd = AppAPIReader(key, app_url=workspace.app_url)
    assert key not in repr(rd)
    with pytest.raises(AppAPIAuthError) as info:
        list(rd.read())
    err = info.value
    assert err.code == "OCDP360" and err.status == 401
    assert "App API key" in str(err)
    for shown in (str(err), repr(err), repr(err.args), str(err.__cause__),
                  str(err.__context__)):
        assert key not in shown
    assert rd.counts["requests"] == 1  # a refused key is not retried


def test_a_bad_filter_is_refused_by_name(workspace: Sandbox) -> None:
    rd = reader(workspace, filter={"attribute": {"field": "plan", "operator": "contains",
                                                 "value": "p"}})
    with pytest.raises(AppAPIError, match="OCDP361") as info:
        list(rd.read())
    assert info.value.status == 400 and "operator" in str(info.value)


@pytest.mark.parametrize(("options", "match"), [
    ({"segment": 1, "filter": {"segment": {"id": 1}}}, "segment or filter"),
    ({"filter": "{not json"}, "not valid JSON"),
    ({"filter": {"plan": "pro"}}, "exactly one of"),
    ({"segment": "7"}, "integer id"),
    ({"views": True}, "activities=True"),
    ({"page_size": 1001}, "at most 1000"),
    ({"region": "ap"}, "region"),
])
def test_options_are_checked(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        AppAPIReader(APP_KEY, app_url="http://127.0.0.1:9", **options)


def test_key_and_region() -> None:
    with pytest.raises(ConfigurationError, match="OCDP332"):
        AppAPIReader(f"Bearer {APP_KEY}")
    assert AppAPIReader(APP_KEY, region="eu").url == "https://api-eu.customer.io"
    assert AppAPIReader(APP_KEY).url == "https://api.customer.io"
    with pytest.raises(ConfigurationError, match="OCDP333"):
        AppAPIReader(APP_KEY, app_url="https://api.customer.io/v1")


def test_views_become_page_and_screen_records(sandbox: Sandbox) -> None:
    """Off by default; with ``views=True`` after the events, each with its activity id."""
    with httpx.Client(base_url=sandbox.track_url, auth=("sandbox-site", "sandbox-track-key"),
                      timeout=10) as track:
        assert track.put("/api/v1/customers/v1", json={"email": "v1@example.com"}
                         ).status_code == 200
        for body in ({"name": "signed_up", "data": {"plan": "pro"}},
                     {"name": "https://example.com/pricing", "type": "page"},
                     {"name": "Settings", "type": "screen", "data": {"tab": "push"}}):
            r = track.post("/api/v1/customers/v1/events", json={**body, "timestamp": NOW})
            assert r.status_code == 200, r.text
    plain = [r["type"] for _, r in reader(sandbox, activities=True, rate=None).read()]
    assert plain == ["identify", "track"]
    rd = reader(sandbox, activities=True, views=True, rate=None)
    pairs = list(rd.read())
    records = [r for _, r in pairs]
    ids = {e["type"]: e["id"] for e in sandbox.person("customerio", "v1")["events"]}
    assert records[1:] == [
        {"type": "track", "user_id": "v1", "event": "signed_up", "properties": {"plan": "pro"},
         "timestamp": NOW, "event_id": ids["event"]},
        {"type": "page", "user_id": "v1", "url": "https://example.com/pricing",
         "properties": {}, "timestamp": NOW, "event_id": ids["page"]},
        {"type": "screen", "user_id": "v1", "name": "Settings", "properties": {"tab": "push"},
         "timestamp": NOW, "event_id": ids["screen"]},
    ]
    assert rd.counts["events"] == 1 and rd.counts["views"] == 2
    rest = [r for _, r in reader(sandbox, activities=True, views=True, rate=None).read(
        start_from=pairs[2][0])]
    assert rest == records[3:]
