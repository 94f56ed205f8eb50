"""``opencdp migrate status``: where a migration stands, and whether phase 3 is safe.

A reader only: the queue's counts, dead letters and hold mark, reconcile's parity, and the
imports' checkpoints, turned into a phase and a verdict with every reason, so that a CI job or
a cron can gate the cut-over on the exit status (0 ready, 1 not ready, 2 a usage problem).

Parity is measured where the data can be read. The sandbox stores both platforms, so there
reconcile compares people one by one. The OpenCDP gateway has no read API, so against the
real platforms parity comes from the delivery records: a message dead-lettered for one
destination only is a person whose data differs.

The rules, each of which adds a reason when it fails:
- no dead letter in the window, on any destination (grouped by code, or by status);
- nothing pending longer than ``max_pending_age`` (held copies are meant to wait);
- parity at least ``min_parity`` percent (and no message reached only one platform);
- every import named by its checkpoint is complete;
- something was delivered to OpenCDP through this queue.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import click
import orjson

from ..errors import ConfigurationError, OpenCDPError
from ..outbox.base import Outbox
from ..outbox.command import open_for_inspection, parse_since
from ..reconcile.api import reconcile
from ..reconcile.report import ReconcileReport, iso
from ..reconcile.sources import SandboxAdmin, SandboxReader
from . import checkpoint

__all__ = ["MigrationStatus", "command", "migration_status"]

DESTINATIONS = ("opencdp", "customerio")
LABELS = {"opencdp": "OpenCDP", "customerio": "Customer.io"}
HELD = ("held", "draining")
_CODE = re.compile(r"\bOCDP\d{3}\b")


def reason_key(reason: str, status: int | None) -> str:
    """A dead letter's reason as a group: its code, else its HTTP status, else its text."""
    found = _CODE.search(reason or "")
    if found:
        return found.group(0)
    if status:
        return f"HTTP {status}"
    return (reason or "unknown").split(":")[0].strip()[:60] or "unknown"


@dataclass(frozen=True, kw_only=True)
class MigrationStatus:
    """The phase, the verdict and the evidence behind it, as plain data."""

    phase: int
    phase_label: str
    ready: bool
    reasons: list[str]
    since: float | None
    taken_at: float
    destinations: dict[str, dict[str, Any]]
    parity: dict[str, Any]
    imports: list[dict[str, Any]] = field(default_factory=list)
    hold: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "phase_label": self.phase_label,
                "ready_for_phase_3": self.ready, "reasons": list(self.reasons),
                "since": iso(self.since), "taken_at": iso(self.taken_at),
                "destinations": self.destinations, "parity": self.parity,
                "imports": self.imports, "hold": self.hold, "notes": list(self.notes)}

    def to_text(self) -> str:
        lines = [f"opencdp migrate status at {iso(self.taken_at)}  "
                 f"window: {iso(self.since) or 'the queue lifetime'} .. now",
                 f"phase {self.phase}: {self.phase_label}", "",
                 f"{'destination':<12} {'delivered':>10} {'pending':>8} {'oldest':>8} "
                 f"{'dead (window)':>14}"]
        for name, d in self.destinations.items():
            age = d["oldest_pending_age"]
            lines.append(f"{name:<12} {d['delivered']:>10} {d['pending']:>8} "
                         f"{'-' if age is None else f'{age:.0f}s':>8} "
                         f"{d['dead_in_window']:>14}")
            lines += [f"  {n} dead letter(s) for {key}" for key, n in d["dead_by_reason"].items()]
        if self.hold:
            lines += ["", f"Customer.io copy: {self.hold['state']} since "
                          f"{iso(self.hold['since'])}, {self.hold['held']} held"]
        p = self.parity
        lines += ["", f"parity ({p['source']}): " + (
            f"{p['percent']:.1f} % of {p['compared']} people" if p["percent"] is not None
            else "no people to compare") + f", {p['unmatched']} message(s) reached one "
                                           "platform only"]
        for imp in self.imports:
            lines.append(f"import {imp['checkpoint']}: "
                         f"{'complete' if imp['complete'] else 'NOT complete'}, "
                         f"{imp['queued']} queued, {sum(imp['refused'].values())} refused")
        lines += ["", f"ready for phase 3: {'yes' if self.ready else 'no'}"]
        lines += [f"  - {r}" for r in self.reasons]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _destinations(outbox: Outbox, since: float | None, now: float) -> dict[str, dict[str, Any]]:
    stats = outbox.stats(now)
    out: dict[str, dict[str, Any]] = {}
    for name in DESTINATIONS:
        s = stats.get(name)
        letters = outbox.dead_letters(name, since, 100_000)
        groups = Counter(reason_key(d.reason, d.status) for d in letters)
        out[name] = {
            "delivered": s.delivered if s else 0,
            "pending": (s.pending + s.in_flight) if s else 0,
            "oldest_pending_age": s.oldest_pending_age if s else None,
            "dead": s.dead if s else 0,
            "dead_in_window": len(letters),
            "dead_by_reason": dict(groups.most_common()),
        }
    return out


def _hold(outbox: Outbox, pending: int) -> dict[str, Any] | None:
    mark = outbox.hold_mark("customerio")
    if mark is None:
        return None
    return {"state": mark.state, "since": mark.since, "changed": mark.changed,
            "held": pending if mark.state in HELD else 0}


def _parity(report: ReconcileReport, sandbox: bool) -> dict[str, Any]:
    compared = report.people_compared
    percent = (100.0 * (compared - report.people_differing) / compared
               if sandbox and compared else None)
    return {"source": "sandbox" if sandbox else "delivery records", "compared": compared,
            "differing": report.people_differing, "percent": percent,
            "unmatched": report.messages_unmatched,
            "differences": [d.to_dict() for d in report.differences]}


def _imports(paths: list[str]) -> list[dict[str, Any]]:
    found = []
    for path in paths:
        cp = checkpoint.load(path)
        if cp is None:
            raise ConfigurationError(f"no import checkpoint at {path}")
        found.append({"checkpoint": path, "complete": cp.complete, "read": cp.read,
                      "queued": cp.queued, "refused": dict(cp.refused)})
    return found


def _phase(hold: dict[str, Any] | None, cio: dict[str, Any], ready: bool) -> tuple[int, str]:
    state = hold["state"] if hold else None
    if state == "finished":
        return 3, "dual-write ended; the Customer.io copy was purged (no way back)"
    if state in HELD:
        return 3, ("the Customer.io copy is held: nothing is sent to Customer.io, and "
                   "`opencdp migrate rollback` can still deliver it")
    if not (cio["delivered"] or cio["pending"] or cio["dead"]):
        return 1, "dual-write is not on for this queue: nothing was queued for Customer.io"
    if ready:
        return 2, "dual-writing, in parity: ready to hold the Customer.io copy"
    return 1, "dual-writing, verifying: see the reasons below"


def migration_status(queue: Outbox | str, *, sandbox: SandboxReader | str | None = None,
                     since: float | None = None, checkpoints: list[str] | None = None,
                     min_parity: float = 100.0, max_pending_age: float = 300.0,
                     sample: int = 20) -> MigrationStatus:
    """Read the queue (and the sandbox, and the imports' checkpoints) and give the verdict.

    ``queue`` is a durable queue's URL or an open outbox; ``sandbox`` a running ``Sandbox``
    or its admin URL, for parity person by person; ``since`` Unix seconds (dead letters are
    counted from then; the queue's delivered counts are its lifetime's)."""
    if not 0 <= min_parity <= 100:
        raise ConfigurationError("min_parity must be a percentage between 0 and 100")
    now = time.time()
    opened = open_for_inspection(queue) if isinstance(queue, str) else queue
    try:
        dests = _destinations(opened, since, now)
        hold = _hold(opened, dests["customerio"]["pending"])
        report = reconcile(queue=opened, sandbox=sandbox, since=since, sample=sample)
    finally:
        if opened is not queue:
            opened.close()
    parity = _parity(report, sandbox is not None)
    imports = _imports(checkpoints or [])
    reasons: list[str] = []
    for name, d in dests.items():
        reasons += [f"{n} {LABELS[name]} dead letter(s) for {key} in the window"
                    for key, n in d["dead_by_reason"].items()]
        held = hold is not None and hold["state"] in HELD and name == "customerio"
        age = d["oldest_pending_age"]
        if not held and age is not None and age > max_pending_age:
            reasons.append(f"{d['pending']} {LABELS[name]} message(s) pending, the oldest "
                           f"{age:.0f} s (more than {max_pending_age:.0f} s)")
    if parity["percent"] is not None and parity["percent"] < min_parity:
        reasons.append(f"parity {parity['percent']:.1f} % of {parity['compared']} people "
                       f"(at least {min_parity:g} % needed)")
    if sandbox is not None and not parity["compared"]:
        reasons.append("no people to compare in the sandbox")
    if parity["unmatched"]:
        reasons.append(f"{parity['unmatched']} message(s) reached one platform only")
    reasons += [f"the import of {i['checkpoint']} is not complete ({i['queued']} queued so "
                "far): run the same `opencdp import` again to resume it"
                for i in imports if not i["complete"]]
    if not dests["opencdp"]["delivered"]:
        reasons.append("nothing has been delivered to OpenCDP through this queue")
    notes = list(report.notes)
    if sandbox is None:
        notes.append("parity from delivery records: the OpenCDP gateway has no read API; "
                     "give --sandbox to compare stored people")
    phase, label = _phase(hold, dests["customerio"], not reasons)
    return MigrationStatus(phase=phase, phase_label=label, ready=not reasons, reasons=reasons,
                           since=since, taken_at=now, destinations=dests, parity=parity,
                           imports=imports, hold=hold, notes=notes)


@click.command(name="status")
@click.option("--queue", "queue_url", envvar="OPENCDP_QUEUE_URL", required=True, metavar="URL",
              help="The durable queue the clients, relay or workers use: sqlite:///path.db or "
                   "redis://host:port/db (default: $OPENCDP_QUEUE_URL).")
@click.option("--since", default="24h", show_default=True, metavar="WHEN",
              help="Window start for dead letters: an age like 24h / 7d, Unix seconds or "
                   "ISO-8601.")
@click.option("--sandbox", "sandbox_url", default=None, metavar="ADMIN_URL",
              help="A sandbox's admin URL: parity person by person from what both emulated "
                   "platforms stored.")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="FILE",
              help="An `opencdp import` checkpoint whose import must be complete (repeat).")
@click.option("--min-parity", default=100.0, show_default=True,
              type=click.FloatRange(0, 100), help="Parity needed, in percent.")
@click.option("--max-pending-age", default=300.0, show_default=True,
              type=click.FloatRange(min=0), help="Seconds a message may wait, held copies "
                                                 "aside.")
@click.option("--sample", default=20, show_default=True, type=click.IntRange(min=0),
              help="How many differing people to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def command(queue_url: str, since: str, sandbox_url: str | None, checkpoints: tuple[str, ...],
            min_parity: float, max_pending_age: float, sample: int, as_json: bool) -> None:
    """Where the migration stands, and whether phase 3 is safe.

    Prints the phase and `ready for phase 3: yes` or `no` with every reason. Exit status 0
    when ready, 1 when not, so a CI job or a cron can gate on it.
    """
    start = parse_since(since, param_hint="--since")
    try:
        status = migration_status(
            queue_url, sandbox=SandboxAdmin(sandbox_url) if sandbox_url else None,
            since=start, checkpoints=list(checkpoints), min_parity=min_parity,
            max_pending_age=max_pending_age, sample=sample)
    except (ConfigurationError, checkpoint.CheckpointError) as exc:
        raise click.UsageError(str(exc)) from None
    except OpenCDPError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps(status.to_dict(), option=orjson.OPT_INDENT_2))
    else:
        click.echo(status.to_text())
    raise SystemExit(0 if status.ready else 1)
