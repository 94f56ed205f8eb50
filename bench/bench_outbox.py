"""What a durable ``put`` costs the caller, side by side with the floor it is built on.

Every row is measured in this run, on this machine, so the ratios hold even when the absolute
figures move with the disk and the neighbours:

  serialise only    dumps_message alone: part of every durable put, not of the bare rows
  sqlite bare       one single-row INSERT committed in WAL, synchronous=NORMAL (the floor)
  sqlite durable    SQLiteOutbox.put, one thread, committed on return     (target >= 50,000/s)
  sqlite 4 threads  the same from four threads (group commit)             (info)
  sqlite batched    durability="batched", committed within 5 ms           (target >= 200,000/s)
  redis bare        one XADD round trip with redis-py (the floor)
  redis durable     RedisOutbox.put, one thread, XADD acknowledged        (target >= 10,000/s)
  redis batched     durability="batched", pipelined every 5 ms            (target >= 50,000/s)

Each figure is the best of ``--rounds`` rounds (the least disturbed by other processes), and
the bare and outbox rounds are interleaved. Messages are dual-write ``track`` calls with a
small property map, built before the clock starts.

    python bench/bench_outbox.py [--count 20000] [--rounds 3] [--redis auto|URL|none]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opencdp.message import CUSTOMERIO, OPENCDP, Message, dumps_message, new_ulid
from opencdp.outbox.sqlite import SQLiteOutbox

TARGETS = {
    "sqlite durable": 50_000,
    "sqlite batched": 200_000,
    "redis durable": 10_000,
    "redis batched": 50_000,
}


def messages(count: int) -> list[Message]:
    props = {"plan": "pro", "price": 49.0, "currency": "EUR", "items": 3}
    return [
        Message(new_ulid(), "track", f"user-{i % 1000}", "Order Completed", props, None,
                OPENCDP | CUSTOMERIO)
        for i in range(count)
    ]


def timed(fn: Callable[[], None], count: int) -> float:
    """Seconds per call of a run of ``count`` calls."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / count


def sqlite_bare(folder: str, msgs: list[Message]) -> Callable[[], None]:
    path = os.path.join(folder, f"bare-{new_ulid()}.db")
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    bodies = [dumps_message(m) for m in msgs]

    def run() -> None:
        execute = db.execute
        for body in bodies:
            execute("INSERT INTO t (body) VALUES (?)", (body,))

    return run


def outbox_run(box: Any, msgs: list[Message], threads: int = 1) -> Callable[[], None]:
    def run() -> None:
        if threads == 1:
            put = box.put
            for m in msgs:
                put(m)
        else:
            chunks = [msgs[k::threads] for k in range(threads)]
            workers = [
                threading.Thread(target=lambda c=c: [box.put(m) for m in c]) for c in chunks
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        flush = getattr(box, "flush", None)
        if flush is not None:
            flush()  # batched: the figure includes getting everything committed

    return run


@contextlib.contextmanager
def redis_url(choice: str) -> Iterator[str | None]:
    if choice == "none":
        yield None
        return
    if choice != "auto":
        yield choice
        return
    helper_path = Path(__file__).resolve().parents[1] / "tests" / "redis_server.py"
    spec = importlib.util.spec_from_file_location("_redis_server", helper_path)
    if spec is None or spec.loader is None:
        yield None
        return
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    try:
        server = helper.running_redis()
        url = server.__enter__()
    except helper.RedisUnavailable as exc:
        print(f"(redis rows skipped: {exc})")
        yield None
        return
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


def best(rows: dict[str, list[float]], name: str, seconds: float) -> None:
    rows.setdefault(name, []).append(seconds)


def report(rows: dict[str, list[float]], floors: dict[str, str]) -> None:
    print(f"{'scenario':<18} {'us/put':>8} {'puts/s':>10} {'x floor':>8} {'target':>9}  ok")
    for name, values in rows.items():
        per = min(values)
        rate = 1 / per
        floor = floors.get(name)
        ratio = f"{per / min(rows[floor]):.2f}" if floor and floor in rows else "-"
        target = TARGETS.get(name)
        verdict = "" if target is None else ("yes" if rate >= target else "NO")
        print(f"{name:<18} {per * 1e6:8.1f} {rate:10,.0f} {ratio:>8} "
              f"{'' if target is None else f'{target:,}':>9}  {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default="auto", help="auto (start one), a URL, or none")
    args = parser.parse_args(argv)
    count, rounds = args.count, args.rounds
    rows: dict[str, list[float]] = {}
    floors = {
        "sqlite durable": "sqlite bare", "sqlite 4 threads": "sqlite bare",
        "sqlite batched": "sqlite bare", "redis durable": "redis bare",
        "redis batched": "redis bare",
    }
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
          f"{count:,} dual-write messages per round, best of {rounds}")
    with tempfile.TemporaryDirectory(prefix="opencdp-bench-") as folder:
        for r in range(rounds):
            msgs = messages(count)
            best(rows, "serialise only", timed(lambda msgs=msgs: [dumps_message(m) for m in msgs],
                                               count))
            best(rows, "sqlite bare", timed(sqlite_bare(folder, msgs), count))
            for name, options, threads in (
                ("sqlite durable", {}, 1),
                ("sqlite 4 threads", {}, 4),
                ("sqlite batched", {"durability": "batched"}, 1),
            ):
                box = SQLiteOutbox(os.path.join(folder, f"{name}-{r}.db"), **options)
                best(rows, name, timed(outbox_run(box, messages(count), threads), count))
                box.close()
    with redis_url(args.redis) as url:
        if url is not None:
            import redis

            from opencdp.outbox.redis import RedisOutbox

            client = redis.Redis.from_url(url)
            for r in range(rounds):
                msgs = messages(count)
                bodies = [dumps_message(m) for m in msgs]
                key = f"bench-bare-{r}"

                def bare(bodies: list[bytes] = bodies, key: str = key) -> None:
                    for body in bodies:
                        client.xadd(key, {"m": body})

                best(rows, "redis bare", timed(bare, count))
                client.delete(key)
                for name, options in (("redis durable", {}), ("redis batched",
                                                               {"durability": "batched"})):
                    box = RedisOutbox(url, prefix=f"bench{r}{name[-3:]}", **options)
                    best(rows, name, timed(outbox_run(box, messages(count)), count))
                    box.close()
            client.close()
    report(rows, floors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
