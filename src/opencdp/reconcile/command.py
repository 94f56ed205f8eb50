"""``opencdp reconcile``: the command over ``reconcile()``; argument handling and printing
only."""

from __future__ import annotations

import click
import orjson

from ..errors import ConfigurationError, OpenCDPError
from ..outbox.command import parse_since
from .api import reconcile
from .sources import SandboxAdmin

__all__ = ["command"]


@click.command(name="reconcile")
@click.option("--queue", "queue_url", envvar="OPENCDP_QUEUE_URL", default=None, metavar="URL",
              help="A durable queue to read: sqlite:///path.db or redis://host:port/db "
                   "(default: $OPENCDP_QUEUE_URL).")
@click.option("--sandbox", "sandbox_url", default=None, metavar="ADMIN_URL",
              help="A sandbox's admin URL (http://127.0.0.1:PORT/_sandbox): compare the "
                   "people stored in both emulated platforms.")
@click.option("--sandbox-ca", default=None, metavar="FILE",
              help="CA file of a TLS sandbox (printed by `opencdp sandbox --tls`).")
@click.option("--since", default=None, metavar="WHEN",
              help="Window start: Unix seconds, ISO-8601, or an age like 30m / 12h / 7d.")
@click.option("--until", default=None, metavar="WHEN", help="Window end (default: now).")
@click.option("--sample", default=20, show_default=True, type=click.IntRange(min=0),
              help="How many differing people to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--check", is_flag=True, help="Exit with status 1 when the platforms differ.")
def command(queue_url: str | None, sandbox_url: str | None, sandbox_ca: str | None,
            since: str | None, until: str | None, sample: int, as_json: bool,
            check: bool) -> None:
    """Compare what reached OpenCDP with what reached Customer.io.

    Per destination: messages accepted, delivered, pending and dead-lettered (from the
    queue), and a sample of people whose data differs (from the sandbox's stored data, or
    from dead letters that reached only one platform).
    """
    if not queue_url and not sandbox_url:
        raise click.UsageError("give --queue URL (or set OPENCDP_QUEUE_URL), --sandbox "
                               "ADMIN_URL, or both")
    start = parse_since(since, param_hint="--since")
    end = parse_since(until, param_hint="--until")
    try:
        reader = SandboxAdmin(sandbox_url, sandbox_ca) if sandbox_url else None
        report = reconcile(sandbox=reader, queue=queue_url or None, since=start, until=end,
                           sample=sample)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except OpenCDPError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    else:
        click.echo(report.to_text())
    if check and not report.in_sync:
        raise SystemExit(1)
