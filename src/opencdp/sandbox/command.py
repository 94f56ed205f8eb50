"""``opencdp sandbox``: serve the emulator until SIGINT/SIGTERM.

The first line on stdout is one JSON object with the base URLs (``opencdp``,
``customerio_track``, ``customerio_app``, ``admin``, ``ca_file``), printed once the server
accepts connections, so scripts can read it and go.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigurationError
from .config import SandboxConfig
from .runner import ENV_KEYS, SandboxServer

__all__ = ["sandbox"]


def environment(urls: dict[str, Any], config: SandboxConfig) -> dict[str, str]:
    """The variables ``ClientConfig.from_env`` reads, pointing at a sandbox serving ``urls``."""
    env = {
        "CDP_API_KEY": config.cdp_key,
        "OPENCDP_ENDPOINT": urls["opencdp"],
        "CUSTOMERIO_SITE_ID": config.site_id,
        "CUSTOMERIO_TRACK_API_KEY": config.track_key,
        "CUSTOMERIO_APP_API_KEY": config.app_key,
        "CUSTOMERIO_TRACK_URL": urls["customerio_track"],
        "CUSTOMERIO_APP_URL": urls["customerio_app"],
    }
    if urls.get("ca_file"):
        env["OPENCDP_TLS_CA_FILE"] = urls["ca_file"]
    return env


def _faults(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--faults") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object keyed by service", param_hint="--faults")
    return parsed


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; loopback unless --allow-remote.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a non-loopback --host: the admin API (/_sandbox) has no "
                   "credentials, so anyone who reaches the port can read and change it.")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port; 0 picks a free one.")
@click.option("--tls", is_flag=True, help="Serve https with a throw-away CA (path printed).")
@click.option("--cdp-key", default="cdp-test-key", envvar=ENV_KEYS["cdp_key"],
              show_default=True, help="Gateway key accepted in Authorization.")
@click.option("--site-id", default="sandbox-site", show_default=True,
              help="Customer.io site id (Track Basic auth user).")
@click.option("--track-key", default="sandbox-track-key", envvar=ENV_KEYS["track_key"],
              show_default=True, help="Customer.io Track API key.")
@click.option("--app-key", default="sandbox-app-key", envvar=ENV_KEYS["app_key"],
              show_default=True, help="Customer.io App API key (Bearer).")
@click.option("--rate-limit-rps", default=None, type=float,
              help="Customer.io requests/s per workspace (Track, and sends); 0 = off. "
                   "Default: off, or 100 with --strict.")
@click.option("--strict", is_flag=True,
              help="Stricter than Customer.io: refuse millisecond timestamps, enforce "
                   "100 requests/s.")
@click.option("--read-timeout", default=30.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds to wait for a request's headers or body before answering 408.")
@click.option("--faults", "faults_json", default=None, metavar="JSON|@FILE",
              help='Start-up faults, e.g. \'{"customerio": {"error_rate": 0.2}}\'.')
@click.option("--print-env", is_flag=True,
              help="After the JSON line, print the environment variables that point an app "
                   "(Client.from_env, the framework integrations) at this sandbox, as export "
                   "lines.")
def sandbox(host: str, allow_remote: bool, port: int, tls: bool, cdp_key: str, site_id: str,
            track_key: str, app_key: str, rate_limit_rps: float | None, strict: bool,
            read_timeout: float, faults_json: str | None, print_env: bool) -> None:
    """Emulate the OpenCDP gateway and Customer.io (Track v1/v2, App API) on one port."""
    try:
        config = SandboxConfig(host=host, port=port, tls=tls, cdp_key=cdp_key, site_id=site_id,
                               track_key=track_key, app_key=app_key,
                               faults=_faults(faults_json), rate_limit_rps=rate_limit_rps,
                               strict=strict, read_timeout=read_timeout,
                               allow_remote=allow_remote)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    if allow_remote:
        click.echo(f"WARNING: --allow-remote: the sandbox listens on {host}; its admin API "
                   "(/_sandbox) has no credentials, and anyone who reaches the port can read "
                   "every stored person and change the faults. Use it on a trusted network "
                   "only.", err=True)
    holder: list[SandboxServer] = []

    def announce() -> None:
        urls = holder[0].urls
        sys.stdout.write(json.dumps(urls) + "\n")
        if print_env:
            sys.stdout.writelines(f"export {name}={shlex.quote(value)}\n"
                                  for name, value in environment(urls, config).items())
        sys.stdout.flush()

    try:
        server = SandboxServer(config, on_started=announce, quiet_logging=False,
                               freeze_gc=True)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    holder.append(server)
    # uvicorn re-raises the signal it stopped on once it has shut down; make both a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
