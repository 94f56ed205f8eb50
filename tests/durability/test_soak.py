"""`make soak`'s harness at test size: the same processes for 15 seconds instead of 10 minutes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_short_soak_loses_nothing_and_repeats_nothing(redis_url: str) -> None:
    """Relay --workers 2 --ingest-only and two workers on Redis, 80 % of measured capacity:
    every call answered 2xx stored at both platforms, none sent twice to Customer.io."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--minutes", "0.25", "--probe", "2",
         "--connections", "16"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
        timeout=110, check=False)
    out = done.stdout
    assert "lost: 0 at OpenCDP, 0 at Customer.io; twice at Customer.io: 0" in out, (
        out[-2000:], done.stderr[-2000:])
    assert done.returncode == 0
    assert "answered 2xx, 0 not, 0 connection errors" in out
