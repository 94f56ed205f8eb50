"""Queue files (the SQLite queue, the spill): created readable by their owner only, and never
opened and closed by hand once they exist.

Closing any descriptor of a file drops every POSIX lock this process holds on it, those of
another connection to it included (SQLite's locks are POSIX locks). Another process closing
its own connection would then take the live write-ahead log for unused and delete it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = ["create_private"]


def create_private(path: str) -> None:
    """Create ``path`` (mode 0600, its folder 0700) unless it exists; OSError when it cannot
    be created, PermissionError when it exists but cannot be read and written."""
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if not os.access(path, os.R_OK | os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path) from None
        return
    os.close(fd)
