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
import importlib.util
import sys
from collections.abc import Iterator
from typing import Any, Protocol

import click

from ._version import __version__

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

# What ``opencdp --help`` shows for each command, so listing them imports none of them (most
# import the client and aiohttp); a test holds each equal to its command's own short help.
_SUMMARIES = {
    "audit": "Check Python code and email templates for Customer.io integration pitfalls.",
    "dashboard": "Serve the live dashboard over a local SQLite or Redis queue until Ctrl-C.",
    "explain": "Explain a code: what it means, why it matters, what to do, an example.",
    "import": "Backfill history from files or a Customer.io workspace.",
    "migrate": "Where a migration stands, and the way back: status, rollback, hold, finish.",
    "queue": "Inspect a durable queue; list, show, replay or purge its dead letters.",
    "reconcile": "Compare what reached OpenCDP with what reached Customer.io.",
    "sandbox": "Emulate the OpenCDP gateway and Customer.io (Track v1/v2, App API) on one port.",
    "serve": "Serve the OpenCDP gateway API and deliver what arrives with dual-write and a "
             "durable queue.",
    "worker": "Deliver messages from a shared outbox until SIGTERM/SIGINT.",
}
# The module whose absence means a command's extra is not installed, checked without import.
_EXTRA_PROBES = {"sandbox": "uvicorn", "serve": "starlette"}

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
        # ``opencdp --help`` must work on a plain install and stay cheap: commands with a
        # summary are listed from it, and one whose extra is missing with the install line.
        rows = []
        for name in self.list_commands(ctx):
            probe = _EXTRA_PROBES.get(name)
            if probe is not None and not _installed(probe):
                rows.append((name, f"(needs pip install 'opencdp[{extra_for(name, probe)}]')"))
                continue
            if name in _SUMMARIES and self.lazy is _COMMANDS:
                summary = click.Command(name, help=_SUMMARIES[name])
                rows.append((name, summary.get_short_help_str(formatter.width - 6 - len(name))))
                continue
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


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


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
@click.version_option(__version__, package_name="opencdp")
def main() -> None:
    """opencdp: dual-write customer data to OpenCDP and Customer.io, reliably."""
