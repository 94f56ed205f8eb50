"""A loopback HTTP/1.1 load generator that costs less than the servers it measures.

Keep-alive connections, one request in flight on each (no pipelining), requests pre-encoded as
bytes, responses parsed only as far as the status and ``Content-Length``. It runs in its own
process (``python -m bench.loadgen``) so it never shares a GIL with the server, and prints one
JSON line: requests answered, by status, and accept latency percentiles.

    python -m bench.loadgen URL --path /p --body '{}' --header 'Authorization: k'
                            [--seconds 5] [--connections 64] [--rate N] [--warmup 1]

``--rate`` paces the whole run at N requests/s (open-loop per connection: a request is sent at
its scheduled time, or at once when late), for soak runs at a fraction of capacity; latency is
then measured from the scheduled time, so a server that falls behind shows it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

__all__ = ["main"]


class _Conn(asyncio.Protocol):
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: Any = None
        self.buf = b""
        self.sent = 0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.run.next(self)

    def send(self, scheduled: int) -> None:
        self.sent = scheduled
        self.run.sent_total += 1
        assert self.transport is not None
        self.transport.write(self.run.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.buf = buf
            return
        head = buf[:end].lower()
        i = head.find(b"content-length:")
        length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0
                          else len(head)]) if i >= 0 else 0
        if len(buf) < end + 4 + length:
            self.buf = buf
            return
        self.buf = buf[end + 4 + length:]
        self.run.answered(self, int(buf[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.lost(self)
        if not self.closed.done():
            self.closed.set_result(None)


class _Run:
    def __init__(self, request: bytes, seconds: float, warmup: float, rate: float) -> None:
        self.request = request
        now = time.perf_counter_ns()
        self.measure_from = now + int(warmup * 1e9)
        self.stop_at = self.measure_from + int(seconds * 1e9)
        self.interval = 0 if rate <= 0 else int(1e9 / rate)
        self.schedule = now
        self.statuses: dict[int, int] = {}
        self.latencies: list[int] = []
        self.errors = 0
        self.ok_total = 0  # every 2xx, the warm-up's and the last ones' too
        self.sent_total = 0
        self.loop = asyncio.get_running_loop()

    def next(self, conn: _Conn) -> None:
        now = time.perf_counter_ns()
        if now >= self.stop_at:
            if conn.transport is not None:
                conn.transport.close()
            return
        if not self.interval:
            conn.send(now)
            return
        self.schedule = max(self.schedule + self.interval, now - 10 * self.interval)
        at = self.schedule
        if at <= now:
            conn.send(at)
        else:
            self.loop.call_later((at - now) / 1e9, conn.send, at)

    def answered(self, conn: _Conn, status: int) -> None:
        now = time.perf_counter_ns()
        if 200 <= status < 300:
            self.ok_total += 1
        if conn.sent >= self.measure_from and now <= self.stop_at:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.latencies.append(now - conn.sent)
        self.next(conn)

    def lost(self, conn: _Conn) -> None:
        if time.perf_counter_ns() < self.stop_at:
            self.errors += 1


def _pct(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(len(values) * q))] / 1e6


async def _main(args: argparse.Namespace) -> dict[str, object]:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = "".join(f"{h}\r\n" for h in args.header)
    body = args.body.encode()
    request = (f"{args.method} {args.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
               ).encode() + body
    run = _Run(request, args.seconds, args.warmup, args.rate)
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(args.connections):
        _, conn = await loop.create_connection(lambda: _Conn(run), host, port)
        conns.append(conn)
    await asyncio.wait_for(asyncio.gather(*(c.closed for c in conns)),
                           args.warmup + args.seconds + 30)
    run.latencies.sort()
    answered = sum(run.statuses.values())
    return {"requests": answered, "rate": answered / args.seconds,
            "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
            "errors": run.errors, "ok_total": run.ok_total, "sent_total": run.sent_total,
            "p50_ms": _pct(run.latencies, 0.50),
            "p99_ms": _pct(run.latencies, 0.99), "max_ms": _pct(run.latencies, 1.0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--path", default="/")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default="{}")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(_main(args))
    else:
        result = uvloop.run(_main(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
