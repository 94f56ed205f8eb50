"""`make demo` runs end to end and reports everything delivered to both platforms."""

from __future__ import annotations

import subprocess
import sys


def test_demo_delivers_everything_and_reports_it() -> None:
    result = subprocess.run([sys.executable, "-m", "opencdp.demo"], capture_output=True,
                            text=True, timeout=180, check=False, env={"COLUMNS": "100",
                                                                   "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "all delivered: True" in out
    assert "Delivery report" in out and '"status": "ok"' in out
    events = next(line for line in out.splitlines() if "events stored" in line)
    assert events.count("2,000") == 2, events
