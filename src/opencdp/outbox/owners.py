"""Who holds a lease: enough about a process to tell, from another process on the same host,
whether it is still running (and is still the same process, not a reused pid)."""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["process_alive", "process_identity"]

_identity: dict[int, tuple[str, int, str, str]] = {}


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), "" where /proc is absent,
    None when the process does not exist or is a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else ""
    except OSError:
        return ""
    fields = raw.rpartition(")")[2].split()
    if len(fields) < 20:
        return ""
    if fields[0] in ("Z", "X", "x"):
        return None
    return fields[19]


def process_identity() -> tuple[str, int, str, str]:
    """``(host, pid, start time, random token)`` of this process; new after a fork."""
    pid = os.getpid()
    found = _identity.get(pid)
    if found is None:
        _identity.clear()
        found = (socket.gethostname(), pid, _start_time(pid) or "", secrets.token_hex(8))
        _identity[pid] = found
    return found


def process_alive(pid: int, started: str) -> bool:
    """Whether the process recorded as ``(pid, started)`` on this host still runs."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return True
    now = _start_time(pid)
    if now is None:
        return False
    return not (started and now and now != started)
