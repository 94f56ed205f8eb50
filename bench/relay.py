"""Requests/s the relay accepts, beside a bare uvicorn endpoint doing nothing, in one run.

Every server runs in its own process on the same uvicorn (uvloop and httptools when
installed), and the load comes from another process (``bench.loadgen``: keep-alive
connections, one request in flight each) posting the same gateway ``track`` body with five
properties. The figures are therefore per server process, and the ratio to the bare endpoint
is what this benchmark judges (the machine's speed and load cancel out of it, mostly).

bare        uvicorn + a raw ASGI app that reads the body and answers 202: the ceiling
sqlite      ``opencdp serve`` single process, durable SQLite queue, delivering (dual-write)
            into the sandbox in the same process, as it runs by default (target >= 0.5x bare)
sqlite-ingest  the same with ``--ingest-only``: what storing costs without the delivery
            (information: the difference to ``sqlite`` is the delivery's share)
ingest      ``opencdp serve --ingest-only`` on Redis: store and answer, no delivery in the
            relay (``opencdp worker`` pools deliver) (target >= 0.8x bare)

After each relay run the stored messages are counted: every 2xx must be in the queue.

    python -m bench.relay [--seconds 5] [--connections 64] [--only bare,sqlite,ingest]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

RELAY_KEY = "bench-relay-key"
PROPS = {"order_id": "A-1001", "total": 99.5, "currency": "USD", "items": 3, "sku": "sku-1"}
BODY = orjson.dumps({"identifier": "user_1", "eventName": "order_placed", "properties": PROPS})
TRACK_PATH = "/gateway/data-gateway/v1/persons/track"
TARGETS = {"sqlite": 0.5, "ingest": 0.8}


# the bare endpoint -------------------------------------------------------------------------
async def _bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        from opencdp.serving import lifespan

        await lifespan(receive, send)
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"21")]})
    await send({"type": "http.response.body", "body": b'{"status":"accepted"}'})


def serve_bare() -> None:
    """uvicorn on a free port with the relay's loop and parser; prints {"url": ...}."""
    import uvicorn

    from opencdp.serving import bind, uvicorn_choice

    sock = bind("127.0.0.1", 0, "bare")
    loop, http = uvicorn_choice()
    config = uvicorn.Config(_bare_app, loop=loop, http=http, lifespan="on", access_log=False,
                            log_level="warning", server_header=False, ws="none")
    server = uvicorn.Server(config)
    print(json.dumps({"url": f"http://127.0.0.1:{sock.getsockname()[1]}"}), flush=True)
    server.run(sockets=[sock])


# processes ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", tmp],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(OSError), socket.create_connection(
                        ("127.0.0.1", port), 0.2):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def relay_env(sandbox: Any) -> dict[str, str]:
    env = dict(os.environ, OPENCDP_RELAY_KEYS=RELAY_KEY, CDP_API_KEY="cdp-test-key",
               CUSTOMERIO_SITE_ID="sandbox-site", CUSTOMERIO_TRACK_API_KEY="sandbox-track-key")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                      env.get("PYTHONPATH")]))
    return env


def relay_command(sandbox: Any, queue: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "opencdp", "serve", "--queue", queue, "--port", "0",
            "--cdp-endpoint", sandbox.opencdp_url, "--track-url", sandbox.track_url,
            "--app-url", sandbox.app_url, "--log-level", "warning", *extra]


SCRATCH = tempfile.mkdtemp(prefix="opencdp-bench-relay-")
"""The servers' working directory: a durable queue's spill file goes there, not here."""


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str] | None = None,
            timeout: float = 60.0) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A server process whose first stdout line is {"url": ...}; SIGTERM and wait after."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, cwd=SCRATCH)
    try:
        assert proc.stdout is not None
        line = _readline(proc, timeout)
        while not line.startswith("{"):  # a wrapper's banner (a profiler's)
            line = _readline(proc, timeout)
        yield proc, json.loads(line)["url"]
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (the relay drains), then kill after a bounded wait."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise SystemExit(f"{proc.args!r} printed nothing in {timeout:g} s")
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"{proc.args!r} exited with {proc.wait()}")
    return line


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, seconds: float, connections: int, rate: float = 0.0,
         warmup: float = 1.0, pid: int | None = None) -> dict[str, Any]:
    """The load generator's result; with ``pid``, also the CPU time that process spent per
    answered request over the whole run (warm-up included, so a slight overestimate)."""
    before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", url, "--path", TRACK_PATH,
         "--body", BODY.decode(), "--header", f"Authorization: {RELAY_KEY}",
         "--seconds", str(seconds), "--connections", str(connections), "--rate", str(rate),
         "--warmup", str(warmup)],
        capture_output=True, text=True, timeout=seconds + warmup + 120, check=False)
    if out.returncode:
        raise SystemExit(f"the load generator failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if pid:
        spent = cpu_seconds(pid) - before
        total = result["requests"] * (seconds + warmup) / seconds
        result["cpu_us"] = spent / total * 1e6 if total else 0.0
    return result


def ok(result: dict[str, Any]) -> int:
    return sum(n for status, n in result["statuses"].items() if status.startswith("2"))


# scenarios ---------------------------------------------------------------------------------
def run_bare(args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    with started([sys.executable, "-m", "bench.relay", "--serve-bare"], env) as (proc, url):
        return load(url, args.seconds, args.connections, pid=proc.pid)


def stored_sqlite(path: Path) -> int:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as db:
        count: int = db.execute("SELECT count(*) FROM msgs").fetchone()[0]
    return count


def run_sqlite(args: argparse.Namespace, sandbox: Any, tmp: Path) -> dict[str, Any]:
    sandbox.reset()
    path = tmp / "relay.db"
    with started(relay_command(sandbox, f"sqlite:///{path}"),
                 relay_env(sandbox)) as (proc, url):
        result = load(url, args.seconds, args.connections, pid=proc.pid)
    delivered = sandbox.stats()["opencdp"]["events"]
    result["check"] = f"{delivered:,} delivered to OpenCDP by the end of the drain"
    return result


def run_sqlite_ingest(args: argparse.Namespace, sandbox: Any, tmp: Path) -> dict[str, Any]:
    path = tmp / "ingest.db"
    with started(relay_command(sandbox, f"sqlite:///{path}", "--ingest-only"),
                 relay_env(sandbox)) as (proc, url):
        result = load(url, args.seconds, args.connections, pid=proc.pid)
    result["check"] = f"{stored_sqlite(path):,} rows in the SQLite queue"
    return result


def run_ingest(args: argparse.Namespace, sandbox: Any, redis_url: str) -> dict[str, Any]:
    from opencdp.outbox.url import open_outbox

    prefix = f"bench{os.getpid()}"
    queue = f"{redis_url}?prefix={prefix}"
    with started(relay_command(sandbox, queue, "--ingest-only"),
                 relay_env(sandbox)) as (proc, url):
        result = load(url, args.seconds, args.connections, pid=proc.pid)
    import logging

    box = open_outbox(queue, max_queue_size=10**9, queue_full="drop_oldest",
                      queue_full_timeout=0.0, durability="durable",
                      logger=logging.getLogger("bench.quiet"))
    try:
        pending = {name: stats.pending for name, stats in box.stats(time.time()).items()}
    finally:
        box.close()
    result["check"] = (f"stored in Redis, per destination: {pending} "
                       f"(answered 2xx: {ok(result):,} measured + the warm-up's)")
    return result


def main() -> int:
    if "--serve-bare" in sys.argv:
        serve_bare()
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", default="bare,sqlite,sqlite-ingest,ingest")
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    from opencdp.sandbox import Sandbox

    results: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()
    with Sandbox(port=0, process=True) as sandbox, tempfile.TemporaryDirectory() as tmp, \
            redis_server() as redis_url:
        if "bare" in wanted:
            results["bare"] = run_bare(args)
        if "sqlite" in wanted:
            results["sqlite"] = run_sqlite(args, sandbox, Path(tmp))
        if "sqlite-ingest" in wanted:
            results["sqlite-ingest"] = run_sqlite_ingest(args, sandbox, Path(tmp))
        if "ingest" in wanted:
            if redis_url is None:
                print("ingest: skipped, no redis-server on PATH")
            else:
                results["ingest"] = run_ingest(args, sandbox, redis_url)
    load_after = os.getloadavg()
    shutil.rmtree(SCRATCH, ignore_errors=True)
    bare = results.get("bare", {}).get("rate")
    print(f"relay benchmark: {args.connections} connections, {args.seconds:g} s each, "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(f"{'server':<44}{'req/s':>9}{'x bare':>8}{'CPU us/req':>11}{'p50 ms':>8}"
          f"{'p99 ms':>8}  non-2xx, target")
    names = {"bare": "bare uvicorn endpoint (does nothing)",
             "sqlite": "relay, 1 process, SQLite durable, delivering",
             "sqlite-ingest": "relay --ingest-only, SQLite durable",
             "ingest": "relay --ingest-only, Redis, 1 process"}
    for key, result in results.items():
        ratio = result["rate"] / bare if bare else float("nan")
        bad = result["requests"] - ok(result) + result["errors"]
        target = TARGETS.get(key)
        verdict = "" if target is None or not bare else (
            f", >= {target}x {'MET' if ratio >= target else 'NOT MET'}")
        print(f"{names[key]:<44}{result['rate']:>9,.0f}{ratio:>7.2f}x"
              f"{result.get('cpu_us', 0.0):>11,.0f}{result['p50_ms']:>8.1f}"
              f"{result['p99_ms']:>8.1f}  {bad}{verdict}")
        if "check" in result:
            print(f"{'':<4}{result['check']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
