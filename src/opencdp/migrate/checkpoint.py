"""The import's checkpoint: which sources, and how far their records are durably queued.

One small JSON file, replaced whole at each save: written beside itself, fsynced, renamed
over the old one, and the directory fsynced, so a kill -9 or a power cut at any instant
leaves either the old checkpoint or the new one, never a torn one. It holds:

- ``sources``: what the import reads (``sources.SourceIdentity`` for files; any JSON for
  another reader, such as the Customer.io App API's), and the options that decide what a
  record becomes and which id it gets (``settings``: format, ``--to``, ``--map``, ``--key``).
  A resumed run must match both, or its skip would be wrong (OCDP353).
- ``cursor``: the reader's opaque JSON position just past the last record whose message is
  durable in the queue (None before the first). The importer only ever saves a cursor after
  the queue confirmed every record before it.
- ``counts``: read, queued and refused (by code) up to the cursor, so a resumed run reports
  what it skipped, and the final table adds up over runs.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["Checkpoint", "CheckpointError", "load", "save"]

VERSION = 1


class CheckpointError(Exception):
    """The checkpoint cannot be read, or belongs to another import (OCDP353), or cannot be
    written (OCDP357)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code


@dataclass(slots=True)
class Checkpoint:
    sources: list[Any]
    settings: dict[str, Any]
    cursor: Any = None
    read: int = 0
    queued: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    complete: bool = False
    started_at: float = field(default_factory=time.time)
    updated_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "sources": self.sources, "settings": self.settings,
                "cursor": self.cursor, "read": self.read, "queued": self.queued,
                "refused": self.refused, "complete": self.complete,
                "started_at": self.started_at, "updated_at": self.updated_at}

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError("not an opencdp import checkpoint (version 1)")
        return cls(sources=list(data["sources"]), settings=dict(data["settings"]),
                   cursor=data.get("cursor"), read=int(data["read"]),
                   queued=int(data["queued"]),
                   refused={str(k): int(v) for k, v in dict(data["refused"]).items()},
                   complete=bool(data["complete"]), started_at=float(data["started_at"]),
                   updated_at=float(data.get("updated_at") or 0.0))


def load(path: str) -> Checkpoint | None:
    """The checkpoint at ``path``, None when there is none; CheckpointError when the file
    is not one."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError("OCDP353", f"cannot read the checkpoint {path}: {exc}") from None
    try:
        return Checkpoint.from_json(orjson.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            "OCDP353", f"{path} is not an import checkpoint ({exc}); move it away or name "
                       "another file with --checkpoint") from None


def save(path: str, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint at ``path`` atomically and durably (see the module
    docstring); CheckpointError (OCDP357) when it cannot be written."""
    checkpoint.updated_at = time.time()
    data = orjson.dumps(checkpoint.to_json(), option=orjson.OPT_INDENT_2)
    directory = os.path.dirname(os.path.abspath(path))
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CheckpointError("OCDP357", f"cannot write the checkpoint {path}: {exc}") from None
