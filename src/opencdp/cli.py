"""The ``opencdp`` command.

Each subcommand lives beside the feature it drives and is imported only when used, so
``opencdp audit`` works on a plain install while ``opencdp sandbox`` pulls in its extras.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

__all__ = ["main"]

_COMMANDS = {
    "sandbox": "opencdp.sandbox.command:sandbox",
    "audit": "opencdp.audit.command:audit",
    "queue": "opencdp.outbox.command:queue",
    "worker": "opencdp.worker:worker",
    "serve": "opencdp.server.command:serve",
    "reconcile": "opencdp.reconcile.command:command",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = exc.name or str(exc)
            raise click.ClickException(
                f"'opencdp {cmd_name}' needs an optional dependency that is not installed "
                f"({missing}); install it with: pip install 'opencdp[all]'"
            ) from exc
        command: Any = getattr(module, attr)
        return command  # type: ignore[no-any-return]


@click.group(cls=_LazyGroup)
@click.version_option(package_name="opencdp")
def main() -> None:
    """opencdp: dual-write customer data to OpenCDP and Customer.io, reliably."""
