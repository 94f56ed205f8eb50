"""``make soak``: the relay and its workers under sustained load, as they run in production.

Set-up: a sandbox in its own process (both platforms), a redis-server, ``opencdp serve
--workers 2 --ingest-only`` on it, and two ``opencdp worker`` processes delivering the queue.

1. Capacity: ``--probe`` seconds of unpaced load (64 connections). The capacity is the lower
   of the rate the relay answered and the rate the workers delivered (to both platforms,
   until the queue was empty again): sustained traffic above either only grows a backlog.
2. Soak: ``--minutes`` of paced load at ``--fraction`` (80 %) of that capacity. Sampled every
   half second: accepted (the relay's own ``opencdp_relay_requests_total{status="202"}``, summed
   over its processes) and delivered (events the sandbox stored, per platform). Every
   ``--minutes``/10 the resident memory of each process.
3. Drain, stop everything with SIGTERM, and check: every call answered 2xx is stored exactly
   once at Customer.io (its event-id de-duplication counts repeats: 0 wanted) and at least
   once at OpenCDP (0 lost).

Accept latency is each request's, measured by the load generator from the time it was due
(so a relay that falls behind shows it). Delivery lag is read from the two curves: at each
sample, delivered(t) = accepted(t - lag), i.e. how long ago the message now being delivered
was accepted (messages are delivered roughly in order), interpolated between samples.

    python -m bench.soak [--minutes 10] [--fraction 0.8] [--probe 10]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx

from bench.relay import (
    BODY,
    RELAY_KEY,
    SCRATCH,
    TRACK_PATH,
    _readline,
    redis_server,
    relay_command,
    relay_env,
    stop,
)

_ACCEPTED = re.compile(r'opencdp_relay_requests_total\{endpoint="track",status="202"\} (\S+)')


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as file:
            return [int(p) for p in file.read().split()]
    except OSError:
        return []


@contextlib.contextmanager
def process(command: list[str], env: dict[str, str], log: Any) -> Iterator[
        tuple[subprocess.Popen[str], dict[str, Any]]]:
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
                            cwd=SCRATCH)
    try:
        yield proc, json.loads(_readline(proc, 60))
    finally:
        stop(proc)


def load_command(url: str, seconds: float, rate: float, connections: int) -> list[str]:
    return [sys.executable, "-m", "bench.loadgen", url, "--path", TRACK_PATH,
            "--body", BODY.decode(), "--header", f"Authorization: {RELAY_KEY}",
            "--seconds", str(seconds), "--connections", str(connections), "--rate", str(rate),
            "--warmup", "0"]


class Meter:
    """Accepted (relay metrics) and delivered (sandbox) counts over time."""

    def __init__(self, relay_url: str, sandbox: Any) -> None:
        self.metrics = relay_url + "/metrics"
        self.sandbox = sandbox
        self.http = httpx.Client(trust_env=False, timeout=10)

    def accepted(self) -> int:
        match = _ACCEPTED.search(self.http.get(self.metrics).text)
        return int(float(match.group(1))) if match else 0

    def delivered(self) -> tuple[int, int, int]:
        stats = self.sandbox.stats()
        return (stats["opencdp"]["events"], stats["customerio"]["events"],
                stats["customerio"]["duplicates"])

    def wait_drained(self, target: int, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            cdp, cio, _ = self.delivered()
            if cdp >= target and cio >= target:
                return time.monotonic() - start
            time.sleep(0.25)
        raise SystemExit(f"the workers did not deliver {target} events in {timeout:g} s")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def lags(samples: list[tuple[float, int, int]]) -> list[float]:
    """For each sample (t, accepted, delivered): t minus when ``accepted`` reached what is
    delivered now, interpolated linearly between two samples."""
    times = [t for t, _, _ in samples]
    accepted = [a for _, a, _ in samples]
    out = []
    for t, _, delivered in samples:
        i = bisect.bisect_left(accepted, delivered)
        if i == 0 or i >= len(samples) or delivered <= 0:
            continue
        a0, a1, t0, t1 = accepted[i - 1], accepted[i], times[i - 1], times[i]
        crossed = t0 + (t1 - t0) * (delivered - a0) / (a1 - a0) if a1 > a0 else t1
        out.append(max(0.0, t - crossed))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fraction", type=float, default=0.8)
    parser.add_argument("--probe", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--log", default=os.devnull, help="the processes' stderr")
    args = parser.parse_args()
    from opencdp.sandbox import Sandbox

    soak_seconds = args.minutes * 60
    print(f"soak: relay --workers 2 --ingest-only + 2 workers on Redis, {args.minutes:g} min "
          f"at {args.fraction:.0%} of capacity; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    with Sandbox(port=0, process=True) as sandbox, redis_server() as redis_url, \
            open(args.log, "a") as log:
        if redis_url is None:
            raise SystemExit("make soak needs redis-server on PATH")
        queue = f"{redis_url}?prefix=soak{os.getpid()}"
        env = relay_env(sandbox)
        worker = [sys.executable, "-m", "opencdp", "worker", "--queue", queue,
                  "--cdp-endpoint", sandbox.opencdp_url, "--track-url", sandbox.track_url,
                  "--app-url", sandbox.app_url]
        relay_cmd = relay_command(sandbox, queue, "--workers", "2", "--ingest-only")
        with process(relay_cmd, env, log) as (relay, urls), \
                process(worker, env, log) as (w1, _), process(worker, env, log) as (w2, _):
            meter = Meter(urls["url"], sandbox)
            # 1. capacity
            started = time.monotonic()
            probe = subprocess.run(load_command(urls["url"], args.probe, 0, 64),
                                   capture_output=True, text=True, check=True)
            burst = json.loads(probe.stdout.strip().splitlines()[-1])
            accept_rate = burst["ok_total"] / args.probe
            meter.wait_drained(burst["ok_total"], 300)
            deliver_rate = burst["ok_total"] / (time.monotonic() - started)
            capacity = min(accept_rate, deliver_rate)
            rate = capacity * args.fraction
            print(f"capacity: relay answered {accept_rate:,.0f}/s, workers delivered "
                  f"{deliver_rate:,.0f}/s to both platforms -> {capacity:,.0f}/s; "
                  f"soak at {rate:,.0f}/s", flush=True)
            base_cdp, base_cio, base_dup = meter.delivered()
            base_accepted = meter.accepted()
            # 2. soak
            pids = {"relay supervisor": relay.pid, "worker 1": w1.pid, "worker 2": w2.pid}
            for i, pid in enumerate(sorted(children(relay.pid))):
                pids[f"relay process {i}"] = pid
            memory: list[tuple[float, dict[str, float]]] = []
            samples: list[tuple[float, int, int, int]] = []
            loader = subprocess.Popen(load_command(urls["url"], soak_seconds, rate,
                                                   args.connections),
                                      stdout=subprocess.PIPE, text=True)
            t0 = time.monotonic()
            next_memory = 0.0
            while loader.poll() is None:
                now = time.monotonic() - t0
                cdp, cio, _ = meter.delivered()
                samples.append((now, meter.accepted() - base_accepted, cdp - base_cdp,
                                cio - base_cio))
                if now >= next_memory:
                    memory.append((now, {name: rss_mb(pid) for name, pid in pids.items()}))
                    next_memory += soak_seconds / 10
                time.sleep(0.5)
            out, _ = loader.communicate()
            result = json.loads(out.strip().splitlines()[-1])
            answered = result["ok_total"]
            waited = meter.wait_drained(base_cdp + answered, 300)
            memory.append((time.monotonic() - t0, {n: rss_mb(p) for n, p in pids.items()}))
            cdp, cio, dup = meter.delivered()
        # 3. the verdict, after SIGTERM to every process
    cdp_lag = lags([(t, a, d) for t, a, d, _ in samples])
    cio_lag = lags([(t, a, c) for t, a, _, c in samples])
    lost_cio = answered - (cio - base_cio)
    lost_cdp = max(0, answered - (cdp - base_cdp))
    print(f"\nsustained {result['rate']:,.0f} req/s for {soak_seconds:g} s: {answered:,} "
          f"answered 2xx, {result['sent_total'] - answered:,} not, {result['errors']} "
          f"connection errors; drained {waited:.1f} s after the load stopped")
    print(f"{'':<28}{'p50':>9}{'p99':>9}{'max':>9}")
    print(f"{'accept latency (ms)':<28}{result['p50_ms']:>9.1f}{result['p99_ms']:>9.1f}"
          f"{result['max_ms']:>9.1f}")
    for name, values in (("delivery lag OpenCDP (s)", cdp_lag),
                         ("delivery lag Customer.io (s)", cio_lag)):
        print(f"{name:<28}{percentile(values, 0.5):>9.1f}{percentile(values, 0.99):>9.1f}"
              f"{max(values, default=0.0):>9.1f}")
    names = list(memory[0][1])
    print("\nresident memory (MB)\n" + f"{'minute':>8}" + "".join(f"{n:>19}" for n in names))
    for t, sizes in memory:
        print(f"{t / 60:>8.1f}" + "".join(f"{sizes.get(n, 0.0):>19.1f}" for n in names))
    print(f"\nlost: {lost_cdp} at OpenCDP, {lost_cio} at Customer.io; "
          f"twice at Customer.io: {dup - base_dup}; load average {os.getloadavg()[0]:.1f}")
    shutil.rmtree(SCRATCH, ignore_errors=True)
    return 0 if lost_cdp == 0 and lost_cio == 0 and dup == base_dup else 1


if __name__ == "__main__":
    sys.exit(main())
