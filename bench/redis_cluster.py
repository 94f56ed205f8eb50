"""Sizing a ``redis+cluster://`` queue: what one partition carries, and how it adds up.

On a throw-away cluster started here (three masters with a replica each, loopback), with
``replicas=1`` (every write waits for its replica, the default):

put          durable puts/s into ONE partition from 16 threads (group commit)
read         lease + acknowledge per second from ONE partition, one reader, batches of 500
             (what a worker's lanes cost the queue, without the HTTP)
spread       puts/s from 16 threads into ``--partitions`` partitions, people spread over them

A partition's capacity is the smaller of put and read (each event is put once and read and
acknowledged once per destination); partitions for a million events a minute (16,667/s) follow.
Process-bound: one Python process here drives every partition; more producer and worker
processes add up until the masters' CPU is the limit.

    python -m bench.redis_cluster [--seconds 3] [--partitions 16]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

PROPS = {"order_id": "A-1001", "total": 99.5, "currency": "USD", "items": 3, "sku": "sku-1"}
MILLION_A_MINUTE = 1_000_000 / 60


def _helper() -> Any:
    path = Path(__file__).resolve().parent.parent / "tests" / "redis_server.py"
    spec = importlib.util.spec_from_file_location("opencdp_bench_redis_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _message(person: str, destinations: int = 1) -> Any:
    from opencdp.message import Message, new_ulid

    return Message(new_ulid(), "track", person, "order_placed", PROPS, None, destinations)


def _produce(box: Any, seconds: float, threads: int, people: list[str]) -> float:
    counts = [0] * threads
    stop = threading.Event()

    def work(k: int) -> None:
        n = 0
        while not stop.is_set():
            for i in range(20):
                box.put(_message(people[(k * 20 + i) % len(people)]))
            n += 20
        counts[k] = n

    workers = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join(30)
    return sum(counts) / (time.perf_counter() - start)


def one_partition(seed: str, seconds: float) -> tuple[float, float]:
    from opencdp.outbox.cluster import RedisClusterOutbox

    box = RedisClusterOutbox(seed, prefix="s" + secrets.token_hex(4), partitions=1)
    try:
        put = _produce(box, seconds, 16, ["user_1"])
        queued = box.stats(time.time())["opencdp"].pending
        done = 0
        start = time.perf_counter()
        stop = start + seconds
        while time.perf_counter() < stop and done < queued:
            batch = box.lease("opencdp", 500, time.time(), 30.0)
            if not batch:
                break
            box.ack("opencdp", [x.message.id for x in batch])
            done += len(batch)
        read = done / (time.perf_counter() - start)
        return put, read
    finally:
        box.close()


def spread(seed: str, seconds: float, partitions: int) -> float:
    from opencdp.outbox.cluster import RedisClusterOutbox

    box = RedisClusterOutbox(seed, prefix="s" + secrets.token_hex(4), partitions=partitions)
    try:
        return _produce(box, seconds, 16, [f"user_{n}" for n in range(1000)])
    finally:
        box.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args()
    logging.getLogger("opencdp").setLevel(logging.ERROR)
    with _helper().RedisCluster() as cluster:
        seed = cluster.url.replace("redis+cluster", "redis").rstrip("/")
        put, read = one_partition(seed, args.seconds)
        wide = spread(seed, args.seconds, args.partitions)
    per = min(put, read)
    print(f"{'Redis Cluster queue (3 masters + 3 replicas, loopback, replicas=1)':<60} {'/s':>10}")
    print(f"{'one partition: durable puts, 16 threads':<60} {put:>10,.0f}")
    print(f"{'one partition: lease + ack, one reader, batches of 500':<60} {read:>10,.0f}")
    print(f"{f'{args.partitions} partitions: durable puts, 16 threads, one process':<60} "
          f"{wide:>10,.0f}")
    print(f"capacity of one partition (the smaller): {per:,.0f} events/s; "
          f"a million events a minute ({MILLION_A_MINUTE:,.0f}/s) needs "
          f">= {math.ceil(MILLION_A_MINUTE / per)} partition(s) of queue capacity, "
          f"and producer/worker processes to match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
