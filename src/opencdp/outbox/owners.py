"""Who holds a lease: enough about a process to tell, from another process on the same host,
whether it is still running (and is still the same process, not a reused pid).

A pid means something only inside its PID namespace, and only until the next boot: two
containers sharing a volume and a hostname each see the other's pid as some process of
their own, or as none. So an owner also records its PID namespace (the inode of
``/proc/self/ns/pid``) and the kernel's boot id, and ``provably_dead`` trusts a pid only
within the same namespace and boot. A different boot id on the same host proves the owner
dead (the reboot ended it); anything else it cannot prove is left to the lease's expiry.
"""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["process_alive", "process_identity", "process_namespace", "provably_dead"]

_identity: dict[int, tuple[str, int, str, str]] = {}
_namespace: dict[int, tuple[str, str]] = {}


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


def process_namespace() -> tuple[str, str]:
    """``(PID namespace, boot id)`` of this process; "" for what this system does not show."""
    pid = os.getpid()
    found = _namespace.get(pid)
    if found is None:
        try:
            namespace = str(os.stat("/proc/self/ns/pid").st_ino)
        except OSError:
            namespace = ""
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
                boot = handle.read().strip()
        except OSError:
            boot = ""
        _namespace.clear()
        found = _namespace[pid] = (namespace, boot)
    return found


def provably_dead(pid: int, started: str, namespace: str | None, boot: str | None) -> bool:
    """Whether an owner recorded on this host is certainly gone. ``namespace`` and ``boot``
    are None for a row written before they were recorded: taken as this namespace and boot,
    as that version did."""
    here, booted = process_namespace()
    if boot and booted and boot != booted:
        return True
    if boot and boot != booted:
        return False  # this system shows no boot id: nothing to compare
    if namespace is not None and namespace != here:
        return False
    return not process_alive(pid, started)


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
