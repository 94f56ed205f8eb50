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
    assert "Delivery report" in out
    events = next(line for line in out.splitlines() if "events stored" in line)
    assert events.count("2,000") == 2, events
    state = next(line for line in out.splitlines() if line.lstrip("│ ").startswith("health"))
    assert state.count("ok") == 2, state
    assert '"status"' not in out, "the raw health JSON is behind --health"
    assert "one request per message" in out
    assert len(out.splitlines()) < 40
