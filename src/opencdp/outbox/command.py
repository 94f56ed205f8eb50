"""``opencdp queue``: inspect a durable outbox and deal with its dead letters.

    opencdp queue stats  --queue URL [--json]
    opencdp queue list   --queue URL [--destination D] [--since S] [--limit N] [--json]
    opencdp queue show   ID --queue URL [--json]
    opencdp queue replay --queue URL [--destination D] [--since S] [--json]
    opencdp queue purge  --queue URL [--destination D] [--older-than AGE] [--newer-than AGE]
                         [--yes] [--json]

``--queue`` defaults to ``OPENCDP_QUEUE_URL``. ``--since`` takes Unix seconds, an ISO-8601
time (``2024-05-01T12:00:00Z``) or an age (``90s``, ``30m``, ``12h``, ``7d``). Replay puts the
dead letters back on the normal path, so the running workers' breakers and rate limits still
apply to them. Purge says which way its window points (``--older-than 30d`` is the retention
clean-up) and asks with the count and the window before deleting anything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

import click
import orjson

from .. import registry
from ..errors import ConfigurationError, OpenCDPError
from ..message import parse_ulid
from .base import DeadLetter, Outbox
from .url import open_outbox, safe_url

__all__ = ["open_for_inspection", "opened", "parse_age", "parse_since", "queue"]

F = TypeVar("F", bound=Callable[..., Any])
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str, param_hint: str) -> float:
    """Seconds from an age such as ``90s``, ``30m``, ``12h``, ``7d`` or ``2w``."""
    match = _AGE.match(text.lower())
    if not match:
        raise click.BadParameter(
            f"{text!r} is not an age like 90s / 30m / 12h / 7d / 2w", param_hint=param_hint)
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_since(text: str | None, now: float | None = None, *,
                param_hint: str = "--since") -> float | None:
    """Unix seconds from ``1714564800``, ``2024-05-01T12:00:00Z`` or an age such as ``30m``."""
    if text is None or not text.strip():
        return None
    now = time.time() if now is None else now
    if _AGE.match(text.lower()):
        return now - parse_age(text, param_hint)
    with contextlib.suppress(ValueError):
        return float(text)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not Unix seconds, an ISO-8601 time or an age like 30m / 12h / 7d",
            param_hint=param_hint,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def open_for_inspection(url: str) -> Outbox:
    """A durable queue opened by URL to be read or cleaned from outside its application.

    The memory queue lives inside its process and cannot be; a missing SQLite file is an
    error (most often a typo), never a new empty queue. ``ConfigurationError`` for what the
    caller got wrong, ``OpenCDPError`` when the queue cannot be reached.
    """
    text = url.strip()
    if text.split("?")[0] == "memory":
        raise ConfigurationError(
            "the memory queue lives inside the application's process; only a durable queue "
            "(sqlite:///... or redis://...) can be inspected from here")
    if text.lower().startswith("sqlite:"):
        parts = urlsplit(text)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if parts.netloc in ("", "localhost") and path and not os.path.exists(path):
            raise ConfigurationError(f"no queue file at {path}")
    try:
        return open_outbox(text, max_queue_size=1, queue_full="drop_oldest",
                           queue_full_timeout=0.0, durability="durable",
                           logger=logging.getLogger("opencdp.outbox"))
    except ConfigurationError:
        raise
    except OpenCDPError as exc:
        raise OpenCDPError(f"cannot open {safe_url(text)}: {exc}") from None


@runtime_checkable
class _FindsDeadLetter(Protocol):
    """Outboxes that can look a message's dead letters up by id without a scan."""

    def dead_letter(self, message_id: int) -> list[DeadLetter]: ...


def _queue_option(fn: F) -> F:
    return click.option(
        "--queue", "queue_url", envvar="OPENCDP_QUEUE_URL", show_envvar=True, required=True,
        metavar="URL", help="sqlite:///path.db or redis://host:port/db",
    )(fn)


def _json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def _destination_option(fn: F) -> F:
    return click.option(
        "--destination", type=click.Choice(sorted(registry.names())), default=None,
        help="Only this destination's dead letters.",
    )(fn)


def _filter_options(fn: F) -> F:
    fn = click.option("--since", default=None, metavar="WHEN",
                      help="Only dead letters from then on (Unix s, ISO-8601, or 30m/12h/7d).")(fn)
    return _destination_option(fn)


@contextlib.contextmanager
def opened(url: str) -> Iterator[Outbox]:
    """The queue at ``url`` for a command: what cannot work is a usage error (exit 2), a
    queue that fails is a failure (exit 1); closed at the end."""
    try:
        box = open_for_inspection(url)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except OpenCDPError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield box
    except OpenCDPError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        with contextlib.suppress(OpenCDPError):
            box.close()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def _names(bits: int) -> list[str]:
    return list(registry.names_in(bits))


def _letter_dict(letter: DeadLetter, full: bool = False) -> dict[str, Any]:
    m = letter.message
    out: dict[str, Any] = {
        "id": m.ulid,
        "destination": letter.destination,
        "kind": m.kind,
        "person": m.identifier,
        "name": m.name,
        "reason": letter.reason,
        "status": letter.status,
        "attempts": letter.attempts,
        "dead_at": letter.dead_at,
        "created_at": m.created_ms / 1000,
    }
    if full:
        out["data"] = m.data
        out["timestamp"] = m.timestamp
        out["destinations"] = _names(m.destinations)
    return out


def _print_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(letters: Sequence[DeadLetter]) -> list[str]:
    """Dead letters as aligned columns under a header; the reason takes the rest of the line."""
    rows = [(d.message.ulid, d.destination, _iso(d.dead_at),
             "-" if d.status is None else str(d.status), str(d.attempts),
             _clip(d.message.identifier, 32),
             d.message.kind + (f":{d.message.name}" if d.message.name else ""),
             d.reason.replace("\n", " ")) for d in letters]
    header = ("ID", "DESTINATION", "DEAD AT", "STATUS", "TRIES", "PERSON", "CALL", "REASON")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    right = {3, 4}
    out = []
    for row in [header, *rows]:
        cells = [row[i].rjust(w) if i in right else row[i].ljust(w)
                 for i, w in enumerate(widths)]
        out.append("  ".join([*cells, row[-1]]).rstrip())
    return out


@click.group()
def queue() -> None:
    """Inspect a durable queue; list, show, replay or purge its dead letters."""


@queue.command()
@_queue_option
@_json_option
def stats(queue_url: str, as_json: bool) -> None:
    """Counts per destination: pending, in flight, dead, delivered."""
    with opened(queue_url) as box:
        counts = box.stats(time.time())
    if as_json:
        _print_json({name: {k: v for k, v in s.to_dict().items() if k != "dropped"}
                     for name, s in counts.items()})
        return
    click.echo(f"{'destination':<12} {'pending':>9} {'in_flight':>9} {'dead':>7} "
               f"{'delivered':>10}  oldest pending")
    for name, s in counts.items():
        age = "-" if s.oldest_pending_age is None else f"{s.oldest_pending_age:.1f} s"
        click.echo(f"{name:<12} {s.pending:>9} {s.in_flight:>9} {s.dead:>7} {s.delivered:>10}  "
                   f"{age}")


@queue.command(name="list")
@_queue_option
@_filter_options
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@_json_option
def list_(queue_url: str, destination: str | None, since: str | None, limit: int,
          as_json: bool) -> None:
    """Dead letters, newest first: who, which call, and why."""
    with opened(queue_url) as box:
        letters = box.dead_letters(destination, parse_since(since), limit)
    if as_json:
        _print_json([_letter_dict(d) for d in letters])
        return
    if not letters:
        click.echo("no dead letters")
        return
    for line in _table(letters):
        click.echo(line)


@queue.command()
@click.argument("message_id")
@_queue_option
@_json_option
def show(message_id: str, queue_url: str, as_json: bool) -> None:
    """One message's dead letters, with its data."""
    try:
        wanted = parse_ulid(message_id.strip())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="MESSAGE_ID") from None
    with opened(queue_url) as box:
        if isinstance(box, _FindsDeadLetter):
            letters = list(box.dead_letter(wanted))
        else:
            letters = [d for d in box.dead_letters(limit=1_000_000) if d.message.id == wanted]
    if not letters:
        raise click.ClickException(f"no dead letter with id {message_id}")
    if as_json:
        _print_json([_letter_dict(d, full=True) for d in letters])
        return
    for d in letters:
        for key, value in _letter_dict(d, full=True).items():
            shown = value
            if key in ("dead_at", "created_at"):
                shown = _iso(value)
            elif key == "data":
                shown = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
            elif key == "destinations":
                shown = ", ".join(value) or "none"
            elif value is None:
                shown = "-"
            click.echo(f"{key:>12}: {shown}")
        click.echo("")


@queue.command()
@_queue_option
@_filter_options
@_json_option
def replay(queue_url: str, destination: str | None, since: str | None, as_json: bool) -> None:
    """Put dead letters back on the normal path with a fresh attempt budget."""
    with opened(queue_url) as box:
        count = box.replay(destination, parse_since(since))
    if as_json:
        _print_json({"replayed": count})
    else:
        click.echo(f"replayed {count} dead letter(s)")


def _window_text(newer: float | None, older: float | None, newer_text: str | None,
                 older_text: str | None) -> str:
    if newer is not None and older is not None:
        return (f"that died between {_iso(newer)} and {_iso(older)} "
                f"(newer than {newer_text}, older than {older_text})")
    if older is not None:
        return f"that died before {_iso(older)} (older than {older_text})"
    if newer is not None:
        return f"that died since {_iso(newer)} (newer than {newer_text})"
    return "of any age"


def _matching(box: Outbox, destination: str | None, newer: float | None,
              older: float | None) -> int:
    """How many dead letters a purge with this window would delete."""
    counts = box.stats(time.time())
    total = 0
    for name in [destination] if destination else sorted(counts):
        dead = counts[name].dead if name in counts else 0
        if not dead:
            continue
        if newer is None and older is None:
            total += dead
            continue
        letters = box.dead_letters(name, newer, dead + 1)
        total += sum(1 for d in letters if older is None or d.dead_at < older)
    return total


@queue.command()
@_queue_option
@_destination_option
@click.option("--older-than", "older_than", default=None, metavar="AGE",
              help="Only dead letters that died more than AGE ago (30m, 12h, 7d, 2w): the "
                   "retention clean-up.")
@click.option("--newer-than", "newer_than", default=None, metavar="AGE",
              help="Only dead letters that died within the last AGE.")
@click.option("--since", default=None, hidden=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_json_option
def purge(queue_url: str, destination: str | None, older_than: str | None,
          newer_than: str | None, since: str | None, yes: bool, as_json: bool) -> None:
    """Delete dead letters for good, after showing how many and which window.

    Without --older-than or --newer-than every dead letter (of --destination) goes.
    """
    if since is not None:
        raise click.UsageError(
            "purge takes no --since: it would delete the newest dead letters, the opposite of "
            f"a retention clean-up. To delete those older than {since.strip()}, say "
            f"--older-than {since.strip()}; to delete the recent ones, --newer-than "
            f"{since.strip()}.")
    now = time.time()
    older = now - parse_age(older_than, "--older-than") if older_than is not None else None
    newer = now - parse_age(newer_than, "--newer-than") if newer_than is not None else None
    if older is not None and newer is not None and newer >= older:
        raise click.UsageError("--newer-than must be a longer age than --older-than, or the "
                               "window is empty")
    scope = f" for {destination}" if destination else ""
    window = _window_text(newer, older, newer_than, older_than)
    with opened(queue_url) as box:
        matching = _matching(box, destination, newer, older)
        if matching == 0:
            count = 0
        else:
            if not yes:
                click.confirm(f"Delete {matching} dead letter(s){scope} {window}?",
                              abort=True, err=True)
            count = box.purge(destination, newer, before=older)
    if as_json:
        _print_json({"purged": count, "destination": destination,
                     "dead_since": None if newer is None else _iso(newer),
                     "dead_before": None if older is None else _iso(older)})
    elif count == 0 and matching == 0:
        click.echo(f"nothing to purge: no dead letter{scope} {window}")
    else:
        click.echo(f"purged {count} dead letter(s){scope} {window}")
