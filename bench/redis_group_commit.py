"""Durable Redis puts from many producers: group commit beside bare redis-py loops.

On one throw-away redis-server (started here, no persistence, loopback):

bare XADD        one connection, one ``XADD`` per round trip: the ceiling of one put per trip
bare pipeline    one connection, ``XADD`` pipelined ``--depth`` at a time: what sharing
                 round trips can reach
1 producer       ``RedisOutbox.put`` from one thread (the single caller's cost: no added wait)
16 threads       ``RedisOutbox.put`` from 16 threads at once (grouped round trips)
16 coroutines    ``AsyncClient.track`` from 16 coroutines on one loop (durable Redis queue,
                 awaited without a thread per call)

Every put is durable when counted: Redis answered for it. Target: >= 50,000 durable puts/s
with 16 producers; a miss is printed as such.

    python -m bench.redis_group_commit [--seconds 3] [--producers 16]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

TARGET = 50_000
PROPS = {"order_id": "A-1001", "total": 99.5, "currency": "USD", "items": 3, "sku": "sku-1"}


def _redis_helper() -> Any:
    path = Path(__file__).resolve().parent.parent / "tests" / "redis_server.py"
    spec = importlib.util.spec_from_file_location("opencdp_bench_redis_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _body() -> bytes:
    from opencdp.message import CUSTOMERIO, OPENCDP, Message, dumps_message, new_ulid

    return dumps_message(Message(new_ulid(), "track", "user_1", "order_placed", PROPS, None,
                                 OPENCDP | CUSTOMERIO))


def bare_xadd(url: str, seconds: float) -> float:
    import redis

    r = redis.Redis.from_url(url)
    key, body = f"bench:{secrets.token_hex(4)}", _body()
    n, stop = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < stop:
        for _ in range(100):
            r.xadd(key, {"m": body, "d": "3"})
        n += 100
    rate = n / (time.perf_counter() - start)
    r.delete(key)
    return rate


def bare_pipeline(url: str, seconds: float, depth: int) -> float:
    import redis

    r = redis.Redis.from_url(url)
    key, body = f"bench:{secrets.token_hex(4)}", _body()
    n, stop = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < stop:
        pipe = r.pipeline(transaction=False)
        for _ in range(depth):
            pipe.xadd(key, {"m": body, "d": "3"})
        pipe.execute()
        n += depth
    rate = n / (time.perf_counter() - start)
    r.delete(key)
    return rate


def _message() -> Any:
    from opencdp.message import CUSTOMERIO, OPENCDP, Message, new_ulid

    return Message(new_ulid(), "track", "user_1", "order_placed", PROPS, None,
                   OPENCDP | CUSTOMERIO)


def one_producer(url: str, seconds: float) -> tuple[float, float]:
    """Puts/s and the median latency of one put, in microseconds."""
    from opencdp.outbox.redis import RedisOutbox

    box = RedisOutbox(url, prefix="b" + secrets.token_hex(4))
    try:
        took: list[float] = []
        stop = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < stop:
            message = _message()
            t0 = time.perf_counter()
            box.put(message)
            took.append(time.perf_counter() - t0)
        rate = len(took) / (time.perf_counter() - start)
        return rate, statistics.median(took) * 1e6
    finally:
        box.close()


def threads(url: str, seconds: float, producers: int) -> tuple[float, float]:
    """Puts/s from ``producers`` threads, and puts per round trip."""
    from opencdp.outbox.redis import RedisOutbox

    box = RedisOutbox(url, prefix="b" + secrets.token_hex(4))
    counts = [0] * producers
    go, stop = threading.Event(), threading.Event()
    messages = [_message() for _ in range(1000)]

    def work(k: int) -> None:
        go.wait()
        n = 0
        while not stop.is_set():
            for m in messages[:50]:
                box.put(m)
            n += 50
        counts[k] = n

    workers = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(producers)]
    for w in workers:
        w.start()
    rounds0 = box._group.rounds
    start = time.perf_counter()
    go.set()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join(30)
    took = time.perf_counter() - start
    total = sum(counts)
    rounds = box._group.rounds - rounds0
    stats = box.stats(time.time())["opencdp"]
    box.close()
    assert stats.pending == total, (stats.pending, total)
    return total / took, total / max(1, rounds)


def coroutines(url: str, seconds: float, producers: int) -> float:
    from opencdp import AsyncClient

    async def run() -> float:
        client = AsyncClient(cdp_api_key="k", cdp_endpoint="http://127.0.0.1:9/g",
                             cdp_fallback_endpoints=[], start_worker=False,
                             register_atexit=False,
                             queue=f"{url}?prefix=b{secrets.token_hex(4)}",
                             queue_timeout=1.0)
        await client.identify("user_1", {"email": "u@example.com"})
        counts = [0] * producers
        stop = time.perf_counter() + seconds

        async def work(k: int) -> None:
            n = 0
            while time.perf_counter() < stop:
                for _ in range(20):
                    await client.track("user_1", "order_placed", PROPS)
                n += 20
            counts[k] = n

        start = time.perf_counter()
        await asyncio.gather(*(work(k) for k in range(producers)))
        took = time.perf_counter() - start
        health = client.health().to_dict()
        await client.close(timeout=1)
        total = sum(counts)
        assert health["intake_failures"] == 0, health
        return total / took

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--producers", type=int, default=16)
    parser.add_argument("--depth", type=int, default=16)
    args = parser.parse_args()
    logging.getLogger("opencdp").setLevel(logging.ERROR)
    helper = _redis_helper()
    with helper.running_redis() as url:
        xadd = bare_xadd(url, args.seconds)
        piped = bare_pipeline(url, args.seconds, args.depth)
        single, latency = one_producer(url, args.seconds)
        threaded, per_trip = threads(url, args.seconds, args.producers)
        awaited = coroutines(url, args.seconds, args.producers)
    p = args.producers
    print(f"{'Redis durable puts (one redis-server, loopback)':<52} {'per second':>12}")
    print(f"{'bare XADD loop, one connection':<52} {xadd:>12,.0f}")
    print(f"{f'bare pipelined XADD, {args.depth} per round trip':<52} {piped:>12,.0f}")
    print(f"{'RedisOutbox.put, 1 producer':<52} {single:>12,.0f}"
          f"   median {latency:.0f} us per put")
    print(f"{f'RedisOutbox.put, {p} threads (group commit)':<52} {threaded:>12,.0f}"
          f"   {per_trip:.1f} puts per round trip")
    print(f"{f'AsyncClient.track, {p} coroutines (durable)':<52} {awaited:>12,.0f}")
    worst = min(threaded, awaited)
    if worst >= TARGET:
        print(f"target >= {TARGET:,}/s with {p} producers: met ({worst:,.0f}/s)")
    else:
        print(f"target >= {TARGET:,}/s with {p} producers: MISSED "
              f"(threads {threaded:,.0f}/s, coroutines {awaited:,.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
