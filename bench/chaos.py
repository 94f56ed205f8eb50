"""``make chaos``: dual-write through injected faults and a Customer.io outage; count the damage.

Both emulated services answer 20 % of requests with a 5xx, 5 % with 429 + Retry-After and
reset 2 % of connections; Customer.io is also down for ``--outage`` seconds in the middle of
the run. Every ``POISON_EVERY``-th call is followed by a poison call, alternately a value no
encoder can take (it must be refused at the call with ``ValidationError``) and an attribute
over a limit only Customer.io has (OpenCDP must store it; only its Customer.io copy is
dead-lettered). The host code sends ``--events`` events at an even pace (like an app's traffic),
timing every call and catching anything raised. At the end every event's sequence number is
looked up in each platform's store: lost, stored twice, dead-lettered and retried are counted
per destination, together with OpenCDP's delivery lag inside and outside the outage.

    python -m bench.chaos [--events 100000] [--seconds 60] [--outage 30] [--queue memory]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opencdp import Client, CustomerIO
from opencdp.config import BreakerConfig, RetryConfig
from opencdp.errors import ValidationError
from opencdp.sandbox import Sandbox

POISON_EVERY = 500
FAULTS = {"error_rate": 0.20, "statuses": [500, 502, 503, 504], "rate_limit_storm": 0.05,
          "retry_after": 1, "reset_rate": 0.02}


@dataclass
class DestinationReport:
    expected: int
    stored_unique: int
    lost: int
    stored_twice: int
    resends_suppressed: int
    dead_lettered: int
    retried: int


@dataclass
class ChaosReport:
    events: int
    raised: int
    call_p50_us: float
    call_p99_us: float
    drained: bool
    seconds: float
    opencdp_lag_outside_outage_s: float
    opencdp_lag_during_outage_s: float
    destinations: dict[str, DestinationReport] = field(default_factory=dict)
    poison_injected: int = 0
    poison_refused_at_call: int = 0
    poison_isolated: int = 0
    """Customer.io-only poison stored by OpenCDP and dead-lettered for Customer.io alone."""

    @property
    def ok(self) -> bool:
        return (self.raised == 0 and self.drained
                and self.poison_refused_at_call + self.poison_isolated == self.poison_injected
                and all(d.lost == 0 and d.stored_twice == 0
                        for d in self.destinations.values()))


def _stored(sandbox: Sandbox, service: str) -> Counter[int]:
    seen: Counter[int] = Counter()
    for person in sandbox.people(service):
        for event in person.get("events", []):
            seq = (event.get("data") or {}).get("seq")
            if isinstance(seq, int):
                seen[seq] += 1
    return seen


def _poison(client: Client, n: int, report: ChaosReport) -> None:
    report.poison_injected += 1
    if n % 2:
        client.track("user_poison", "chaos_poison", {"poison": n, "blob": "x" * 40_000})
        return
    try:
        client.track("user_poison", "chaos_poison", {"poison": n, "bad": "caf\udce9"})
    except ValidationError:
        report.poison_refused_at_call += 1


def run_chaos(events: int, seconds: float, outage: float, queue: str = "memory",
              users: int = 500, drain_timeout: float = 600.0) -> ChaosReport:
    logging.getLogger("opencdp.chaos").setLevel(logging.CRITICAL)
    with Sandbox(port=0, process=True) as sandbox, tempfile.TemporaryDirectory() as tmp:
        queue_url = queue if queue == "memory" else f"sqlite:///{Path(tmp) / 'outbox.db'}"
        client = Client(
            cdp_api_key="cdp-test-key", cdp_endpoint=sandbox.opencdp_url,
            cdp_fallback_endpoints=[], send_to_customer_io=True,
            customer_io=CustomerIO("sandbox-site", "sandbox-track-key",
                                   track_url=sandbox.track_url, app_url=sandbox.app_url),
            retry=RetryConfig(base_delay=0.05, max_delay=2.0, max_attempts=10),
            breaker=BreakerConfig(reset_timeout=2.0),
            max_concurrent_requests=30, max_queue_size=max(100_000, events * 2),
            queue=queue_url, register_atexit=False, logger=logging.getLogger("opencdp.chaos"),
        )
        start = time.time()
        outage_from = start + (seconds - outage) / 2
        outage_to = outage_from + outage
        sandbox.set_faults({
            "opencdp": dict(FAULTS, seed=11),
            "customerio": dict(FAULTS, seed=12,
                               outages=[{"start": outage_from, "end": outage_to}]),
        })
        lags: list[tuple[float, float]] = []
        sent = 0
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                now = time.time()
                delivered = client.health().destinations["opencdp"].delivered
                rate = sent / max(now - start, 1e-6)
                lags.append((now, max(0, sent - delivered) / max(rate, 1.0)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        durations: list[int] = []
        raised = 0
        poison = ChaosReport(events=events, raised=0, call_p50_us=0, call_p99_us=0,
                             drained=False, seconds=0, opencdp_lag_outside_outage_s=0,
                             opencdp_lag_during_outage_s=0)
        for i in range(events):
            due = start + seconds * i / events
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            t0 = time.perf_counter_ns()
            try:
                client.track(f"user_{i % users}", "chaos_event", {"seq": i})
            except Exception:
                raised += 1
            durations.append(time.perf_counter_ns() - t0)
            sent = i + 1
            if i % POISON_EVERY == POISON_EVERY - 1:
                try:
                    _poison(client, i // POISON_EVERY, poison)
                except Exception:
                    raised += 1
        drained = client.flush(timeout=drain_timeout)
        done.set()
        sampler.join()
        elapsed = time.time() - start
        health = client.health()
        stats = sandbox.stats()
        poisoned = {d.message.data.get("poison") for d in client.dead_letters("customerio",
                                                                              limit=100_000)
                    if d.message.data and "poison" in d.message.data}
        stored_poison = {(e.get("data") or {}).get("poison")
                         for p in sandbox.people("opencdp") for e in p.get("events", [])}
        report = ChaosReport(
            events=events, raised=raised, poison_injected=poison.poison_injected,
            poison_refused_at_call=poison.poison_refused_at_call,
            poison_isolated=len({n for n in poisoned if n in stored_poison}),
            call_p50_us=statistics.median(durations) / 1000,
            call_p99_us=sorted(durations)[int(len(durations) * 0.99) - 1] / 1000,
            drained=drained, seconds=round(elapsed, 1),
            opencdp_lag_outside_outage_s=round(statistics.median(
                [lag for t, lag in lags if not outage_from <= t < outage_to] or [0.0]), 3),
            opencdp_lag_during_outage_s=round(statistics.median(
                [lag for t, lag in lags if outage_from <= t < outage_to] or [0.0]), 3),
        )
        for service in ("opencdp", "customerio"):
            seen = _stored(sandbox, service)
            dest = health.destinations[service]
            dead_poison = len(poisoned) if service == "customerio" else 0
            report.destinations[service] = DestinationReport(
                expected=events,
                stored_unique=len(seen),
                lost=events - len(seen),
                stored_twice=sum(n - 1 for n in seen.values() if n > 1),
                resends_suppressed=stats[service]["duplicates"],
                dead_lettered=dest.failed - dead_poison,
                retried=dest.retried,
            )
        client.close(timeout=5)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long the host code takes to send them (even pace)")
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--queue", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run_chaos(args.events, max(args.seconds, args.outage + 10), args.outage,
                       args.queue)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
        return
    print(f"chaos: {report.events:,} events over {report.seconds:.0f} s, faults {FAULTS}, "
          f"Customer.io down {args.outage:g} s mid-run, queue {args.queue}")
    print(f"host code: raised {report.raised}, call p50 {report.call_p50_us:.1f} µs, "
          f"p99 {report.call_p99_us:.1f} µs; drained: {report.drained}")
    print(f"poison: {report.poison_injected} injected, {report.poison_refused_at_call} refused "
          f"at the call, {report.poison_isolated} Customer.io-only isolated (stored by OpenCDP, "
          "dead-lettered for Customer.io alone)")
    print(f"OpenCDP delivery lag (median): {report.opencdp_lag_outside_outage_s:.2f} s "
          f"outside the outage, {report.opencdp_lag_during_outage_s:.2f} s during it")
    header = ("destination", "stored", "lost", "duplicated", "resends suppressed",
              "dead-lettered", "retried")
    print("".join(f"{h:>19}" for h in header))
    for name, d in report.destinations.items():
        row: tuple[Any, ...] = (name, d.stored_unique, d.lost, d.stored_twice,
                                d.resends_suppressed, d.dead_lettered, d.retried)
        print("".join(f"{v:>19,}" if isinstance(v, int) else f"{v:>19}" for v in row))
    print("RESULT:", "PASS" if report.ok else "FAIL")


if __name__ == "__main__":
    main()
