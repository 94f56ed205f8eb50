"""Files as streams of records: NDJSON, CSV, and Customer.io's people export.

Each reader yields ``(Position, record)`` pairs, one file line (or CSV row) at a time, so
memory stays flat whatever the size of the file; a line that is no record yields an
``Unreadable`` in place of the record. A ``Position`` says where the record is (its first
line, for reports), where to resume after it (``cursor``: the file's index and the byte
offset past the record, plain JSON for the checkpoint), and what names it (``base`` and
``offset``, from which ``records.message_id`` makes its id: the file's identity and the
line, or a key column).

A file's identity is the SHA-256 of its first MiB (``SourceIdentity``): cheap on a 1 GB
file, unchanged when the file is moved or appended to (so a resumed or extended import
keeps its ids), and different for another export. A file whose first MiB changed is another
source, with other ids.

CSV cells have no types, so they are typed by rules (docs/import.md): an empty cell is left
out; ``true``/``false`` are booleans; an integer without leading zeros that fits in 64 bits
is an int (``00123`` stays text); a decimal number is a float; a cell that parses as a JSON
object or array is that value; anything else is text. Identifier columns (``user_id``,
``event``, ``event_id``, ...) are always text. ``timestamp`` takes Unix seconds or
ISO-8601 (a naive time is read as UTC, with the guards' warning).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Final, NamedTuple

import orjson

from .records import key_base, namespace

__all__ = [
    "FORMATS",
    "Position",
    "SourceIdentity",
    "Unreadable",
    "csv_value",
    "format_for",
    "identify_source",
    "read_files",
]

FORMATS: Final = ("ndjson", "csv", "customerio-people-csv")
HEAD_BYTES: Final = 1 << 20
_EXTENSIONS: Final = {".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson",
                      ".csv": "csv"}
_INT: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)")
_INT64: Final = 1 << 63
_TEXT_FIELDS: Final = frozenset({"user_id", "id", "anonymous_id", "event", "event_id",
                                 "device_id", "platform", "email"})
_MISSING: Final = object()


class Position(NamedTuple):
    """Where a record is: see the module docstring."""

    cursor: Any
    line: int
    base: int
    offset: int


class Unreadable(NamedTuple):
    """A line or row that is no record (OCDP351), or a record a reader knows cannot be
    imported (its ``code``), and why."""

    message: str
    code: str = "OCDP351"


@dataclass(frozen=True, slots=True)
class SourceIdentity:
    """A file as the checkpoint knows it. Its records' ids derive from ``head``, so a file
    that only grew since (records appended) is the same source: ``continues``."""

    path: str
    size: int
    head: str
    """SHA-256 of the first ``head_bytes`` bytes, hex."""
    head_bytes: int = HEAD_BYTES

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "head": self.head,
                "head_bytes": self.head_bytes}

    def continues(self, recorded: Any) -> SourceIdentity | None:
        """This file as the continuation of ``recorded`` (a checkpoint's entry): the same
        bytes where the checkpoint hashed them, and no shorter; None when it is not."""
        if not isinstance(recorded, dict) or not isinstance(recorded.get("head"), str):
            return None
        size = recorded.get("size")
        length = recorded.get("head_bytes", min(size, HEAD_BYTES) if isinstance(size, int)
                              else None)
        if not isinstance(size, int) or not isinstance(length, int) or self.size < size:
            return None
        if length != self.head_bytes or self.head != recorded["head"]:
            with open(self.path, "rb") as fh:
                if hashlib.sha256(fh.read(length)).hexdigest() != recorded["head"]:
                    return None
        return SourceIdentity(self.path, self.size, recorded["head"], length)


def identify_source(path: str) -> SourceIdentity:
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
        size = os.fstat(fh.fileno()).st_size
    return SourceIdentity(os.path.abspath(path), size, hashlib.sha256(head).hexdigest(),
                          len(head))


def format_for(path: str, given: str | None) -> str:
    """The format named, else the one the extension says; ValueError when neither does."""
    if given:
        return given
    found = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if found is None:
        raise ValueError(f"cannot tell the format of {path} from its extension; "
                         "pass --format ndjson, csv or customerio-people-csv")
    return found


def csv_value(text: str) -> object:
    """A CSV cell typed by the rules in the module docstring (``_MISSING`` when empty)."""
    if not text:
        return _MISSING
    low = text.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    first = text[0]
    if first == "-" or first.isdigit():
        if _INT.fullmatch(text):
            value = int(text)
            return value if -_INT64 <= value < _INT64 else text
        if _FLOAT.fullmatch(text):
            number = float(text)
            return number if math.isfinite(number) else text
    elif first in "{[":
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        return parsed if isinstance(parsed, (dict, list)) else text
    return text


def _csv_time(text: str) -> object:
    if _INT.fullmatch(text):
        return int(text)
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return text  # the guards refuse it with its own code (OCDP103)


def _lines(fh: BinaryIO, state: list[int]) -> Iterator[str]:
    """Decoded lines for ``csv.reader``, counting lines and bytes consumed in ``state``
    (``[line, offset]``): the reader pulls exactly the lines of one row per ``next``."""
    for raw in fh:
        state[0] += 1
        state[1] += len(raw)
        yield raw.decode("utf-8", "surrogateescape")


class _Columns:
    """What each CSV column becomes, decided once from the header."""

    def __init__(self, header: list[str], fmt: str, renames: Mapping[str, str]) -> None:
        names = [renames.get(h, h) for h in header]
        preset = fmt == "customerio-people-csv"
        self.events = not preset and "event" in names
        self.type = "track" if self.events else "identify"
        data = "properties" if self.events else "attributes"
        self.plan: list[tuple[int, str, str | None]] = []
        """(column index, where: top | data | time | drop, field name)"""
        top = {"user_id", "anonymous_id", "event_id", "timestamp"}
        if self.events:
            top.add("event")
        for index, name in enumerate(names):
            if name in ("", "-") or (preset and name == "cio_id"):
                self.plan.append((index, "drop", None))
            elif name == "id" and "user_id" not in names:
                self.plan.append((index, "top", "user_id"))
            elif name == "timestamp":
                self.plan.append((index, "time", name))
            elif name in top:
                self.plan.append((index, "top", name))
            else:
                field = name.removeprefix(f"{data}.")
                self.plan.append((index, "text" if field in _TEXT_FIELDS else "data", field))
        self.data = data
        self.preset = preset
        self.width = len(header)

    def record(self, row: list[str]) -> dict[str, Any] | Unreadable:
        if len(row) != self.width:
            return Unreadable(f"the row has {len(row)} cells; the header has {self.width}")
        record: dict[str, Any] = {"type": self.type}
        data: dict[str, Any] = {}
        for index, where, field in self.plan:
            text = row[index]
            if not text or where == "drop":
                continue
            assert field is not None
            if where == "top":
                record[field] = text
            elif where == "time":
                record[field] = _csv_time(text)
            elif where == "text":
                data[field] = text
            else:
                value = csv_value(text)
                if value is not _MISSING:
                    data[field] = value
        if data:
            record[self.data] = data
        if self.preset and "user_id" not in record and "email" in data:
            record["identifiers"] = {"email": data["email"]}
        return record


def _key_of(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        for nested in ("attributes", "properties"):
            inner = record.get(nested)
            if isinstance(inner, dict) and key in inner:
                value = inner[key]
                break
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        return None
    return str(value)


def read_files(paths: list[str], formats: list[str], *, after: Any = None,
               renames: Mapping[str, str] | None = None, key: str | None = None,
               identities: list[SourceIdentity] | None = None,
               ) -> Iterator[tuple[Position, dict[str, Any] | Unreadable]]:
    """Every record of ``paths`` in order, from just past the cursor ``after`` (a cursor of
    a Position this function yielded) when given.

    ``renames`` maps a column (a top-level NDJSON field) to the field it stands for (``-``
    drops it); ``key`` names the column whose value names each record (``--key``)."""
    renames = dict(renames or {})
    ids = identities or [identify_source(p) for p in paths]
    start_file, start_offset, start_line = (0, 0, 0) if after is None else (
        int(after[0]), int(after[1]), int(after[2]))
    for index in range(start_file, len(paths)):
        base = namespace(ids[index].head)
        offset, line = (start_offset, start_line) if index == start_file else (0, 0)
        if formats[index] == "ndjson":
            yield from _ndjson(paths[index], index, base, offset, line, renames, key)
        else:
            yield from _csv(paths[index], formats[index], index, base, offset, line,
                            renames, key)


def _ndjson(path: str, index: int, base: int, offset: int, line: int,
            renames: dict[str, str], key: str | None,
            ) -> Iterator[tuple[Position, dict[str, Any] | Unreadable]]:
    loads = orjson.loads
    with open(path, "rb") as fh:
        fh.seek(offset)
        for raw in fh:
            line += 1
            offset += len(raw)
            if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # noqa: PLW2901  (a byte-order mark is no part of the record)
            if len(raw) < 3 and not raw.strip():
                continue
            try:
                record = loads(raw)
            except orjson.JSONDecodeError as exc:
                yield (Position((index, offset, line), line, base, line),
                       Unreadable(f"the line is not JSON ({str(exc).partition(':')[0]})"))
                continue
            if type(record) is not dict:
                yield (Position((index, offset, line), line, base, line),
                       Unreadable(f"the line is a JSON {type(record).__name__}, not an "
                                  "object"))
                continue
            if renames:
                record = {renames.get(k, k): v for k, v in record.items()
                          if renames.get(k, k) not in ("", "-")}
            if key is None:
                yield Position((index, offset, line), line, base, line), record
                continue
            name = _key_of(record, key)
            if name is None:
                yield (Position((index, offset, line), line, base, line),
                       Unreadable(f"the key field {key!r} is missing or empty"))
                continue
            yield (Position((index, offset, line), line,
                            key_base(str(record.get("type")), name), 0), record)


def _csv(path: str, fmt: str, index: int, base: int, offset: int, line: int,
         renames: dict[str, str], key: str | None,
         ) -> Iterator[tuple[Position, dict[str, Any] | Unreadable]]:
    with open(path, "rb") as fh:
        state = [0, 0]
        reader = csv.reader(_lines(fh, state), strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Position((index, state[1], state[0]), 1, base, 1), Unreadable(
                f"the header is not CSV ({exc})")
            return
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        columns = _Columns(header, fmt, renames)
        key_index = None
        if key is not None:
            mapped = [renames.get(h, h) for h in header]
            if key not in header and key not in mapped:
                yield Position((index, state[1], state[0]), 1, base, 1), Unreadable(
                    f"there is no key column {key!r} in the header")
                return
            key_index = header.index(key) if key in header else mapped.index(key)
        if offset > state[1]:
            fh.seek(offset)
            state[0], state[1] = line, offset
            reader = csv.reader(_lines(fh, state), strict=True)
        while True:
            first = state[0] + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield (Position((index, state[1], state[0]), first, base, first),
                       Unreadable(f"the row is not CSV ({exc})"))
                continue
            if not row:
                continue
            where = (index, state[1], state[0])
            record = columns.record(row)
            if key_index is None or isinstance(record, Unreadable):
                yield Position(where, first, base, first), record
                continue
            name = row[key_index] if len(row) > key_index else ""
            if not name:
                yield (Position(where, first, base, first),
                       Unreadable(f"the key column {key!r} is empty"))
                continue
            yield Position(where, first, key_base(record["type"], name), 0), record
