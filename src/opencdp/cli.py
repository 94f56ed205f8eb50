"""The ``opencdp`` command, and what its subcommands share.

Each subcommand lives beside the feature it drives and is imported only when used, so
``opencdp audit`` works on a plain install while ``opencdp sandbox`` pulls in its extras.
Conventions every subcommand keeps: ``--json`` for machine-readable output, exit status 2
for a usage problem (a bad or missing option, a queue URL that cannot work), 1 for a
failure, and progress on stderr only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from typing import Any, Protocol

import click

__all__ = ["LazyGroup", "Update", "extra_for", "main", "progress"]

_COMMANDS = {
    "sandbox": "opencdp.sandbox.command:sandbox",
    "audit": "opencdp.audit.command:audit",
    "explain": "opencdp.explain:explain",
    "queue": "opencdp.outbox.command:queue",
    "worker": "opencdp.worker:worker",
    "serve": "opencdp.server.command:serve",
    "reconcile": "opencdp.reconcile.command:command",
    "import": "opencdp.migrate.importing:command",
    "migrate": "opencdp.migrate.command:migrate",
    "dashboard": "opencdp.dashboard.command:dashboard",
}

# Which extra brings a missing module, by the command that needed it; a module that only one
# extra provides wins over the command's own extra.
_COMMAND_EXTRAS = {"sandbox": "sandbox", "serve": "server"}
_MODULE_EXTRAS = {"redis": "redis", "rich": "demo", "trustme": "sandbox",
                  "starlette": "server", "prometheus_client": "metrics",
                  "opentelemetry": "tracing"}


def extra_for(command: str, module: str | None) -> str:
    """The ``opencdp[...]`` extra that installs ``module`` for ``command``."""
    root = (module or "").split(".")[0]
    return _MODULE_EXTRAS.get(root) or _COMMAND_EXTRAS.get(command) or "all"


class _MissingExtra(click.ClickException):
    """An optional dependency is not installed; names the extra that brings it."""

    def __init__(self, command: str, exc: ImportError) -> None:
        self.extra = extra_for(command, exc.name)
        super().__init__(
            f"'opencdp {command}' needs an optional dependency that is not installed "
            f"({exc.name or exc}); install it with: pip install 'opencdp[{self.extra}]'")


class LazyGroup(click.Group):
    """Subcommands imported on first use; a dependency missing at import or at run time is
    named with the extra that installs it. ``commands`` maps a name to ``module:attribute``."""

    def __init__(self, *args: Any, commands: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = _COMMANDS if commands is None else commands

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ImportError as exc:
            if ctx.invoked_subcommand is None:
                raise
            raise _MissingExtra(ctx.invoked_subcommand, exc) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # ``opencdp --help`` must work on a plain install: a subcommand whose extra is missing
        # is listed with the install line instead of failing the whole listing.
        rows = []
        for name in self.list_commands(ctx):
            try:
                command = self.get_command(ctx, name)
            except click.ClickException as exc:
                rows.append((name, f"(needs pip install 'opencdp[{exc.extra}]')"
                             if isinstance(exc, _MissingExtra) else f"({exc.message})"))
                continue
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise _MissingExtra(cmd_name, exc) from exc
        command: Any = getattr(module, attr)
        return command  # type: ignore[no-any-return]


class Update(Protocol):
    """What ``progress`` yields: ``update(completed, total=None, status=None)``."""

    def __call__(self, completed: int, total: int | None = None,
                 status: str | None = None, /) -> None: ...


@contextlib.contextmanager
def progress(description: str, total: int | None = None, *, status: bool = False,
             ) -> Iterator[Update | None]:
    """A progress bar on stderr for a long operation; yields ``update(completed, total)``,
    or None when no bar is shown (so the caller can skip work done only for the bar).

    Shown only when stderr is a terminal and ``rich`` is installed (the ``demo`` extra), so
    pipes, log files and supervisors see nothing but the command's own output. The bar is
    transient: it is gone once the operation ends. ``status=True`` adds the time left and a
    text the caller keeps current (``update(completed, None, "1,200 records  950/s")``): a
    bar counts one unit (bytes, messages), and an import must also show records, their rate
    and its refusals.
    """
    if not sys.stderr.isatty():
        yield None
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
    except ImportError:
        yield None
        return
    columns: list[ProgressColumn | str] = [SpinnerColumn(), TextColumn("{task.description}"),
                                           BarColumn(), MofNCompleteColumn(),
                                           TimeElapsedColumn()]
    if status:
        columns += [TimeRemainingColumn(), TextColumn("{task.fields[status]}")]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total, status="")

        def update(completed: int, new_total: int | None = None,
                   text: str | None = None) -> None:
            if new_total is not None:
                bar.update(task, total=new_total)
            if text is not None:
                bar.update(task, status=text)
            bar.update(task, completed=completed)

        yield update


@click.group(cls=LazyGroup)
@click.version_option(package_name="opencdp")
def main() -> None:
    """opencdp: dual-write customer data to OpenCDP and Customer.io, reliably."""
