"""The Redis Cluster queue on a real cluster (three masters, one replica each): partitions
spread over the masters, a person's calls in one partition, readers sharing partitions and
taking over a dead one's, ``opencdp worker`` pools through kill -9 of a worker and of a
master while its replica is promoted. The conformance suite and the queue commands run on
it too (test_conformance.py, test_command.py)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from opencdp import Client, CustomerIO
from opencdp.errors import ConfigurationError
from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid
from opencdp.outbox.cluster import RedisClusterOutbox, partition_of
from opencdp.outbox.url import open_outbox

pytestmark = pytest.mark.redis

BOTH = OPENCDP | CUSTOMERIO


def seed_url(cluster: Any) -> str:
    return str(cluster.url).replace("redis+cluster", "redis").rstrip("/")


def msg(person: str, n: int) -> Message:
    return Message(new_ulid(), "track", person, "clustered", {"seq": n}, None, BOTH)


@pytest.fixture
def prefix() -> str:
    return "c" + secrets.token_hex(5)


@pytest.fixture
def boxes(redis_cluster: Any, prefix: str) -> Iterator[Any]:
    made: list[RedisClusterOutbox] = []

    def build(partitions: int = 8) -> RedisClusterOutbox:
        box = RedisClusterOutbox(seed_url(redis_cluster), prefix=prefix, partitions=partitions)
        made.append(box)
        return box

    yield build
    for box in made:
        box.close()


def test_partitions_spread_evenly_over_the_masters(redis_cluster: Any, boxes: Any) -> None:
    box = boxes(16)
    per_node = Counter(part._url for part in box._parts)
    assert len(per_node) == 3, per_node
    assert sorted(per_node.values()) == [5, 5, 6], per_node


def test_a_persons_calls_share_one_partition_and_keep_their_order(boxes: Any) -> None:
    box = boxes(8)
    sent = [msg(f"person-{n % 10}", n) for n in range(200)]
    for m in sent:
        box.put(m)
    assert len({partition_of(m, 8) for m in sent}) > 1, "people spread over partitions"
    leased = box.lease("opencdp", 1000, time.time(), 30.0)
    assert sorted(x.message.id for x in leased) == sorted(m.id for m in sent)
    for n in range(10):
        who = f"person-{n}"
        assert [x.message.id for x in leased if x.message.identifier == who] == \
            [m.id for m in sent if m.identifier == who]


def test_url_options_and_a_changed_partition_count_is_refused(redis_cluster: Any,
                                                              prefix: str) -> None:
    def opened(query: str) -> Any:
        return open_outbox(f"{redis_cluster.url}?{query}", max_queue_size=1,
                           queue_full="drop_oldest", queue_full_timeout=0,
                           durability="durable")

    for bad in ("partitions=0", "partitions=x", "replicas=-1", "db=2"):
        with pytest.raises(ConfigurationError):
            opened(f"prefix={prefix}&{bad}")
    box = opened(f"prefix={prefix}&partitions=8")
    assert box.primary.partitions == 8 and box.primary._parts[0].replicas == 1
    box.close()
    with pytest.raises(ConfigurationError, match=r"OCDP391.*partitions=8"):
        opened(f"prefix={prefix}&partitions=4")


def test_readers_share_partitions_and_take_over_a_dead_ones(boxes: Any) -> None:
    first, second = boxes(8), boxes(8)
    sent = [msg(f"p{n}", n) for n in range(40)]
    for m in sent:
        first.put(m)
    taken = first.lease("opencdp", 1000, time.time(), 1.0)  # first reader: every partition
    assert len(first.owned()) == 8 and len(taken) == 40
    assert second.lease("opencdp", 1000, time.time(), 1.0) == []  # nothing free yet
    first._balance(force=True)  # two readers now: gives half away
    second._balance(force=True)
    assert sorted(first.owned() + second.owned()) == list(range(8))
    assert len(first.owned()) == len(second.owned()) == 4
    # The first reader dies (stops renewing, never acks): the second takes its partitions
    # once they expire, then its leased messages once their lease does.
    deadline = time.monotonic() + 20
    got: list[Any] = []
    while len(got) < 40 or len(second.owned()) < 8:
        assert time.monotonic() < deadline, (second.owned(), len(got))
        batch = second.lease("opencdp", 1000, time.time(), 1.0)
        second.ack("opencdp", [x.message.id for x in batch])
        got += batch
        time.sleep(0.1)
    assert second.owned() == list(range(8))
    assert sorted(x.message.id for x in got) == sorted(m.id for m in sent)
    assert all(x.attempt == 0 for x in got), "a lease taken over keeps its attempt"
    stats = second.stats(time.time())["opencdp"]
    assert (stats.delivered, stats.pending, stats.in_flight) == (40, 0, 0)


def test_async_client_puts_through_the_node_committers(redis_cluster: Any, prefix: str,
                                                       tmp_path: Any) -> None:
    from opencdp import AsyncClient

    async def run() -> dict[str, Any]:
        client = AsyncClient(cdp_api_key="k", cdp_endpoint="http://127.0.0.1:9/g",
                             cdp_fallback_endpoints=[], start_worker=False,
                             register_atexit=False, queue_timeout=2.0,
                             queue=f"{redis_cluster.url}?partitions=8&prefix={prefix}",
                             spill_path=str(tmp_path / "spill.db"))
        await asyncio.gather(*(client.track(f"user_{n % 50}", "clustered", {"seq": n})
                               for n in range(400)))
        health = client.health().to_dict()
        await client.close(timeout=1)
        return health

    health = asyncio.run(run())
    queue = health["destinations"]["opencdp"]["queue"]
    assert (queue["pending"], queue["spilled"], health["intake_failures"]) == (400, 0, 0)


# -- worker pools against the sandbox ---------------------------------------------------

def stored(sandbox: Any, service: str) -> Counter[int]:
    seen: Counter[int] = Counter()
    for person in sandbox.people(service):
        for event in person.get("events", []):
            seen[event["data"]["seq"]] += 1
    return seen


def start_worker(queue: str, sandbox: Any, timeout: float = 1.0) -> subprocess.Popen[str]:
    """A worker whose lease is three times ``timeout`` (short: a dead one's leases are
    claimed soon; longer than a failover where a master dies)."""
    env = dict(os.environ, CDP_API_KEY="cdp-test-key", CUSTOMERIO_SITE_ID="sandbox-site",
               CUSTOMERIO_TRACK_API_KEY="sandbox-track-key")
    proc = subprocess.Popen(
        [sys.executable, "-m", "opencdp", "worker", "--queue", queue, "--cdp-endpoint",
         sandbox.opencdp_url, "--track-url", sandbox.track_url, "--app-url", sandbox.app_url,
         "--timeout", str(timeout)],
        env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["worker"] == "started"
    return proc


def stop(proc: subprocess.Popen[str], how: int = signal.SIGTERM) -> str:
    if proc.poll() is None:
        proc.send_signal(how)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    return out or ""


def app_client(queue: str, sandbox: Any, tmp: Any, deliver: bool = False) -> Client:
    return Client(cdp_api_key="cdp-test-key", cdp_endpoint=sandbox.opencdp_url,
                  cdp_fallback_endpoints=[], send_to_customer_io=True,
                  customer_io=CustomerIO("sandbox-site", "sandbox-track-key",
                                         track_url=sandbox.track_url, app_url=sandbox.app_url),
                  queue=queue, start_worker=deliver, register_atexit=False, queue_timeout=0.2,
                  spill_path=str(tmp / "spill.db"))


def wait_all(sandbox: Any, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(stored(sandbox, "opencdp")) < count or len(stored(sandbox, "customerio")) < count:
        assert time.monotonic() < deadline, (
            f"delivered {len(stored(sandbox, 'opencdp'))} to OpenCDP and "
            f"{len(stored(sandbox, 'customerio'))} to Customer.io of {count}")
        time.sleep(0.2)


def assert_once(sandbox: Any, count: int, resent: bool = False) -> None:
    """Everything on both platforms; Customer.io never twice (by event id), OpenCDP resends
    flagged by their Idempotency-Key. Unless a worker was killed with batches in flight
    (``resent``: those go out again, and Customer.io's event id de-duplication is what
    keeps them once), nothing was even sent twice."""
    cio, cdp = stored(sandbox, "customerio"), stored(sandbox, "opencdp")
    assert sorted(cio) == list(range(count)) and set(cio.values()) == {1}
    if not resent:
        assert sandbox.stats()["customerio"]["duplicates"] == 0
    assert sorted(cdp) == list(range(count))
    assert sum(n - 1 for n in cdp.values()) == sandbox.stats()["opencdp"]["duplicates"]


@pytest.mark.timeout(120)
def test_killed_worker_loses_nothing_and_duplicates_nothing(sandbox: Any, redis_cluster: Any,
                                                            tmp_path: Any) -> None:
    queue = f"{redis_cluster.url}?partitions=8&prefix=w{secrets.token_hex(4)}"
    count = 1200
    app = app_client(queue, sandbox, tmp_path)
    for seq in range(count):
        app.track(f"user_{seq % 40}", "pooled_event", {"seq": seq})
    first, second = start_worker(queue, sandbox), start_worker(queue, sandbox)
    try:
        deadline = time.monotonic() + 60
        while sandbox.stats()["opencdp"]["events"] < 150:
            assert time.monotonic() < deadline, "the workers did not start delivering"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        wait_all(sandbox, count, 60)
    finally:
        out = stop(second)
        stop(first, signal.SIGKILL)
    assert json.loads(out.strip().splitlines()[-1]) == {"worker": "stopped", "drained": True}
    assert_once(sandbox, count, resent=True)
    app.close(timeout=1)


@pytest.mark.timeout(150)
def test_a_master_killed_while_traffic_flows_loses_nothing(sandbox: Any, redis_cluster: Any,
                                                           tmp_path: Any) -> None:
    """kill -9 of a master mid-stream: its replica is promoted (bounded wait); writes that
    failed meanwhile went to the app's spill and move into the promoted master; the app and
    the worker (both delivering) follow their partitions there with their leases."""
    helper = sys.modules["opencdp_tests_redis_server"]
    with helper.RedisCluster() as cluster:
        queue = f"{cluster.url}?partitions=6&prefix=f{secrets.token_hex(4)}"
        count = 900
        app = app_client(queue, sandbox, tmp_path, deliver=True)
        worker = start_worker(queue, sandbox, timeout=3.0)
        half = threading.Event()

        def produce() -> None:
            for seq in range(count):
                app.track(f"user_{seq % 30}", "failover_event", {"seq": seq})
                if seq == count // 2:
                    half.set()
                time.sleep(0.002)

        producer = threading.Thread(target=produce, daemon=True)
        try:
            producer.start()
            assert half.wait(60)
            victim = next(p for p in cluster.first_masters if p != int(
                cluster.url.rsplit(":", 1)[1].strip("/")))
            cluster.kill(victim)
            cluster.wait_failover(victim, timeout=30)
            producer.join(90)
            assert not producer.is_alive()
            wait_all(sandbox, count, 60)
            assert_once(sandbox, count)
            health = app.health().to_dict()
            assert app.close(timeout=10), health
        finally:
            out = stop(worker)
        assert json.loads(out.strip().splitlines()[-1]) == {"worker": "stopped",
                                                             "drained": True}
        assert_once(sandbox, count)
