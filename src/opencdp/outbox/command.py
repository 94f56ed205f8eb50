"""``opencdp queue``: inspect a durable outbox and deal with its dead letters.

    opencdp queue stats  --queue URL [--json]
    opencdp queue list   --queue URL [--destination D] [--since S] [--limit N] [--json]
    opencdp queue show   ID --queue URL [--json]
    opencdp queue replay --queue URL [--destination D] [--since S] [--json]
    opencdp queue purge  --queue URL [--destination D] [--since S] [--yes] [--json]

``--queue`` defaults to ``OPENCDP_QUEUE_URL``. ``--since`` takes Unix seconds, an ISO-8601
time (``2024-05-01T12:00:00Z``) or an age (``90s``, ``30m``, ``12h``, ``7d``). Replay puts the
dead letters back on the normal path, so the running workers' breakers and rate limits still
apply to them.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar

import click
import orjson

from ..errors import ConfigurationError, OpenCDPError
from ..message import DESTINATION_BITS, parse_ulid
from .base import DeadLetter, Outbox
from .url import _sqlite_path, open_outbox, safe_url

__all__ = ["parse_since", "queue"]

F = TypeVar("F", bound=Callable[..., Any])
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str | None, now: float | None = None, *,
                param_hint: str = "--since") -> float | None:
    """Unix seconds from ``1714564800``, ``2024-05-01T12:00:00Z`` or an age such as ``30m``."""
    if text is None or not text.strip():
        return None
    now = time.time() if now is None else now
    match = _AGE.match(text.lower())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
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


def _queue_option(fn: F) -> F:
    return click.option(
        "--queue", "queue_url", envvar="OPENCDP_QUEUE_URL", required=True, metavar="URL",
        help="sqlite:///path.db or redis://host:port/db (default: $OPENCDP_QUEUE_URL)",
    )(fn)


def _json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def _filter_options(fn: F) -> F:
    fn = click.option("--since", default=None, metavar="WHEN",
                      help="Only dead letters from then on (Unix s, ISO-8601, or 30m/12h/7d).")(fn)
    return click.option(
        "--destination", type=click.Choice(sorted(DESTINATION_BITS)), default=None,
        help="Only this destination's dead letters.",
    )(fn)


@contextlib.contextmanager
def _opened(url: str) -> Iterator[Outbox]:
    if url.strip().split("?")[0] == "memory":
        raise click.UsageError(
            "the memory queue lives inside the application's process; only a durable queue "
            "(sqlite:///... or redis://...) can be inspected from here"
        )
    if url.strip().lower().startswith("sqlite:"):
        try:
            path = _sqlite_path(url.strip())
        except ConfigurationError as exc:
            raise click.UsageError(str(exc)) from None
        if not os.path.exists(path):
            raise click.ClickException(f"no queue file at {path}")
    try:
        box = open_outbox(url, max_queue_size=1, queue_full="drop_oldest",
                          queue_full_timeout=0.0, durability="durable")
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except OpenCDPError as exc:
        raise click.ClickException(f"cannot open {safe_url(url)}: {exc}") from None
    try:
        yield box
    except OpenCDPError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        with contextlib.suppress(OpenCDPError):
            box.close()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def _letter_dict(letter: DeadLetter, full: bool = False) -> dict[str, Any]:
    m = letter.message
    out: dict[str, Any] = {
        "id": m.ulid,
        "destination": letter.destination,
        "kind": m.kind,
        "identifier": m.identifier,
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
        out["destinations"] = m.destinations
    return out


def _print_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


@click.group()
def queue() -> None:
    """Inspect a durable queue; list, show, replay or purge its dead letters."""


@queue.command()
@_queue_option
@_json_option
def stats(queue_url: str, as_json: bool) -> None:
    """Counts per destination: pending, in flight, dead, delivered."""
    with _opened(queue_url) as box:
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
    """Dead letters, newest first."""
    with _opened(queue_url) as box:
        letters = box.dead_letters(destination, parse_since(since), limit)
    if as_json:
        _print_json([_letter_dict(d) for d in letters])
        return
    if not letters:
        click.echo("no dead letters")
        return
    for d in letters:
        status = "-" if d.status is None else str(d.status)
        click.echo(f"{d.message.ulid}  {d.destination:<10}  {_iso(d.dead_at)}  {status:>3}  "
                   f"x{d.attempts}  {d.message.kind}:{d.message.name or ''}  {d.reason}")


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
    with _opened(queue_url) as box:
        finder = getattr(box, "dead_letter", None)
        if finder is not None:
            letters = list(finder(wanted))
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
            click.echo(f"{key:>12}: {shown}")
        click.echo("")


@queue.command()
@_queue_option
@_filter_options
@_json_option
def replay(queue_url: str, destination: str | None, since: str | None, as_json: bool) -> None:
    """Put dead letters back on the normal path with a fresh attempt budget."""
    with _opened(queue_url) as box:
        count = box.replay(destination, parse_since(since))
    if as_json:
        _print_json({"replayed": count})
    else:
        click.echo(f"replayed {count} dead letter(s)")


@queue.command()
@_queue_option
@_filter_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_json_option
def purge(queue_url: str, destination: str | None, since: str | None, yes: bool,
          as_json: bool) -> None:
    """Delete dead letters for good."""
    when = parse_since(since)
    if not yes:
        scope = destination or "every destination"
        if when is not None:
            scope += f", dead since {_iso(when)}"
        click.confirm(f"Delete the dead letters of {scope}?", abort=True)
    with _opened(queue_url) as box:
        count = box.purge(destination, when)
    if as_json:
        _print_json({"purged": count})
    else:
        click.echo(f"purged {count} dead letter(s)")
