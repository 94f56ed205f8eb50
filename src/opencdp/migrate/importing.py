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
Customer.io App API reader feeds the same ``Importer.run``.

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
import hashlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Final, TextIO

import click
import orjson

from ..calls import Calls
from ..cli import progress
from ..client import Client
from ..config import ClientConfig, CustomerIO
from ..errors import ConfigurationError, OpenCDPError, ValidationError
from ..message import CUSTOMERIO, OPENCDP
from .checkpoint import Checkpoint, CheckpointError, load, save
from .records import RecordError, to_call
from .sources import (
    FORMATS,
    Position,
    SourceIdentity,
    Unreadable,
    format_for,
    identify_source,
    read_files,
)

__all__ = ["DESTINATIONS", "Importer", "Refusal", "Report", "command", "import_config"]

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
                "error": self.error}


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
                    self._refuse(position, "OCDP351", record.message)
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
        config = config.with_options(customer_io=CustomerIO("dry-run", "dry-run-key"))
    dual = to != "opencdp"
    changes: dict[str, Any] = {"silence": config.silence | _QUIET}
    if config.customer_io is not None:
        changes["send_to_customer_io"] = dual
    return config.with_options(**changes)


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
        width = max(len(label) for label, _ in rows)
        state = "dry run: nothing sent" if report.dry_run else (
            "complete" if report.complete else "interrupted" if report.interrupted else
            "stopped")
        self.stream.write(f"import {state} in {report.seconds:.1f} s\n")
        for label, value in rows:
            self.stream.write(f"  {label.ljust(width)}  {value:>12,}\n")
        if checkpoint and not report.complete:
            self.stream.write(f"  resume with the same command (checkpoint {checkpoint})\n")
        self.stream.flush()


@click.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Input format (default: from the extension: .ndjson/.jsonl/.json, .csv).")
@click.option("--to", "to", type=click.Choice(sorted(DESTINATIONS)), default="opencdp",
              show_default=True, help="Where the records go (Customer.io has its own history).")
@click.option("--queue", "queue", default=None, envvar="OPENCDP_QUEUE_URL", metavar="URL",
              help="The durable queue: sqlite:///path.db or redis://host:port/db "
                   "(default: $OPENCDP_QUEUE_URL).")
@click.option("--checkpoint", "checkpoint_path", default=None, metavar="FILE",
              help="Where to keep the position (default: beside the first file).")
@click.option("--dry-run", is_flag=True, help="Read and check everything; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines (the default off a terminal).")
@click.option("--rate", type=click.FloatRange(min=0.1), default=None, metavar="N",
              help="At most N records per second.")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
              help="Read COLUMN as FIELD (user_id, event, timestamp, attributes.NAME, ...; "
                   "'-' drops it). Repeatable.")
@click.option("--key", "key", default=None, metavar="COLUMN",
              help="Name each record by this column's value instead of its line.")
def command(paths: tuple[str, ...], fmt: str | None, to: str, queue: str | None,
            checkpoint_path: str | None, dry_run: bool, as_json: bool, rate: float | None,
            maps: tuple[str, ...], key: str | None) -> None:
    """Backfill people, devices and events from files, exactly once.

    Each record goes through the same checks as a call and is queued durably; a record
    refused is listed with its line and code, and the rest go on. Ctrl-C stops with a valid
    checkpoint; the same command resumes. See docs/import.md.
    """
    out = _Output(as_json or not sys.stdout.isatty(), sys.stdout)
    files = list(paths)
    try:
        formats = [format_for(p, fmt) for p in files]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    renames = _renames(maps)
    identities = [identify_source(p) for p in files]
    settings = {"formats": formats, "to": to, "map": renames, "key": key}
    try:
        config = import_config(queue, to, dry_run)
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
        cp_path = checkpoint_path or _default_checkpoint(files, identities, settings)
        try:
            checkpoint = load(cp_path)
            if checkpoint is not None:
                _matching(checkpoint, identities, settings, cp_path)
            else:
                checkpoint = Checkpoint([i.to_json() for i in identities], settings)
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
                        source_names=files, on_refused=out.refused)
    code = _run(importer, out, files, formats, identities, renames, key, checkpoint,
                cp_path)
    sys.exit(code)


def _run(importer: Importer, out: _Output, files: list[str], formats: list[str],
         identities: list[SourceIdentity], renames: dict[str, str], key: str | None,
         checkpoint: Checkpoint | None, cp_path: str | None) -> int:
    report = importer.report
    interrupts = [0]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        interrupts[0] += 1
        if interrupts[0] > 1:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting at once
        importer.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    client = importer.client
    code = 0
    try:
        if checkpoint is not None and (checkpoint.cursor is not None or checkpoint.complete):
            out.line("resumed", skipped=report.skipped, skipped_refused=report.skipped_refused,
                     checkpoint=cp_path)
        if checkpoint is not None and checkpoint.complete:
            report.complete = True
        else:
            total = sum(i.size for i in identities)
            items = read_files(files, formats, after=checkpoint.cursor if checkpoint else None,
                               renames=renames, key=key, identities=identities)
            with progress("importing", total=total) as update:
                if update is None and out.json:
                    importer.on_progress = lambda r: out.line(
                        "progress", read=r.read, queued=r.queued, refused=r.refused_total,
                        rate=round(r.read / r.seconds) if r.seconds else 0)
                elif update is not None:
                    bar = update
                    importer.on_progress = lambda r: bar(_done(importer, identities), None)
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
