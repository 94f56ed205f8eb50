"""``opencdp explain CODE``: a code's entry, read from the installed package (no network).

Like ``rustc --explain E0502``: what the code means, why it matters, what to do, an example,
and the address of the same entry on the site. The entries are ``opencdp.codes``'s.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from .codes import entries, lookup, page_url, render_text, spans

__all__ = ["explain"]


@click.command(name="explain")
@click.argument("codes", nargs=-1)
@click.option("--list", "list_all", is_flag=True, help="List every code with its title.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def explain(codes: tuple[str, ...], list_all: bool, as_json: bool) -> None:
    """Explain a code: what it means, why it matters, what to do, an example.

    CODES are codes such as OCDP305 (or 305). Read from the installed package: no network.
    """
    if list_all:
        chosen = list(entries().values())
    elif not codes:
        raise click.UsageError("name a code (e.g. 'opencdp explain OCDP305'), or pass --list")
    else:
        chosen = []
        for text in codes:
            entry = lookup(text)
            if entry is None:
                known = ", ".join(spans())
                raise click.BadParameter(f"{text!r} is not a known code (known: {known})",
                                         param_hint="CODES")
            chosen.append(entry)
    if as_json:
        click.echo(json.dumps([asdict(e) | {"url": page_url(e.code)} for e in chosen],
                              indent=2))
    elif list_all:
        for entry in chosen:
            click.echo(f"{entry.code}  {entry.level:<7}  {entry.title}")
    else:
        click.echo("\n".join(render_text(e) for e in chosen), nl=False)
