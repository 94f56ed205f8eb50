"""``opencdp migrate``: the commands of a migration's later phases, each beside its feature."""

from __future__ import annotations

import click

from ..cli import LazyGroup

__all__ = ["migrate"]

_SUBCOMMANDS = {
    "status": "opencdp.migrate.status:command",
    "rollback": "opencdp.migrate.hold:rollback_command",
    "finish": "opencdp.migrate.hold:finish_command",
    "hold": "opencdp.migrate.hold:hold_command",
}


@click.group(cls=LazyGroup, commands=_SUBCOMMANDS)
def migrate() -> None:
    """Where a migration stands, and the way back: status, rollback, hold, finish."""
