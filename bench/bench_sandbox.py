"""How fast the sandbox accepts data, so it is never the bottleneck of other benchmarks.

The sandbox runs in its own process (``Sandbox(process=True)``); this process is a loopback
load generator that costs less than the server: raw asyncio streams on uvloop, keep-alive
connections, requests pre-encoded as bytes (batch bodies are built once per request with
fresh event ids, so de-duplication never flatters the figure).

Scenarios (each prints its rate and its ratio to the target):
  batch      POST /api/v2/batch under the real 100 req/s workspace limit  (target 50,000 ev/s)
  batch-max  the same without the limit: the server's headroom             (info)
  single     POST gateway /v1/persons/track, no faults                    (target 3,000 req/s)
  track-v1   POST /api/v1/customers/{id}/events, limit off                (target 3,000 req/s)
  latency    gateway track with 20 ms injected latency                   (target 1,500 req/s)

    python bench/bench_sandbox.py [--duration 5] [--connections 64] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import orjson

from opencdp.sandbox import Sandbox

TARGETS = {"batch": 50_000, "single": 3_000, "track-v1": 3_000, "latency": 1_500}
SITE, TRACK_KEY, CDP_KEY = "sandbox-site", "sandbox-track-key", "cdp-test-key"
BASIC = "Basic " + base64.b64encode(f"{SITE}:{TRACK_KEY}".encode()).decode()
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _crockford(n: int, width: int) -> str:
    return "".join(_ALPHABET[(n >> s) & 31] for s in range(5 * (width - 1), -1, -5))


def _request(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    i = head.lower().find(b"content-length:")
    length = int(head[i + 15:head.index(b"\r\n", i)]) if i >= 0 else 0
    if length:
        await reader.readexactly(length)
    return status


async def _load(host: str, port: int, connections: int, duration: float,
                make: Callable[[], tuple[bytes, int]]) -> tuple[int, int, dict[int, int]]:
    """Run ``connections`` keep-alive loops for ``duration``; return (requests, units, statuses).

    ``make()`` returns the next request and how many units (events) it carries."""
    deadline = time.perf_counter() + duration
    statuses: dict[int, int] = {}
    totals = [0, 0]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                request, units = make()
                status = await _exchange(reader, writer, request)
                statuses[status] = statuses.get(status, 0) + 1
                if status in (200, 207):
                    totals[0] += 1
                    totals[1] += units
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return totals[0], totals[1], statuses


def _report(name: str, value: float, unit: str, seconds: float, statuses: dict[int, int]) -> None:
    target = TARGETS.get(name)
    ratio = f"  {value / target:5.2f}x target {target:,}" if target else ""
    codes = " ".join(f"{k}:{v}" for k, v in sorted(statuses.items()))
    print(f"{name:10s} {value:12,.0f} {unit:9s}{ratio}   ({seconds:.1f} s; {codes})")


def _batch_maker(host: str, size: int) -> Callable[[], tuple[bytes, int]]:
    """Encode one batch once; each request swaps in its own 6-character slot of every event
    id (a bytes.replace, ~50 us), so all ids stay unique without re-encoding 1000 ops."""
    prefix = "0" + "".join(_ALPHABET[b % 32] for b in os.urandom(15)).replace("R", "S")
    now = int(time.time())
    ops = [{"type": "person", "identifiers": {"id": str(i % 500)}, "action": "event",
            "name": "purchase", "id": f"{prefix}RRRRRR{_crockford(i, 4)}", "timestamp": now,
            "attributes": {"price": 9.5, "sku": "A-1"}} for i in range(size)]
    template = _request("POST", "/api/v2/batch", host, {
        "Authorization": BASIC, "Content-Type": "application/json"},
        orjson.dumps({"batch": ops}))
    counter = itertools.count()

    def make() -> tuple[bytes, int]:
        return template.replace(b"RRRRRR", _crockford(next(counter), 6).encode()), size

    return make


def _fixed_maker(request: bytes) -> Callable[[], tuple[bytes, int]]:
    def make() -> tuple[bytes, int]:
        return request, 1

    return make


async def run(args: argparse.Namespace) -> None:
    dur, conns = args.duration, args.connections
    with Sandbox(port=0, process=True, rate_limit_rps=100) as sb:
        parts = urlsplit(sb.track_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        hostport = f"{host}:{port}"
        # Rate-limited batches: a few connections suffice at 100 req/s.
        t = time.perf_counter()
        reqs, units, st = await _load(host, port, 4, dur, _batch_maker(hostport, args.batch_size))
        secs = time.perf_counter() - t
        _report("batch", units / secs, "events/s", secs, st)
        accepted = sb.stats()["customerio"]["events"]
        print(f"{'':10s} server stored {accepted:,} events from {reqs} accepted requests")

        sb.set_faults({"customerio": {"rate_limit_rps": 0}})
        sb.reset()
        sb.set_faults({"customerio": {"rate_limit_rps": 0}})
        t = time.perf_counter()
        reqs, units, st = await _load(host, port, 4, dur, _batch_maker(hostport, args.batch_size))
        secs = time.perf_counter() - t
        _report("batch-max", units / secs, "events/s", secs, st)

        body = orjson.dumps({"identifier": "user_1", "eventName": "purchase",
                             "properties": {"amount": 9.5}})
        single = _request("POST", "/gateway/data-gateway/v1/persons/track", hostport,
                          {"Authorization": CDP_KEY, "Content-Type": "application/json"}, body)
        sb.reset()
        t = time.perf_counter()
        reqs, _, st = await _load(host, port, conns, dur, _fixed_maker(single))
        secs = time.perf_counter() - t
        _report("single", reqs / secs, "req/s", secs, st)

        body = orjson.dumps({"name": "purchase", "data": {"amount": 9.5}})
        v1 = _request("POST", "/api/v1/customers/user_1/events", hostport,
                      {"Authorization": BASIC, "Content-Type": "application/json"}, body)
        sb.reset()
        sb.set_faults({"customerio": {"rate_limit_rps": 0}})
        t = time.perf_counter()
        reqs, _, st = await _load(host, port, conns, dur, _fixed_maker(v1))
        secs = time.perf_counter() - t
        _report("track-v1", reqs / secs, "req/s", secs, st)

        sb.reset()
        sb.set_faults({"opencdp": {"latency_ms": 20}})
        t = time.perf_counter()
        reqs, _, st = await _load(host, port, max(conns, 64), dur, _fixed_maker(single))
        secs = time.perf_counter() - t
        _report("latency", reqs / secs, "req/s", secs, st)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args(argv)
    print(f"sandbox benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"{args.duration:.0f} s per scenario")
    try:
        import uvloop

        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
