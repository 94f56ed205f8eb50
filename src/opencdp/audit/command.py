"""``opencdp audit PATH... [--json | --format sarif] [--fail-under N] [--fail-on SEVERITY]``.

Exit status: 0 when the run passes, 1 when it fails, 2 for usage errors. With neither
``--fail-under`` nor ``--fail-on`` the run fails on any finding, like a linter; with
``--fail-on`` alone, only findings of that severity or worse fail it. ``--json`` is the flag
every opencdp command takes; ``--format json`` is the same output, kept for scripts written
before it, and ``--format sarif`` is for code-scanning uploads.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from ..cli import progress
from .engine import audit_paths, discover
from .model import Severity
from .report import Format, render

__all__ = ["audit"]


def _codes(values: tuple[str, ...]) -> list[str]:
    return [c.strip().upper() for v in values for c in v.split(",") if c.strip()]


@click.command("audit")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, path_type=Path),
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Output format (text, json or sarif); --json is the same as --format json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (same as --format json).")
@click.option(
    "--fail-under",
    type=click.IntRange(0, 100),
    default=None,
    help="Fail when the score (0-100) is below N. Default: 100 unless --fail-on is given.",
)
@click.option(
    "--fail-on",
    type=click.Choice([s.value for s in Severity]),
    default=None,
    help="Fail when a finding has this severity or a worse one.",
)
@click.option(
    "--select",
    multiple=True,
    metavar="CODES",
    help="Only these codes or code prefixes (comma-separated, repeatable).",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="CODES",
    help="Skip these codes or code prefixes (comma-separated, repeatable).",
)
def audit(
    paths: tuple[Path, ...],
    output_format: str,
    as_json: bool,
    fail_under: int | None,
    fail_on: str | None,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
) -> None:
    """Check Python code and email templates for Customer.io integration pitfalls.

    PATH may be files or directories (hidden directories and virtualenvs are skipped).
    Reports file:line:col, code and message, and a score from 100 down: each error costs
    15 points, each warning 5, each note 1.
    """
    if as_json:
        if output_format not in ("text", "json"):
            raise click.UsageError(f"--json and --format {output_format} ask for two outputs; "
                                   "give one")
        output_format = "json"
    with progress("auditing") as update:
        if update is not None:
            update(0, sum(1 for _ in discover(paths)))
        result = audit_paths(paths, select=_codes(select) or None,
                             ignore=_codes(ignore) or None)
    click.echo(render(result, cast(Format, output_format)), nl=False)
    severity = Severity(fail_on) if fail_on is not None else None
    threshold = fail_under if fail_under is not None else (None if severity else 100)
    if result.failed(fail_under=threshold, fail_on=severity):
        raise SystemExit(1)
