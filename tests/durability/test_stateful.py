"""A stateful property test of the promise "nothing lost, nothing wrong, never raised".

Random interleavings of valid and invalid calls, faults on each platform, forked children
that track and flush, processes that exit without close(), calls from SIGALRM handlers, wall
clock steps of hours and days, close-and-reopen of a durable queue, and (with Redis) the
server stopped, paused, refusing writes at its memory limit, and restarted with or without
its data. Invariant, per destination, after a
final flush: every accepted call was stored (exactly once in Customer.io, at least once in
OpenCDP, whose resends carry the same Idempotency-Key) or dead-lettered with a reason;
nothing else was stored; no call raised anything but ``ValidationError`` for bad input.

``OPENCDP_STATEFUL_EXAMPLES`` raises the number of runs (``make chaos`` runs a long profile).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from opencdp import Client, clock
from opencdp.clock import ManualClock, SteadyClock
from opencdp.config import BreakerConfig, RetryConfig
from opencdp.errors import ValidationError
from opencdp.sandbox import Sandbox
from opencdp.testing import sandbox_options
from support.stored import stored as stored_events

EXAMPLES = int(os.environ.get("OPENCDP_STATEFUL_EXAMPLES", "3"))
POISON = st.sampled_from(["caf\udce9", float("nan"), b"raw", {1, 2}, 2**70])
FAULTS = st.sampled_from([
    {"error_rate": 0.5, "statuses": [500, 503]},
    {"rate_limit_storm": 0.5, "retry_after": 0},
    {"reset_rate": 0.3},
    {"down": True},
])


def _child_tracks(options: dict[str, Any], client: Client, seqs: list[int]) -> None:
    for seq in seqs:
        client.track("forked", "Stateful", {"seq": seq})
    ok = client.flush(30)
    os._exit(0 if ok else 3)  # as multiprocessing children do: no atexit


class Delivery(RuleBasedStateMachine):
    sandbox: Sandbox
    queue_kind = "memory"
    redis: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.sandbox.reset()
        if self.redis is not None:
            self.redis.flushall()  # each run starts from an empty queue
        self.tmp = tempfile.TemporaryDirectory()
        self.seq = 0
        self.accepted: set[int] = set()
        self.maybe: set[int] = set()
        self.clients: list[Client] = []
        self.wall = ManualClock()  # the machine's clock, as the tests step it
        self._clock = clock.use(SteadyClock(self.wall))
        self._clock.__enter__()
        self.handler_seqs = itertools.count(1_000_000)
        self.client = self._open()

    def _queue(self) -> str:
        if self.queue_kind == "sqlite":
            return f"sqlite:///{Path(self.tmp.name) / 'outbox.db'}"
        if self.queue_kind == "redis":
            return str(self.redis.url)
        return "memory"

    def _open(self) -> Client:
        options = sandbox_options(
            self.sandbox, queue=self._queue(), batch_size=50,
            retry=RetryConfig(base_delay=0.01, max_delay=0.2, max_attempts=50),
            breaker=BreakerConfig(reset_timeout=0.1), timeout=2.0,
            spill_path=str(Path(self.tmp.name) / "spill.db"),
        )
        client = Client(**options)
        self.clients.append(client)
        return client

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    @rule(count=st.integers(1, 30))
    def track(self, count: int) -> None:
        for _ in range(count):
            seq = self._next()
            self.client.track(f"u{seq % 5}", "Stateful", {"seq": seq})
            self.accepted.add(seq)

    @rule(poison=POISON)
    def track_poison(self, poison: Any) -> None:
        with pytest.raises(ValidationError):
            self.client.track("u1", "Stateful", {"seq": -1, "bad": poison})

    @rule(plan=st.sampled_from(["free", "pro"]))
    def identify(self, plan: str) -> None:
        self.client.identify("u1", {"email": "u1@example.com", "plan": plan})

    @rule(service=st.sampled_from(["opencdp", "customerio"]), faults=FAULTS)
    def fault(self, service: str, faults: dict[str, Any]) -> None:
        self.sandbox.set_faults({service: dict(faults, seed=self.seq)})

    @rule()
    def heal(self) -> None:
        self.sandbox.clear_faults()

    @rule(count=st.integers(1, 5))
    def fork_and_track(self, count: int) -> None:
        seqs = [self._next() for _ in range(count)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            child = multiprocessing.get_context("fork").Process(
                target=_child_tracks, args=({}, self.client, seqs))
            child.start()
            child.join(60)
        assert child.exitcode in (0, 3), f"the forked child failed: {child.exitcode}"
        if child.exitcode == 0 or self.client.engine.outbox.durable:
            self.accepted.update(seqs)
        else:
            # A memory queue in a child that exits (os._exit) before its flush could settle
            # (a platform was down): what it had not delivered is gone with the process.
            self.maybe.update(seqs)

    @rule(count=st.integers(5, 40))
    def track_from_signal_handlers(self, count: int) -> None:
        """SIGALRM handlers track while the main thread does: none waits on the main
        thread's own locks, and every call counts."""
        from_handlers: list[int] = []

        def handler(signum: int, frame: Any) -> None:
            if len(from_handlers) >= 200:  # a main-thread call blocked on a paused Redis
                return  # would otherwise collect thousands
            seq = next(self.handler_seqs)
            self.client.track("u1", "Stateful", {"seq": seq})
            from_handlers.append(seq)

        previous = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
        try:
            self.track(count)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, previous)
        self.accepted.update(from_handlers)

    @rule(hours=st.sampled_from([-1.0, 1.0, 25.0, -25.0]))
    def clock_step(self, hours: float) -> None:
        self.wall.step(hours * 3600)
        self.track(3)

    @rule(count=st.integers(1, 10))
    def exit_without_close(self, count: int) -> None:
        """Another process on the same queue that exits without close(): its atexit drain
        delivers (a memory queue's too)."""
        seqs = [self._next() for _ in range(count)]
        queue = self._queue()
        script = textwrap.dedent(f"""
            from opencdp import Client
            from opencdp.config import RetryConfig
            from opencdp.testing import sandbox_options
            class S:
                opencdp_url = {self.sandbox.opencdp_url!r}
                track_url = {self.sandbox.track_url!r}
                app_url = {self.sandbox.app_url!r}
            client = Client(**sandbox_options(
                S(), queue={queue!r}, register_atexit=True, shutdown_timeout=20.0,
                retry=RetryConfig(base_delay=0.01, max_delay=0.2, max_attempts=50),
                spill_path={str(Path(self.tmp.name) / "exit-spill.db")!r}))
            for seq in {seqs!r}:
                client.track("exiting", "Stateful", {{"seq": seq}})
        """)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=90, check=False)
        assert done.returncode == 0, done.stderr
        if queue == "memory" and "OCDP302" in done.stderr:
            self.maybe.update(seqs)  # a platform was down for the whole drain: counted loss
        else:
            self.accepted.update(seqs)

    @precondition(lambda self: self.queue_kind != "memory")
    @rule()
    def reopen(self) -> None:
        self.client.close(0.5)
        self.client = self._open()

    @precondition(lambda self: self.queue_kind == "redis")
    @rule(how=st.sampled_from(["restart", "pause", "refuse_writes"]))
    def redis_trouble(self, how: str) -> None:
        if how == "refuse_writes":  # maxmemory with noeviction: every write refused
            import redis

            server = redis.Redis.from_url(self.redis.url)
            server.config_set("maxmemory-policy", "noeviction")
            server.config_set("maxmemory", "1")
            try:
                self.track(5)
            finally:
                server.config_set("maxmemory", "0")
                server.close()
        elif how == "pause":
            self.redis.pause()
            self.track(5)
            self.redis.resume()
        else:
            self.redis.stop()
            if not self.redis.persist:
                # What the server held is gone with it (logged as OCDP323); what was
                # delivered before stays stored. Calls from now on must all arrive.
                self.maybe |= self.accepted
                self.accepted = set()
            self.track(5)
            self.redis.start()

    @invariant()
    def nothing_raised_into_the_host(self) -> None:
        assert self.client.stats().running or not self.client.config.start_worker

    def teardown(self) -> None:
        try:
            self.sandbox.clear_faults()
            assert self.client.flush(90), "everything accepted settles"
            # Leases of a forked child that exited mid-delivery are reclaimed when they
            # expire: wait for the whole queue, not only this process's work.
            deadline = time.monotonic() + 60
            while any(s.pending or s.in_flight for s in self.client.engine.outbox.stats(
                    time.time()).values()):
                assert time.monotonic() < deadline, "the queue drains"
                time.sleep(0.2)
            dead: dict[str, set[int]] = {"opencdp": set(), "customerio": set()}
            for letter in self.client.dead_letters(limit=100_000):
                assert letter.reason
                seq = (letter.message.data or {}).get("seq")
                if isinstance(seq, int):
                    dead[letter.destination].add(seq)
            for service in ("opencdp", "customerio"):
                stored = stored_events(self.sandbox, service)
                extra = set(stored) - self.accepted - self.maybe
                assert not extra, f"{service}: stored what was not accepted"
                missing = self.accepted - set(stored) - dead[service]
                assert not missing, f"{service}: {len(missing)} accepted calls lost"
                if service == "customerio":
                    twice = {s for s, n in stored.items() if n > 1}
                    assert not twice, f"customerio stored {len(twice)} events twice"
        finally:
            for client in self.clients:
                client.close(0.5)
            self._clock.__exit__(None, None, None)
            self.tmp.cleanup()


@pytest.fixture(scope="module")
def stateful_sandbox() -> Any:
    with Sandbox(port=0, process=True) as sb:
        yield sb


def _run(machine: type[Delivery]) -> None:
    test = machine.TestCase
    # No shrinking: each step talks to real servers, so a shrink takes minutes; the
    # failing run's steps are printed as they were.
    test.settings = settings(max_examples=EXAMPLES, stateful_step_count=12, deadline=None,
                             suppress_health_check=list(HealthCheck), database=None,
                             phases=(Phase.explicit, Phase.generate))
    test().runTest()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("queue", ["memory", "sqlite"])
def test_stateful_delivery(stateful_sandbox: Any, queue: str) -> None:
    machine = type(f"Delivery_{queue}", (Delivery,),
                   {"sandbox": stateful_sandbox, "queue_kind": queue})
    _run(machine)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(600)
@pytest.mark.parametrize("persist", [False, True], ids=["empty-restart", "persistent"])
def test_stateful_delivery_through_redis_trouble(stateful_sandbox: Any, redis_url: str,
                                                 persist: bool) -> None:
    import sys

    helper = sys.modules["opencdp_tests_redis_server"]
    redis = helper.RestartableRedis(persist=persist).start()
    try:
        machine = type("Delivery_redis", (Delivery,),
                       {"sandbox": stateful_sandbox, "queue_kind": "redis", "redis": redis})
        _run(machine)
    finally:
        redis.close()
