"""``opencdp import --from-customerio``: the issue's second proof, and the command's edges.

A workspace is seeded through the Track API (``/api/v2/batch``, as any Customer.io
integration writes) into a strict sandbox whose OpenCDP side stays empty, then imported with
``--from-customerio --activities`` by the command as a real process, killed with SIGKILL at
about a third and resumed. Checked: reconcile's parity on the stored data, one
Idempotency-Key per record at OpenCDP, the resumed run's skip count, and the App API's 429s
(provoked by another reader of the same workspace) waited out, counted at the server.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from migrate.import_support import (
    checkpoint_of,
    distinct_keys,
    env_for,
    lines,
    run_import,
    start_import,
    stored_events,
    summary,
    wait_queued,
)
from opencdp.message import ulid_str
from opencdp.reconcile import reconcile
from opencdp.sandbox import Sandbox

PEOPLE = int(os.environ.get("OPENCDP_PROOF_PEOPLE", "1000"))
"""1,000 people in the suite; ``OPENCDP_PROOF_PEOPLE=5000`` runs the issue's size (about 48 s)."""
EVENTS_EACH = 2
NOW = int(time.time())
APP_KEY = "sandbox-app-key"
IMPORTER_PATHS = {("POST", "/v1/customers"), ("POST", "/v1/customers/attributes"),
                  ("GET", "/v1/activities")}
BATCH_BYTES = 400_000  # under the Track API's 500 KB per batch


def operations(people: int, email_only: int = 0) -> Iterator[dict[str, Any]]:
    """Per person: an identify with typed attributes, a push device, and events (the odd
    people's second event older than Customer.io's 30-day guarantee). The last
    ``email_only`` people are known by email alone, as in a workspace that identifies so."""
    ids = (ulid_str((NOW * 1000 << 80) | n) for n in itertools.count(1))
    for i in range(people):
        ident = ({"email": f"lead-{i:05d}@example.com"} if i >= people - email_only
                 else {"id": f"user-{i:05d}"})
        attributes: dict[str, Any] = {"plan": "pro" if i % 3 == 0 else "free", "score": i,
                                      "ratio": i / 8, "vip": i % 2 == 0,
                                      "address": {"city": f"c{i % 10}", "zip": f"{i:05d}"}}
        if "id" in ident:
            attributes["email"] = f"user-{i:05d}@example.com"
        yield {"type": "person", "action": "identify", "identifiers": ident,
               "attributes": attributes}
        yield {"type": "person", "action": "add_device", "identifiers": ident,
               "device": {"token": f"tok-{i:05d}", "platform": "ios" if i % 2 else "android",
                          "last_used": NOW - i, "attributes": {"app_version": "2.1"}}}
        for k in range(EVENTS_EACH):
            age = 3600 * (k + 1) + (86400 * 40 if i % 2 and k else 0)
            yield {"type": "person", "action": "event", "identifiers": ident,
                   "name": "purchased", "id": next(ids), "timestamp": NOW - age,
                   "attributes": {"amount": i + k, "sku": f"s{k}"}}


def seed(sandbox: Sandbox, people: int, email_only: int = 0) -> int:
    """The workspace, through the Track API in batches under 500 KB; returns the requests."""
    requests = 0
    with httpx.Client(base_url=sandbox.track_url, auth=("sandbox-site", "sandbox-track-key"),
                      timeout=30) as track:
        batch: list[bytes] = []
        size = 0

        def send() -> None:
            nonlocal requests
            body = b'{"batch":[' + b",".join(batch) + b"]}"
            r = track.post("/api/v2/batch", content=body,
                           headers={"content-type": "application/json"})
            assert r.status_code == 200, r.text[:500]
            requests += 1

        for op in operations(people, email_only):
            raw = orjson.dumps(op)
            if size + len(raw) > BATCH_BYTES:
                send()
                batch, size = [], 0
            batch.append(raw)
            size += len(raw) + 1
        if batch:
            send()
    return requests


def app_reads(sandbox: Sandbox) -> list[dict[str, Any]]:
    answer = httpx.get(f"{sandbox.admin_url}/app_reads", timeout=10).json()
    requests: list[dict[str, Any]] = answer["requests"]
    return requests


def importer_reads(reads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in reads if (r["method"], r["path"]) in IMPORTER_PATHS]


def window_max(times: list[float]) -> int:
    """The most requests in any sliding second ``(t - 1, t]``, as the sandbox counts."""
    times = sorted(times)
    most = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


class OtherReader:
    """Another tool reading the same workspace (``GET /v1/customers?email=``, a path the
    importer never uses) at ``rate``/s, so the two together pass the 10 requests/s limit."""

    def __init__(self, sandbox: Sandbox, rate: float, most: int) -> None:
        self.url = f"{sandbox.app_url}/v1/customers"
        self.rate, self.most = rate, most
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(headers={"authorization": f"Bearer {APP_KEY}"}, timeout=10) as c:
            for _ in range(self.most):
                if self.stop.wait(1 / self.rate):
                    return
                c.get(self.url, params={"email": "nobody@example.com"})

    def __enter__(self) -> OtherReader:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(15)


@pytest.fixture
def workspace() -> Iterator[Sandbox]:
    with Sandbox(port=0, strict=True) as sb:
        started = time.monotonic()
        seed(sb, PEOPLE)
        seconds = time.monotonic() - started
        assert sb.people("opencdp") == [], "the OpenCDP side starts empty"
        assert len(sb.people("customerio")) == PEOPLE
        print(f"seeded {PEOPLE} people through the Track API in {seconds:.1f} s")
        yield sb


def workspace_env(sandbox: Sandbox, **extra: str) -> dict[str, str]:
    return env_for(sandbox, **{"CUSTOMERIO_APP_API_KEY": APP_KEY,
                               "CUSTOMERIO_APP_URL": sandbox.app_url, **extra})


@pytest.mark.slow  # about 45 s: the App API's 10 requests/s over 5,000 people's records
def test_a_workspace_imported_through_a_kill_9_is_in_parity(workspace: Sandbox,
                                                             tmp_path: Path) -> None:
    records = PEOPLE * (2 + EVENTS_EACH)  # identify, device, events
    env = workspace_env(workspace)
    args = ["--from-customerio", "--activities", "--to", "opencdp",
            "--queue", f"sqlite:///{tmp_path / 'queue.db'}"]
    started = time.monotonic()

    first = start_import(args, env, tmp_path)
    try:
        wait_queued(tmp_path, records // 3, seconds=120)
        first.send_signal(signal.SIGKILL)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    assert first.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert not [e for e in lines(out) if e.get("event") == "summary"]
    path = checkpoint_of(tmp_path)
    assert path is not None and path.name.startswith(".customerio-")
    checkpoint = json.loads(path.read_bytes())
    assert 0 < checkpoint["queued"] < records
    assert checkpoint["cursor"]["phase"] in ("people", "event")
    first_reads = importer_reads(app_reads(workspace))
    assert [r for r in first_reads if r["status"] != 200] == []
    assert window_max([r["t"] for r in first_reads]) <= 10

    logged = len(app_reads(workspace))
    with OtherReader(workspace, rate=5.0, most=60):
        code, events, err = run_import(args, env, tmp_path, timeout=240)
    assert code == 0, err[-3000:]
    seconds = time.monotonic() - started

    resumed = [e for e in events if e.get("event") == "resumed"]
    assert resumed and resumed[0]["skipped"] == checkpoint["queued"]
    final = summary(events)
    assert final["complete"] is True and final["refused_total"] == 0
    assert final["skipped"] == checkpoint["queued"]
    assert final["skipped"] + final["queued"] >= records
    # It delivers the first run's undelivered messages too: they were in the same queue.
    assert final["delivered"]["opencdp"] >= final["queued"]
    assert final["pending"]["opencdp"] == 0
    assert final["dead_lettered"].get("opencdp", 0) == 0
    workspace_report = final["workspace"]
    counts = workspace_report["counts"]
    assert counts["events_older_than_30_days"] > 0
    assert any("last 30 days" in note for note in workspace_report["notes"])

    # The 429s: the second run's requests, as the server logged them.
    second = app_reads(workspace)[logged:]
    mine = importer_reads(second)
    throttled = [i for i, r in enumerate(mine) if r["status"] == 429]
    assert len(mine) == counts["requests"]
    assert len(throttled) == counts["429s"] > 0
    for i in throttled:  # each 429 waited out (backoff >= 0.25 s) before the next request
        assert i + 1 < len(mine) and mine[i + 1]["t"] - mine[i]["t"] >= 0.25, i
    assert mine[-1]["status"] == 200

    # Nothing twice: one Idempotency-Key per record. The records queued after the last
    # checkpoint before the kill were sent again, under their keys; the sandbox's gateway
    # stores such a repeat (it counts repeated keys as duplicates, and does not drop them).
    assert distinct_keys(workspace) == records
    repeated = workspace.stats()["opencdp"]["duplicates"]
    cdp_events = stored_events(workspace, "opencdp")
    assert len(set(cdp_events)) == PEOPLE * EVENTS_EACH
    assert len(cdp_events) - len(set(cdp_events)) <= repeated
    assert set(cdp_events) == set(stored_events(workspace, "customerio"))
    assert len(workspace.people("opencdp")) == PEOPLE

    report = reconcile(sandbox=workspace, sample=5)
    assert report.people_compared == PEOPLE
    assert report.people_differing == 0, [d.summary for d in report.differences]
    parity = 100.0 * (report.people_compared - report.people_differing) / report.people_compared
    assert parity == 100.0
    print(f"{PEOPLE} people, {records} records; first run queued {checkpoint['queued']}, "
          f"resumed skipped {final['skipped']} and queued {final['queued']}; second run "
          f"{counts['requests']} App API requests, {counts['429s']} answered 429; "
          f"repeated keys at OpenCDP {repeated}; parity "
          f"{parity:.1f} %; {seconds:.1f} s")


# --- the command's edges, on a small workspace -----------------------------------------------

SMALL = 60
EMAIL_ONLY = 3


@pytest.fixture
def small() -> Iterator[Sandbox]:
    with Sandbox(port=0) as sb:
        seed(sb, SMALL, email_only=EMAIL_ONLY)
        yield sb


def queue_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--from-customerio", "--queue", f"sqlite:///{tmp_path / 'queue.db'}", *extra]


def test_people_without_an_id_are_refused_by_name_and_the_rest_in_parity(
        small: Sandbox, tmp_path: Path) -> None:
    code, events, err = run_import(queue_args(tmp_path, "--activities"),
                                   workspace_env(small), tmp_path)
    assert code == 0, err
    refused = [e for e in events if e.get("event") == "refused"]
    per_person = 2 + EVENTS_EACH
    assert len(refused) == EMAIL_ONLY * per_person
    assert {e["code"] for e in refused} == {"OCDP356"}
    assert sum(e["source"].startswith("person:") for e in refused) == EMAIL_ONLY
    assert sum(e["source"].startswith("event:") for e in refused) == EMAIL_ONLY * EVENTS_EACH
    assert not any("@" in e["message"] for e in refused), "no email in the output"
    final = summary(events)
    assert final["refused"] == {"OCDP356": EMAIL_ONLY * per_person}
    assert final["queued"] == (SMALL - EMAIL_ONLY) * per_person
    assert final["dead_lettered"].get("opencdp", 0) == 0, "nothing sent to be refused"
    assert final["workspace"]["counts"]["people_without_id"] == EMAIL_ONLY
    assert any("OCDP356" in n for n in final["workspace"]["notes"])
    report = reconcile(sandbox=small, sample=10)
    assert report.people_compared == SMALL
    assert sorted(d.id for d in report.differences) == [
        f"lead-{i:05d}@example.com" for i in range(SMALL - EMAIL_ONLY, SMALL)]
    assert all(d.details.get("missing_from") == "opencdp" for d in report.differences)


def test_a_lost_checkpoint_imports_again_under_the_same_ids(small: Sandbox,
                                                            tmp_path: Path) -> None:
    env = workspace_env(small)
    for round_ in (1, 2):
        code, events, err = run_import(
            queue_args(tmp_path, "--activities", "--checkpoint", str(tmp_path / f"{round_}.json")),
            env, tmp_path)
        assert code == 0, err
        assert summary(events)["queued"] == (SMALL - EMAIL_ONLY) * (2 + EVENTS_EACH)
    assert distinct_keys(small) == (SMALL - EMAIL_ONLY) * (2 + EVENTS_EACH)


def test_a_finished_import_run_again_reads_nothing(small: Sandbox, tmp_path: Path) -> None:
    env = workspace_env(small)
    code, _, err = run_import(queue_args(tmp_path), env, tmp_path)
    assert code == 0, err
    before = len(app_reads(small))
    code, events, err = run_import(queue_args(tmp_path), env, tmp_path)
    assert code == 0, err
    again = summary(events)
    assert again["read"] == again["queued"] == 0
    assert again["skipped"] == (SMALL - EMAIL_ONLY) * 2
    assert again["workspace"]["counts"]["requests"] == 0
    assert len(app_reads(small)) == before


def test_a_checkpoint_of_another_selection_is_refused(small: Sandbox, tmp_path: Path) -> None:
    env = workspace_env(small)
    cp = str(tmp_path / "cp.json")
    code, _, err = run_import(queue_args(tmp_path, "--checkpoint", cp), env, tmp_path)
    assert code == 0, err
    flt = json.dumps({"attribute": {"field": "plan", "operator": "eq", "value": "pro"}})
    for other in (["--filter", flt], ["--activities"], ["--segment", "7"]):
        code, _, err = run_import(queue_args(tmp_path, "--checkpoint", cp, *other), env,
                                  tmp_path)
        assert code == 2 and "OCDP353" in err and "another selection" in err, (other, err)


def test_the_app_api_key_alone_is_enough_for_opencdp(small: Sandbox, tmp_path: Path) -> None:
    """No Track credentials: ``--to opencdp`` needs only the App API key and its URL."""
    env = {k: v for k, v in workspace_env(small).items()
           if k not in ("CUSTOMERIO_SITE_ID", "CUSTOMERIO_TRACK_API_KEY",
                        "CUSTOMERIO_TRACK_URL")}
    code, events, err = run_import(queue_args(tmp_path, "--segment", "0"), env, tmp_path)
    assert code == 0, err  # segment 0 is empty: nothing to import, and that is fine
    assert summary(events)["read"] == 0
    code, events, err = run_import(queue_args(tmp_path, "--checkpoint",
                                              str(tmp_path / "all.json")), env, tmp_path)
    assert code == 0, err
    assert summary(events)["queued"] == (SMALL - EMAIL_ONLY) * 2


def test_a_wrong_or_missing_key_is_named_and_never_echoed(small: Sandbox,
                                                          tmp_path: Path) -> None:
    secret = "wrong-app-key-0123456789abcdef"
    env = workspace_env(small, CUSTOMERIO_APP_API_KEY=secret)
    code, events, err = run_import(queue_args(tmp_path), env, tmp_path)
    out = json.dumps(events)
    assert code == 1 and "OCDP360" in out, (out, err)
    assert secret not in out and secret not in err
    env = {k: v for k, v in workspace_env(small).items()
           if not k.startswith("CUSTOMERIO_")}
    code, events, err = run_import(queue_args(tmp_path), env, tmp_path)
    assert code == 2 and "OCDP355" in err and "CUSTOMERIO_APP_API_KEY" in err


@pytest.mark.parametrize(("args", "words"), [
    (["history.ndjson", "--from-customerio"], "not both"),
    ([], "PATH"),
    (["history.ndjson", "--segment", "3"], "--segment"),
    (["history.ndjson", "--activities"], "--activities"),
    (["--from-customerio", "--map", "a=b"], "--map"),
    (["--from-customerio", "--format", "csv"], "--format"),
    (["--from-customerio", "--segment", "x"], "--segment"),
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "history.ndjson").write_bytes(b"")
    code, _, err = run_import(args, {**os.environ, "CDP_API_KEY": "k"}, tmp_path)
    assert code == 2 and words in err, err
