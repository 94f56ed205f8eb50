"""Queue files are created private and never opened and closed by hand once they exist:
closing a descriptor drops this process's POSIX locks on the file (SQLite's among them)."""

from __future__ import annotations

import fcntl
import stat
import subprocess
import sys
from pathlib import Path

from opencdp.outbox.files import create_private

_PROBE = """
import fcntl, sys
with open(sys.argv[1], "r+b") as fh:
    try:
        fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print("locked")
    else:
        print("free")
"""


def _lock_seen_from_another_process(path: Path) -> str:
    return subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True,
                          text=True, timeout=30, check=True).stdout.strip()


def test_a_new_file_is_private_in_a_private_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "queue.db"
    create_private(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_existing_file_keeps_this_process_s_locks(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    path.write_bytes(b"x")
    with open(path, "r+b") as held:
        fcntl.lockf(held, fcntl.LOCK_EX)
        assert _lock_seen_from_another_process(path) == "locked"
        create_private(str(path))
        assert _lock_seen_from_another_process(path) == "locked"
    assert _lock_seen_from_another_process(path) == "free"

