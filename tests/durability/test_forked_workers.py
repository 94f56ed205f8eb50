"""Forked workers deliver everything, on uvloop and on the standard loop (``--preload``)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from support.stored import stored

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize(("loop", "workers"), [("uvloop", 300), ("asyncio", 120)])
def test_no_forked_worker_loses_its_events(sandbox: Any, loop: str, workers: int) -> None:
    pytest.importorskip("uvloop") if loop == "uvloop" else None
    done = subprocess.run(
        [sys.executable, str(HERE / "forker.py"), sandbox.opencdp_url, sandbox.track_url,
         str(workers), loop],
        capture_output=True, text=True, timeout=220, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "failed []" in done.stdout, done.stdout + done.stderr[-3000:]
    expected = {f"{w}-{i}" for w in range(workers) for i in range(3)}
    cio = Counter({k: n for k, n in stored(sandbox, "customerio").items() if k in expected})
    gateway = Counter({k: n for k, n in stored(sandbox, "opencdp").items() if k in expected})
    lost = {service: sorted(expected - set(seen), key=lambda s: int(s.split("-")[0]))
            for service, seen in (("customerio", cio), ("opencdp", gateway))}
    workers_lost = {s.split("-")[0] for missing in lost.values() for s in missing}
    assert not workers_lost, f"{len(workers_lost)} of {workers} workers lost events: {lost}"
    assert set(cio) == expected and max(cio.values()) == 1
    assert set(gateway) == expected
