"""The edges of a process's life: interpreter exit, signal handlers, concurrent and repeated
close, forks at the first connection, and losses counted exactly. Each test reproduces a
failure seen before and asserts the exact counts on both platforms and a bounded time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from opencdp import Client
from support.stored import stored
from support.waiting import wait_for

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _script(tmp_path: Path, sandbox: Any, body: str, name: str = "app.py") -> Path:
    """A script that builds ``client`` on the sandbox with the options in ``OPTIONS``."""
    script = tmp_path / name
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys, threading, time
        from opencdp import Client
        from opencdp.config import RetryConfig
        from opencdp.testing import sandbox_options
        class S:
            opencdp_url = {sandbox.opencdp_url!r}
            track_url = {sandbox.track_url!r}
            app_url = {sandbox.app_url!r}
        def options(**extra):
            return sandbox_options(S(), retry=RetryConfig(base_delay=0.01, max_delay=0.05),
                                   register_atexit=True,
                                   **extra)
    """) + textwrap.dedent(body))
    return script


def _run(script: Path, *args: str, timeout: float = 60.0,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=timeout, check=False,
                          env={**os.environ, "PYTHONPATH": SRC, **(env or {})})


def _queue(kind: str, tmp_path: Path, redis_url: str | None) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    assert redis_url is not None
    return f"{redis_url}?prefix=edges{time.monotonic_ns()}"


@pytest.fixture(params=["sqlite", "redis"])
def durable_queue(request: Any, tmp_path: Path) -> str:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return _queue(request.param, tmp_path, url)


# --- A1: interpreter exit ---------------------------------------------------------------------

def test_the_exit_drain_delivers_a_durable_queue_once(sandbox: Any, tmp_path: Path,
                                                       durable_queue: str) -> None:
    """400 calls, no close(), a gateway 40 ms away: the atexit drain delivers all of them
    within shutdown_timeout, with no executor error, and a restart sends nothing again."""
    script = _script(tmp_path, sandbox, f"""
        client = Client(**options(queue={durable_queue!r}, shutdown_timeout=8.0,
                                  spill_path={str(tmp_path / 'spill.db')!r}))
        if len(sys.argv) == 1:
            for seq in range(400):
                client.track("u1", "viewed", {{"seq": seq}})
        else:  # the restart: it only delivers what the first run left
            print(client.close(10))
    """)
    sandbox.set_faults({"opencdp": {"latency_ms": 40}})
    started = time.monotonic()
    done = _run(script)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "cannot schedule new futures" not in done.stderr
    assert "OCDP306" not in done.stderr and "OCDP302" not in done.stderr, done.stderr
    assert elapsed < 8.0, f"the exit drain took {elapsed:.1f} s"
    for service in ("opencdp", "customerio"):
        assert sorted(stored(sandbox, service)) == list(range(400)), service
    again = _run(script, "restart")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "True"
    stats = sandbox.stats()
    assert stats["opencdp"]["accepted"] == 400, "a restart sent some messages again"
    assert sorted(stored(sandbox, "customerio")) == list(range(400))
    assert stats["customerio"]["duplicates"] == 0


def test_the_memory_exit_drain_counts_every_loss(sandbox: Any, tmp_path: Path) -> None:
    """Memory queue of 10 spilling to scratch, both platforms down, 100 calls, close(1):
    OCDP302 counts all 100 (the spilled 80 too), and no scratch folder is left behind."""
    script = _script(tmp_path, sandbox, """
        client = Client(**options(max_queue_size=10, queue_full="spill"))
        for seq in range(100):
            client.track("u1", "viewed", {"seq": seq})
        client.close(1)
    """)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    sandbox.set_faults({"opencdp": {"down": True}, "customerio": {"down": True}})
    done = _run(script, env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    assert "OCDP302 closed with 100 undelivered message(s)" in done.stderr, done.stderr
    assert list(scratch.iterdir()) == []


# --- A2: signal handlers ----------------------------------------------------------------------

@pytest.mark.parametrize("queue", ["memory", "sqlite"])
def test_calls_from_a_signal_handler_never_hang(sandbox: Any, tmp_path: Path, queue: str) -> None:
    """SIGALRM every millisecond tracks from its handler while the main thread tracks too
    (with a guard warning in every tenth call): no hang, and every call stored exactly once."""
    seconds = float(os.environ.get("OPENCDP_SIGNAL_SECONDS", "3"))
    url = "memory" if queue == "memory" else f"sqlite:///{tmp_path / 'q.db'}"
    script = _script(tmp_path, sandbox, f"""
        client = Client(**options(queue={url!r}, spill_path={str(tmp_path / "s.db")!r},
                                  max_queue_size=1_000_000))
        import itertools
        fired = []
        numbers = itertools.count()  # a handler may itself be interrupted by the next one
        def handler(signum, frame):
            n = next(numbers)
            fired.append(n)
            client.track("u1", "Handled" if n % 10 == 0 else "handled", {{"seq": f"h{{n}}"}})
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
        made = 0
        end = time.monotonic() + {seconds}
        while time.monotonic() < end:
            client.track("u1", "Main" if made % 10 == 0 else "main", {{"seq": f"m{{made}}"}})
            made += 1
            if made % 10 == 0:
                time.sleep(0.0005)  # an app's pace: the delivery after the run stays short
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        ok = client.flush(60)
        print(made, len(fired), ok)
        client.close(10)
    """)
    done = _run(script, timeout=seconds + 90)
    assert done.returncode == 0, done.stderr
    made, fired, ok = done.stdout.split()
    assert ok == "True"
    assert int(fired) > 50, "the timer hardly fired; the test proves nothing"
    expected = {f"m{i}" for i in range(int(made))} | {f"h{i}" for i in range(int(fired))}
    for service in ("opencdp", "customerio"):
        seen = stored(sandbox, service)
        assert set(seen) == expected, service
        assert max(seen.values()) == 1, service


def test_install_signal_handlers_drains_wherever_sigterm_lands(sandbox: Any,
                                                               tmp_path: Path) -> None:
    """SIGTERM at a random instant while the main thread tracks into SQLite: the process
    exits 0 having drained everything it accepted, every run."""
    script = _script(tmp_path, sandbox, f"""
        from opencdp.lifecycle import install_signal_handlers
        client = Client(**options(queue="sqlite:///" + sys.argv[1],
                                  spill_path={str(tmp_path / 's.db')!r}))
        install_signal_handlers(client, timeout=20)
        made = 0
        print("ready", flush=True)
        try:
            while True:
                client.track("u1", "main", {{"seq": f"{{sys.argv[2]}}-{{made}}"}})
                made += 1
        finally:
            print(made, flush=True)
    """)
    for run in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / f"q{run}.db"),
                                 str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": SRC})
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            proc.kill()
            pytest.fail(proc.communicate(timeout=10)[1])
        time.sleep(0.2 + run * 0.17)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        made = int(out.split()[-1])
        for service in ("opencdp", "customerio"):
            seen = {s for s in stored(sandbox, service) if str(s).startswith(f"{run}-")}
            # The call the signal interrupted is stored too, though it never returned.
            assert seen in ({f"{run}-{i}" for i in range(made)},
                            {f"{run}-{i}" for i in range(made + 1)}), (service, run)
            assert len(seen) >= made > 0


def test_flush_and_close_from_a_handler_answer_at_once(sandbox: Any, tmp_path: Path) -> None:
    """A flush from a handler that interrupted the client's own call cannot wait, and says
    False at once; a close there runs as soon as the interrupted call returns."""
    from opencdp import reentry

    client = Client(**_options(sandbox))
    with reentry.region():  # as if a handler had interrupted one of our calls
        started = time.monotonic()
        assert client.flush(5) is False
        assert client.close(5) is False
        assert time.monotonic() - started < 0.5
        assert not client.engine.closed
        client.track("u1", "viewed", {"seq": 1})  # handed over, not waited for
    assert client.engine.closed  # the deferred close ran when the region ended
    assert client.close(1) is True
    assert sorted(stored(sandbox, "opencdp")) == [1]


# --- A3: bounded and truthful close -----------------------------------------------------------

def _options(sandbox: Any, **extra: Any) -> dict[str, Any]:
    from health.support import client_options

    return client_options(sandbox, register_atexit=False, **extra)


def test_concurrent_closes_tell_the_same_truth(sandbox: Any) -> None:
    sandbox.set_faults({"opencdp": {"latency_ms": 800}})
    client = Client(**_options(sandbox))
    for seq in range(40):
        client.track("u1", "viewed", {"seq": seq})
    answers: list[bool] = []
    first = threading.Thread(target=lambda: answers.append(client.close(6)))
    first.start()
    time.sleep(0.2)
    started = time.monotonic()
    second = client.close(6)
    first.join(10)
    assert answers == [second] == [True]
    assert time.monotonic() - started < 6.5
    for service in ("opencdp", "customerio"):
        assert sorted(stored(sandbox, service)) == list(range(40)), service


def test_a_failed_close_stays_failed(sandbox: Any) -> None:
    sandbox.set_faults({"opencdp": {"down": True}})
    client = Client(**_options(sandbox))
    client.track("u1", "viewed", {"seq": 1})
    started = time.monotonic()
    assert client.close(0.5) is False
    assert client.close() is False
    assert time.monotonic() - started < 2.0


# --- A4: forks at the first connection --------------------------------------------------------

@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_forks_at_the_first_connection_all_deliver(sandbox: Any, tmp_path: Path,
                                                    loop: str) -> None:
    """A fresh client per round: the parent's first calls open its first connections while
    a child is forked. Every child delivers its events, and no child warns about the
    parent's session."""
    rounds = int(os.environ.get("OPENCDP_FORK_ROUNDS", "40"))
    script = _script(tmp_path, sandbox, f"""
        if {loop!r} == "asyncio":
            sys.modules["uvloop"] = None
        failed = 0
        for r in range({rounds}):
            client = Client(**options(shutdown_timeout=10.0))
            client.track("parent", "forked", {{"seq": f"p{{r}}"}})
            pid = os.fork()
            if pid == 0:
                for i in range(5):
                    client.track(f"child-{{r}}", "forked", {{"seq": f"{{r}}-{{i}}"}})
                os._exit(0 if client.flush(15) else 3)
            _, status = os.waitpid(pid, 0)
            failed += status != 0
            client.close(10)
        print(failed)
    """)
    done = _run(script, timeout=rounds * 20.0)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "0", done.stderr[-2000:]
    assert "Unclosed" not in done.stderr
    expected = {f"p{r}" for r in range(rounds)} | {
        f"{r}-{i}" for r in range(rounds) for i in range(5)}
    for service in ("opencdp", "customerio"):
        assert set(stored(sandbox, service)) == expected, service


def test_a_durable_close_says_what_it_left(sandbox: Any, tmp_path: Path, caplog: Any) -> None:
    import logging

    sandbox.set_faults({"opencdp": {"down": True}})
    client = Client(**_options(sandbox, queue=f"sqlite:///{tmp_path / 'q.db'}",
                               spill_path=str(tmp_path / "s.db")))
    for seq in range(5):
        client.track("u1", "viewed", {"seq": seq})
    assert wait_for(lambda: sorted(stored(sandbox, "customerio")) == list(range(5)))
    with caplog.at_level(logging.INFO, logger="opencdp"):
        assert client.close(0.5) is False
    lines = [r.getMessage() for r in caplog.records if "OCDP342" in r.getMessage()]
    assert lines == [f"[CDP] OCDP342 closed with 5 for opencdp pending in "
                     f"sqlite:///{tmp_path / 'q.db'}; delivered at the next start "
                     "(opencdp explain OCDP342)"]
