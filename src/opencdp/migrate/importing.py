"""``opencdp import``: backfill history from files, exactly once, through an ordinary client.

The importer is a producer like any caller: each record becomes the call it stands for
(``records.to_call``: the same ``Calls`` layer and guards as ``Client.identify``/``track``),
and its message is queued by the client's engine into its durable queue, from which the
engine's lanes deliver it. Nothing here talks to a platform.

The interface a reader implements is one iterable of ``(Position, record)`` pairs
(``sources.Position``; a record is a dict in the NDJSON shape of ``records``, or an
``Unreadable`` saying why a line is none). ``Position.cursor`` is opaque JSON that the same
reader must accept back to resume just past that record; ``base``/``offset`` name the
record for its deterministic id. The files reader is ``sources.read_files``; the
Customer.io App API reader (``appapi.AppAPIReader``, ``--from-customerio``) feeds the same
``Importer.run`` through ``workspace_items``, which names each record by what it is in the
workspace (``appapi.record_key``: ``person:<cio_id>``, ``event:<activity id>``) rather than
by where paging put it, so a re-import after a lost checkpoint sends the same ids even when
people were added to the workspace in between.

Exactly once, across re-runs, Ctrl-C and kill -9:

- every record has a deterministic message id (``records.message_id``), so a record queued
  twice is one event at Customer.io (its ``id``) and one ``Idempotency-Key`` at OpenCDP;
- the checkpoint (``checkpoint.py``) only ever records a cursor after the queue confirmed
  that every record before it is durable: the client runs with ``durability="batched"``
  and the importer commits the buffered rows (``outbox.flush()``) before each save, which
  is what makes 50,000 records/s possible where a commit per record makes 11,000;
- a resumed run starts past the cursor and reports the records before it as skipped; the
  records between the cursor and a crash are queued again, under the same ids.

A memory queue is refused for a real import (OCDP350): nothing in it survives the process,
so no checkpoint could be true.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

import click
import orjson

from ..calls import Calls
from ..cli import progress
from ..client import Client
from ..config import ClientConfig, CustomerIO
from ..errors import ConfigurationError, OpenCDPError, ValidationError
from ..message import CUSTOMERIO, OPENCDP
from .appapi import AppAPIReader, record_key
from .checkpoint import Checkpoint, CheckpointError, load, save
from .records import RecordError, key_base, to_call
from .sources import (
    FORMATS,
    Position,
    SourceIdentity,
    Unreadable,
    format_for,
    identify_source,
    read_files,
)

__all__ = ["DESTINATIONS", "Importer", "Refusal", "Report", "command", "import_config",
           "workspace_items", "workspace_reader"]

DESTINATIONS: Final = {"opencdp": OPENCDP, "customerio": CUSTOMERIO,
                       "both": OPENCDP | CUSTOMERIO}
_CHECKPOINT_EVERY: Final = 2000
"""Records between two checkpoints at most: the records a crash makes the next run queue
again (under the same ids), against one fsync per checkpoint."""
_CHECKPOINT_SECONDS: Final = 0.5
_PROGRESS_SECONDS: Final = 1.0
_QUIET: Final = frozenset({"OCDP115", "OCDP330", "OCDP331"})
"""Notices that say nothing about an import: events of people identified elsewhere (the
platforms know them), Customer.io off for ``--to opencdp``, ``send=False`` for a dry run."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A record not queued: where it is, the code, and the guard's (or reader's) words."""

    source: str
    line: int
    code: str
    message: str


@dataclass(slots=True)
class Report:
    """What an import did; the counts of earlier runs (from the checkpoint) are separate."""

    read: int = 0
    queued: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    """Records queued by earlier runs (the checkpoint's), not read again."""
    skipped_refused: int = 0
    """Records refused by earlier runs, before the checkpoint."""
    delivered: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    complete: bool = False
    dry_run: bool = False
    seconds: float = 0.0
    error: str | None = None
    workspace: dict[str, Any] | None = None
    """``AppAPIReader.report()`` of a ``--from-customerio`` run: this run's reads and 429s,
    and the notes (the 30-day activity horizon) a user must see beside the counts."""

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def to_json(self) -> dict[str, Any]:
        return {"read": self.read, "queued": self.queued, "refused": dict(self.refused),
                "refused_total": self.refused_total, "skipped": self.skipped,
                "skipped_refused": self.skipped_refused, "delivered": self.delivered,
                "dead_lettered": self.dead_lettered, "pending": self.pending,
                "interrupted": self.interrupted, "complete": self.complete,
                "dry_run": self.dry_run, "seconds": round(self.seconds, 3),
                "error": self.error,
                **({"workspace": self.workspace} if self.workspace is not None else {})}


class Importer:
    """Drives records into ``client``'s queue; see the module docstring.

    ``to`` is the destination bits a record's message keeps. ``checkpoint_path`` with
    ``checkpoint`` make the run resumable (None for a dry run). ``rate`` caps records per
    second. ``on_refused`` sees each refusal as it happens, ``on_progress`` the report about
    once a second. A checkpoint is saved every ``checkpoint_every`` records or half a
    second, whichever comes first. ``stop()`` may be called from a signal handler: the run
    ends at the next record with a valid checkpoint.
    """

    def __init__(self, client: Client, *, to: int = OPENCDP,
                 checkpoint_path: str | None = None, checkpoint: Checkpoint | None = None,
                 dry_run: bool = False, rate: float | None = None,
                 source_names: list[str] | None = None,
                 on_refused: Callable[[Refusal], None] | None = None,
                 on_progress: Callable[[Report], None] | None = None,
                 checkpoint_every: int = _CHECKPOINT_EVERY) -> None:
        if not dry_run and not client.engine.outbox.durable:
            raise ConfigurationError(
                "OCDP350 an import needs a durable queue (--queue sqlite:///import.db or "
                "redis://host:port/db, or OPENCDP_QUEUE_URL): a memory queue keeps nothing "
                "across a crash, so no checkpoint could say what was sent. --dry-run needs "
                "none.", option="queue", code="OCDP350")
        self.client = client
        self.to = to
        self.path = checkpoint_path
        self.checkpoint = checkpoint
        self.dry_run = dry_run
        self.rate = rate
        self.names = source_names or []
        self.on_refused = on_refused
        self.on_progress = on_progress
        self.every = checkpoint_every
        self._stop = False
        self.position: Position | None = None
        """The last record read, for a progress bar."""
        self.report = Report(dry_run=dry_run)
        self._base: tuple[int, int, dict[str, int]] = (0, 0, {})
        if checkpoint is not None:
            self.report.skipped = checkpoint.queued
            self.report.skipped_refused = sum(checkpoint.refused.values())
            self._base = (checkpoint.read, checkpoint.queued, dict(checkpoint.refused))

    def stop(self) -> None:
        self._stop = True

    @property
    def stopping(self) -> bool:
        return self._stop

    # the run --------------------------------------------------------------------------------
    def run(self, items: Iterable[tuple[Position, dict[str, Any] | Unreadable]]) -> Report:
        """Read, check and queue every item (durably, checkpointed); returns this run's
        report. Raises OpenCDPError when the queue fails and CheckpointError when the
        checkpoint cannot be written: the saved checkpoint then still holds."""
        report = self.report
        started = time.monotonic()
        engine = self.client.engine
        calls = Calls(engine)
        enqueue = engine.enqueue
        hook = engine.before_send is not None
        to = self.to
        dry = self.dry_run
        rate = self.rate
        every = self.every
        read = queued = since_save = 0
        last: Position | None = None
        next_save = started + _CHECKPOINT_SECONDS
        next_progress = started + _PROGRESS_SECONDS
        try:
            for position, record in items:
                read += 1
                if type(record) is Unreadable:
                    self._refuse(position, record.code, record.message)
                else:
                    try:
                        message, key = to_call(calls, record,  # type: ignore[arg-type]
                                               position.base, position.offset, to)
                    except ValidationError as exc:
                        self._refuse(position, exc.code or "OCDP351", str(exc))
                    except RecordError as exc:
                        self._refuse(position, exc.code, str(exc))
                    else:
                        if hook:
                            message = calls.admit(message)
                        if not dry:
                            enqueue(message, key)
                        queued += 1
                last = position
                since_save += 1
                if rate is not None:
                    self._pace(started, read, rate)
                if since_save >= every or self._stop or not read & 255:
                    now = time.monotonic()
                    if since_save >= every or now >= next_save or self._stop:
                        report.read, report.queued = read, queued
                        self._save(last, complete=False)
                        since_save = 0
                        next_save = now + _CHECKPOINT_SECONDS
                    if now >= next_progress and self.on_progress is not None:
                        report.read, report.queued = read, queued
                        self.position = last
                        report.seconds = now - started
                        self.on_progress(report)
                        next_progress = now + _PROGRESS_SECONDS
                    if self._stop:
                        break
            else:
                report.read, report.queued = read, queued
                self._save(last, complete=True)
                report.complete = True
        finally:
            report.read, report.queued = read, queued
            report.interrupted = self._stop and not report.complete
            report.seconds = time.monotonic() - started
        return report

    def _refuse(self, position: Position, code: str, text: str) -> None:
        counts = self.report.refused
        counts[code] = counts.get(code, 0) + 1
        if self.on_refused is not None:
            message = text[len(code) + 1:] if text.startswith(code + " ") else text
            cursor = position.cursor
            source = self.names[cursor[0]] if isinstance(cursor, (list, tuple)) and cursor \
                and isinstance(cursor[0], int) and cursor[0] < len(self.names) else ""
            if isinstance(cursor, dict) and isinstance(cursor.get("key"), str):
                source = cursor["key"]  # the workspace's record: person:<cio_id>, ...
            self.on_refused(Refusal(source, position.line, code, message))

    def _pace(self, started: float, read: int, rate: float) -> None:
        due = started + read / rate
        while not self._stop:
            wait = due - time.monotonic()
            if wait <= 0:
                return
            time.sleep(min(wait, 0.1))

    def _save(self, last: Position | None, *, complete: bool) -> None:
        """Make every queued record durable, then record how far that is."""
        if self.dry_run or self.checkpoint is None or self.path is None:
            return
        flush = getattr(self.client.engine.outbox, "flush", None)
        if flush is not None:
            flush()
        cp = self.checkpoint
        report = self.report
        if last is not None:
            cp.cursor = list(last.cursor) if isinstance(last.cursor, tuple) else last.cursor
        base_read, base_queued, base = self._base
        cp.read = base_read + report.read
        cp.queued = base_queued + report.queued
        cp.refused = {code: base.get(code, 0) + report.refused.get(code, 0)
                      for code in sorted(set(base) | set(report.refused))}
        cp.complete = complete
        save(self.path, cp)

    # after the run --------------------------------------------------------------------------
    def deliver(self, timeout: float | None, on_wait: Callable[[int], None] | None = None
                ) -> Report:
        """Wait until the queue holds nothing of this process's (or ``timeout`` seconds, or
        ``stop()``), then fill the report's per-destination figures."""
        report = self.report
        if not self.dry_run:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._stop:
                step = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                if step <= 0 or self.client.flush(step):
                    break
                if on_wait is not None:
                    on_wait(sum(self._pending().values()))
        self._figures()
        return report

    def _pending(self) -> dict[str, int]:
        try:
            return {name: d.pending + d.in_flight
                    for name, d in self.client.health().destinations.items()
                    if d.state != "disabled"}
        except OpenCDPError:
            return {}

    def _figures(self) -> None:
        report = self.report
        if self.dry_run:
            return
        for name, lane in self.client.stats().lanes.items():
            if DESTINATIONS.get(name, 0) & self.to:
                report.delivered[name] = lane.counters.delivered
                report.dead_lettered[name] = lane.counters.dead
        report.pending = {n: c for n, c in self._pending().items()
                          if DESTINATIONS.get(n, 0) & self.to}


# -- building the client ----------------------------------------------------------------------

def import_config(queue: str | None, to: str, dry_run: bool,
                  environ: dict[str, str] | None = None) -> ClientConfig:
    """The client an import drives: the environment's, on ``queue``, with ``to``'s
    destinations, batched writes made durable at each checkpoint, and raising (instead of
    only counting) a write the queue refused, so no refused write is ever checkpointed."""
    env = dict(os.environ if environ is None else environ)
    overrides: dict[str, Any] = {"register_atexit": False, "durability": "batched",
                                 "fail_on_exception": True}
    if queue:
        overrides["queue"] = queue
    if dry_run:
        overrides.update(send=False, start_worker=False, queue="memory")
        env.setdefault("CDP_API_KEY", "dry-run-key")
    config = ClientConfig.from_env(env, **overrides)
    if to != "opencdp" and config.customer_io is None:
        if not dry_run:
            raise ConfigurationError(
                f"--to {to} needs Customer.io: set CUSTOMERIO_SITE_ID and "
                "CUSTOMERIO_TRACK_API_KEY", option="customer_io")
        # a dry run sends nothing: placeholders stand in for absent credentials
        config = config.with_options(
            customer_io=CustomerIO("dry-run", "dry-run-key"))  # noqa: OCDP201
    dual = to != "opencdp"
    changes: dict[str, Any] = {"silence": config.silence | _QUIET}
    if config.customer_io is not None:
        changes["send_to_customer_io"] = dual
    return config.with_options(**changes)


# -- a Customer.io workspace as a source -------------------------------------------------------

def workspace_items(reader: AppAPIReader, after: Any = None, first_line: int = 1
                    ) -> Iterator[tuple[Position, dict[str, Any] | Unreadable]]:
    """The reader's ``(cursor, record)`` pairs as the importer's ``(Position, record)``.

    The id comes from ``record_key`` (what the record is in the workspace) and the record's
    type, never from where paging put it: the search answers from a live index, so a person
    created between two runs shifts everyone after them, and a re-import after a lost
    checkpoint must still send each record under the id the first run gave it. ``line`` is
    the record's ordinal over all runs (``first_line`` is the checkpoint's ``read`` + 1), so
    a refusal can be found again in the same read.

    A person without an id in Customer.io comes named by their email (or ``cio_id``); their
    records are refused here (OCDP356), whatever ``--to`` says: OpenCDP's gateway refuses an
    email as a person's id, and Customer.io, the source, has them already.
    """
    line = first_line
    for cursor, record in reader.read(start_from=after):
        key = record_key(cursor)
        position = Position(cursor, line, key_base(str(record.get("type")), key), 0)
        line += 1
        if "user_id" not in record:
            who = record.get("identifiers")
            named = " or ".join(who) if isinstance(who, dict) and who else "cio_id"
            yield position, Unreadable(
                f"OCDP356 this person has no id in Customer.io (known by {named} only); "
                "OpenCDP names people by an id and refuses an email as one: give them an id "
                "in Customer.io (identify them with an id attribute) and import again",
                "OCDP356")
            continue
        yield position, record


def _app_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for the client's own options: without Customer.io's Track credentials the App
    API variables are the reader's alone, and ``from_env`` would refuse an ``app_url``
    without a site."""
    out = dict(env)
    if not (out.get("CUSTOMERIO_SITE_ID") or "").strip():
        out.pop("CUSTOMERIO_APP_URL", None)
    return out


def workspace_reader(config: ClientConfig, env: Mapping[str, str], **options: Any
                     ) -> AppAPIReader:
    """The App API reader for ``--from-customerio``: the key, region and App API URL of the
    client's ``CustomerIO`` options when they have a key (``CUSTOMERIO_APP_API_KEY`` with the
    Track credentials), else of ``CUSTOMERIO_APP_API_KEY``, ``CUSTOMERIO_REGION`` and
    ``CUSTOMERIO_APP_URL`` alone: ``--to opencdp`` needs no Track key. Never a command-line
    option, so the key is in no shell history or process list."""
    ca_file = config.tls_ca_file
    cio = config.customer_io
    if cio is not None and cio.app_api_key:
        return AppAPIReader.from_customerio(cio, ca_file=ca_file, **options)

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value and value.strip() else None

    key = get("CUSTOMERIO_APP_API_KEY")
    if key is None:
        raise ConfigurationError(
            "OCDP355 --from-customerio reads the workspace with its App API key: set "
            "CUSTOMERIO_APP_API_KEY (Settings > API credentials > App API keys; not the "
            "Track API key), and CUSTOMERIO_REGION=eu for an EU workspace",
            option="app_api_key", code="OCDP355")
    try:
        return AppAPIReader(key, region=(get("CUSTOMERIO_REGION") or "us").lower(),
                            app_url=get("CUSTOMERIO_APP_URL"), ca_file=ca_file, **options)
    except ConfigurationError as exc:
        raise ConfigurationError(f"OCDP355 --from-customerio: {exc}", option=exc.option,
                                 code="OCDP355") from None


# -- the command --------------------------------------------------------------------------------

def _renames(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column:
            raise click.BadParameter(f"{pair!r} is not COLUMN=FIELD", param_hint="--map")
        out[column] = target.strip() or "-"
    return out


def _default_checkpoint(paths: list[str], identities: list[SourceIdentity],
                        settings: dict[str, Any]) -> str:
    digest = hashlib.sha256(orjson.dumps([[i.head for i in identities], settings],
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
    first = os.path.abspath(paths[0])
    return os.path.join(os.path.dirname(first),
                        f".{os.path.basename(first)}.opencdp-import-{digest}.json")


def _grown(paths: list[str], identities: list[SourceIdentity], settings: dict[str, Any],
           default: str) -> tuple[str, list[SourceIdentity]]:
    """The checkpoint of an earlier import of these files, when only the last one grew since
    (records appended), and the files as that import knew them, so the records it read keep
    their ids and a re-run imports only what was appended. Else ``default`` and the files as
    they are now: a changed file is another source."""
    first = os.path.abspath(paths[0])
    pattern = os.path.join(glob.escape(os.path.dirname(first)),
                           f".{glob.escape(os.path.basename(first))}.opencdp-import-*.json")
    for path in sorted(glob.glob(pattern)):
        try:
            found = load(path)
        except CheckpointError:
            continue
        if found is None or found.settings != settings or \
                len(found.sources) != len(identities):
            continue
        same = [i.continues(s) for i, s in zip(identities, found.sources, strict=True)]
        unchanged = all(i.size == s["size"]
                        for i, s in zip(identities[:-1], found.sources[:-1], strict=True))
        if unchanged and None not in same:
            return path, [c for c in same if c is not None]
    return default, identities


def _matching(found: Checkpoint, identities: list[SourceIdentity],
              settings: dict[str, Any], path: str) -> None:
    """Raise OCDP353 unless ``found`` was written by this same import."""
    if found.settings != settings:
        raise CheckpointError("OCDP353", f"the checkpoint {path} was written with other "
                              f"options ({found.settings}); resume with those, or name "
                              "another --checkpoint to import again")
    heads = [s.get("head") if isinstance(s, dict) else None for s in found.sources]
    if heads != [i.head for i in identities]:
        raise CheckpointError("OCDP353", f"the checkpoint {path} belongs to other files (or "
                              "their first MiB changed): a changed file is another source, "
                              "with other ids; name another --checkpoint to import it")
    cursor = found.cursor
    if isinstance(cursor, list) and len(cursor) == 3 and cursor[0] < len(identities) \
            and identities[cursor[0]].size < cursor[1]:
        raise CheckpointError("OCDP353", f"{identities[cursor[0]].path} is shorter than the "
                              "checkpoint's position: the file was replaced")


class _Output:
    """JSON lines when stdout is not a terminal (or ``--json``), readable lines otherwise.
    Every line is flushed at once, so a killed import has said everything it did."""

    def __init__(self, as_json: bool, stream: TextIO) -> None:
        self.json = as_json
        self.stream = stream

    def line(self, event: str, **fields: Any) -> None:
        if self.json:
            text = orjson.dumps({"event": event, **fields}).decode()
        elif event == "refused":
            where = f"{fields['source']}:{fields['line']}" if fields["source"] else \
                f"line {fields['line']}"
            text = f"{where}  {fields['code']}  {fields['message']}"
        else:
            text = " ".join([event] + [f"{k}={v}" for k, v in fields.items()])
        self.stream.write(text + "\n")
        self.stream.flush()

    def refused(self, refusal: Refusal) -> None:
        self.line("refused", source=refusal.source, line=refusal.line, code=refusal.code,
                  message=refusal.message)

    def table(self, report: Report, checkpoint: str | None) -> None:
        if self.json:
            self.line("summary", checkpoint=checkpoint, **report.to_json())
            return
        rows = [("read", report.read), ("queued", report.queued),
                ("refused", report.refused_total)]
        rows += [(f"  {code}", n) for code, n in sorted(report.refused.items())]
        rows.append(("skipped (imported by earlier runs)", report.skipped))
        if report.skipped_refused:
            rows.append(("skipped (refused by earlier runs)", report.skipped_refused))
        for name in sorted(set(report.delivered) | set(report.pending)):
            rows.append((f"delivered to {name}", report.delivered.get(name, 0)))
            if report.dead_lettered.get(name):
                rows.append((f"dead-lettered at {name}", report.dead_lettered[name]))
            if report.pending.get(name):
                rows.append((f"pending for {name}", report.pending[name]))
        workspace = report.workspace
        if workspace is not None:
            counts = workspace["counts"]
            rows += [("read from Customer.io: people", counts["people"]),
                     ("  devices", counts["devices"]), ("  events", counts["events"]),
                     ("  App API requests", counts["requests"]),
                     ("  answered 429 (waited, retried)", counts["429s"])]
        width = max(len(label) for label, _ in rows)
        state = "dry run: nothing sent" if report.dry_run else (
            "complete" if report.complete else "interrupted" if report.interrupted else
            "stopped")
        self.stream.write(f"import {state} in {report.seconds:.1f} s\n")
        for label, value in rows:
            self.stream.write(f"  {label.ljust(width)}  {value:>12,}\n")
        for note in (workspace or {}).get("notes") or ():
            self.stream.write(f"  note: {note}\n")
        if checkpoint and not report.complete:
            self.stream.write(f"  resume with the same command (checkpoint {checkpoint})\n")
        self.stream.flush()


@dataclass(slots=True)
class _Source:
    """What the command reads, as the shared run needs it: the checkpoint's identity of the
    source and the options that decide ids, the records after a cursor, and progress."""

    sources: list[Any]
    settings: dict[str, Any]
    default_checkpoint: str
    names: list[str]
    items: Callable[[Any, int], Iterable[tuple[Position, dict[str, Any] | Unreadable]]]
    matching: Callable[[Checkpoint, str], None]
    total: int | None = None
    done: Callable[[Importer], int] = lambda importer: importer.report.read
    reader: AppAPIReader | None = None


def _files(paths: list[str], fmt: str | None, to: str, maps: tuple[str, ...],
           key: str | None) -> _Source:
    try:
        formats = [format_for(p, fmt) for p in paths]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    renames = _renames(maps)
    identities = [identify_source(p) for p in paths]
    settings = {"formats": formats, "to": to, "map": renames, "key": key}
    checkpoint_path = _default_checkpoint(paths, identities, settings)
    if not os.path.exists(checkpoint_path):
        checkpoint_path, identities = _grown(paths, identities, settings, checkpoint_path)
    return _Source(
        [i.to_json() for i in identities], settings, checkpoint_path, paths,
        lambda after, line: read_files(paths, formats, after=after, renames=renames,
                                       key=key, identities=identities),
        lambda found, path: _matching(found, identities, settings, path),
        total=sum(i.size for i in identities),
        done=lambda importer: _done(importer, identities))


def _workspace(reader: AppAPIReader, to: str) -> _Source:
    """``--from-customerio``: the workspace is named by its App API URL (never its key), the
    ids by the selection; a checkpoint of another selection would skip or repeat people."""
    sources = [{"customerio": reader.url}]
    settings = {"from": "customerio", "to": to, "selection": reader.selection,
                "activities": reader.activities}
    digest = hashlib.sha256(orjson.dumps([sources, settings], option=orjson.OPT_SORT_KEYS)
                            ).hexdigest()[:12]
    host = (urlsplit(reader.url).hostname or "workspace").replace(":", "_")

    def matching(found: Checkpoint, path: str) -> None:
        if found.sources != sources:
            raise CheckpointError("OCDP353", f"the checkpoint {path} belongs to another "
                                  f"import ({found.sources}); name another --checkpoint to "
                                  "import this workspace")
        if found.settings != settings:
            raise CheckpointError("OCDP353", f"the checkpoint {path} was written with another "
                                  f"selection or --to ({found.settings}); resume with those "
                                  "options, or name another --checkpoint to import again")

    return _Source(sources, settings,
                   os.path.abspath(f".customerio-{host}.opencdp-import-{digest}.json"), [],
                   lambda after, line: workspace_items(reader, after, line), matching,
                   reader=reader)


@click.command(name="import")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--from-customerio", "from_customerio", is_flag=True,
              help="Read a Customer.io workspace through its App API (CUSTOMERIO_APP_API_KEY) "
                   "instead of files: people, their attributes and devices.")
@click.option("--segment", type=click.IntRange(min=0), default=None, metavar="ID",
              help="With --from-customerio: only this segment's members.")
@click.option("--filter", "audience", default=None, metavar="JSON",
              help="With --from-customerio: only the people this App API audience filter "
                   "selects.")
@click.option("--activities", is_flag=True,
              help="With --from-customerio: also their events from the activity log "
                   "(Customer.io guarantees the last 30 days only).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Input format (default: from the extension: .ndjson/.jsonl/.json, .csv).")
@click.option("--to", "to", type=click.Choice(sorted(DESTINATIONS)), default="opencdp",
              show_default=True, help="Where the records go (Customer.io has its own history).")
@click.option("--queue", "queue", default=None, envvar="OPENCDP_QUEUE_URL", metavar="URL",
              help="The durable queue: sqlite:///path.db or redis://host:port/db "
                   "(default: $OPENCDP_QUEUE_URL).")
@click.option("--checkpoint", "checkpoint_path", default=None, metavar="FILE",
              help="Where to keep the position (default: beside the first file, or in the "
                   "current directory for --from-customerio).")
@click.option("--dry-run", is_flag=True, help="Read and check everything; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines (the default off a terminal).")
@click.option("--rate", type=click.FloatRange(min=0.1), default=None, metavar="N",
              help="At most N records per second.")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
              help="Read COLUMN as FIELD (user_id, event, timestamp, attributes.NAME, ...; "
                   "'-' drops it). Repeatable.")
@click.option("--key", "key", default=None, metavar="COLUMN",
              help="Name each record by this column's value instead of its line.")
def command(paths: tuple[str, ...], from_customerio: bool, segment: int | None,
            audience: str | None, activities: bool, fmt: str | None, to: str,
            queue: str | None, checkpoint_path: str | None, dry_run: bool, as_json: bool,
            rate: float | None, maps: tuple[str, ...], key: str | None) -> None:
    """Backfill history from files or a Customer.io workspace.

    People, devices and events: from NDJSON or CSV files, or with --from-customerio from a
    workspace through its App API.

    Each record goes through the same checks as a call and is queued durably; a record
    refused is listed with its line and code, and the rest go on. Ctrl-C stops with a valid
    checkpoint; the same command resumes. See docs/import.md and
    docs/import-from-customerio.md.
    """
    out = _Output(as_json or not sys.stdout.isatty(), sys.stdout)
    if from_customerio:
        if paths:
            raise click.UsageError("give PATH... or --from-customerio, not both")
        given = [name for name, value in (("--format", fmt), ("--map", maps), ("--key", key))
                 if value]
        if given:
            raise click.UsageError(f"{', '.join(given)} read files; --from-customerio reads "
                                   "the workspace's own fields")
        env = dict(os.environ)
        client_env = _app_env(env)
    else:
        if not paths:
            raise click.UsageError("give the files to import (PATH...), or --from-customerio")
        given = [name for name, value in (("--segment", segment is not None),
                                          ("--filter", audience), ("--activities", activities))
                 if value]
        if given:
            raise click.UsageError(f"{', '.join(given)} select(s) what --from-customerio "
                                   "reads; files are read whole")
        env = client_env = dict(os.environ)
    try:
        config = import_config(queue, to, dry_run, client_env)
        if from_customerio:
            source = _workspace(workspace_reader(config, env, segment=segment,
                                                 filter=audience, activities=activities), to)
        else:
            source = _files(list(paths), fmt, to, maps, key)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    if not dry_run and config.queue.strip().split("?")[0].lower() == "memory":
        raise click.UsageError(
            "OCDP350 an import needs a durable queue: pass --queue sqlite:///import.db (or "
            "redis://host:port/db), or set OPENCDP_QUEUE_URL; a memory queue keeps nothing "
            "across a crash, so no checkpoint could say what was sent. --dry-run needs none.")
    cp_path: str | None = None
    checkpoint: Checkpoint | None = None
    if not dry_run:
        cp_path = checkpoint_path or source.default_checkpoint
        try:
            checkpoint = load(cp_path)
            if checkpoint is not None:
                source.matching(checkpoint, cp_path)
            else:
                checkpoint = Checkpoint(source.sources, source.settings)
                save(cp_path, checkpoint)
        except CheckpointError as exc:
            raise click.UsageError(str(exc)) from None
    try:
        client = Client(config=config)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except OpenCDPError as exc:
        raise click.ClickException(str(exc)) from None
    importer = Importer(client, to=DESTINATIONS[to], checkpoint_path=cp_path,
                        checkpoint=checkpoint, dry_run=dry_run, rate=rate,
                        source_names=source.names, on_refused=out.refused)
    sys.exit(_run(importer, out, source, checkpoint, cp_path))


def _status(report: Report) -> str:
    """The bar's words: what a byte count cannot say (records, their rate, refusals)."""
    rate = report.read / report.seconds if report.seconds else 0.0
    return (f"{report.read:,} records  {rate:,.0f}/s  "
            f"{report.refused_total:,} refused")


def _run(importer: Importer, out: _Output, source: _Source, checkpoint: Checkpoint | None,
         cp_path: str | None) -> int:
    report = importer.report
    reader = source.reader
    interrupts = [0]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        interrupts[0] += 1
        if interrupts[0] > 1:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting at once
        importer.stop()

    def progress_line(r: Report) -> None:
        fields: dict[str, Any] = {"read": r.read, "queued": r.queued,
                                  "refused": r.refused_total,
                                  "rate": round(r.read / r.seconds) if r.seconds else 0}
        if reader is not None:
            fields.update(requests=reader.counts["requests"], throttled=reader.counts["429s"])
        out.line("progress", **fields)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    client = importer.client
    code = 0
    try:
        if checkpoint is not None and (checkpoint.cursor is not None or checkpoint.complete):
            out.line("resumed", skipped=report.skipped, skipped_refused=report.skipped_refused,
                     checkpoint=cp_path)
        if checkpoint is not None and checkpoint.complete and reader is not None:
            report.complete = True  # a workspace read to its end: no request needed
        else:  # a file is read on from its cursor: what was appended since is imported
            items = source.items(checkpoint.cursor if checkpoint else None,
                                 (checkpoint.read if checkpoint else 0) + 1)
            with progress("importing", total=source.total, status=True) as update:
                if update is None and out.json:
                    importer.on_progress = progress_line
                elif update is not None:
                    bar = update
                    importer.on_progress = lambda r: bar(source.done(importer), None,
                                                         _status(r))
                importer.run(items)
        if not importer.stopping:
            with progress("delivering") as update:
                importer.deliver(None, (lambda n: update(0, n)) if update else None)
        else:
            importer.deliver(0)
    except (OpenCDPError, CheckpointError) as exc:
        report.error = str(exc)
        code = 1
        out.line("error", message=str(exc), code=getattr(exc, "code", None) or "OCDP354")
    except KeyboardInterrupt:
        report.interrupted = True
        code = 130
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        with contextlib.suppress(OpenCDPError):
            client.close(timeout=2.0 if importer.stopping else client.config.shutdown_timeout)
        if reader is not None:
            report.workspace = reader.report()
    if report.interrupted and code == 0:
        code = 130
    out.table(report, cp_path)
    return code


def _done(importer: Importer, identities: list[SourceIdentity]) -> int:
    """Bytes read so far, from the files reader's cursor ``(file, offset, line)``."""
    position = importer.position
    if position is None:
        return 0
    index, offset = int(position.cursor[0]), int(position.cursor[1])
    return sum(i.size for i in identities[:index]) + offset
