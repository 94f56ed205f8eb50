"""Running the sandbox: in a thread of this process, in a child process, or as the command.

The listening socket is bound before the server starts, so ``port=0`` gives a known port
and the advertised URLs are right from the first request. The Python API reads everything
through the admin HTTP API in both modes, so there is one code path to trust.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from ..clock import Clock
from ..errors import ConfigurationError, OpenCDPError
from ..serving import bind, timed_protocol, uvicorn_choice
from .app import create_app, urls_for
from .config import SERVICES, SandboxConfig
from .faults import FaultMiddleware
from .http import timeout_answer
from .tls import TLSFiles, make_tls_files

__all__ = ["Sandbox", "SandboxServer", "build_server"]

ENV_KEYS = {"cdp_key": "OPENCDP_SANDBOX_CDP_KEY", "track_key": "OPENCDP_SANDBOX_TRACK_KEY",
            "app_key": "OPENCDP_SANDBOX_APP_KEY"}


class SandboxServer:
    """A bound socket, the app, and the uvicorn server that will serve them."""

    def __init__(self, config: SandboxConfig, *, on_started: Callable[[], None] | None = None,
                 quiet_logging: bool = True, freeze_gc: bool = False) -> None:
        """``freeze_gc`` (for a process of its own) moves everything alive to the collector's
        permanent generation once a second: the store only grows, and without this every
        full collection walks millions of stored objects and throughput decays with size."""
        import uvicorn

        self.config = config
        self.sock = bind(config.host, config.port, "sandbox")
        self.port: int = self.sock.getsockname()[1]
        self.tls: TLSFiles | None = make_tls_files() if config.tls else None
        host = f"[{config.host}]" if ":" in config.host else config.host
        base = f"{'https' if config.tls else 'http'}://{host}:{self.port}"
        self.app: FaultMiddleware = create_app(config)
        self.app.state.base_url = base
        self.urls: dict[str, Any] = urls_for(base, self.tls.ca_file if self.tls else None)
        self.app.state.urls = self.urls
        loop, http = uvicorn_choice()
        timeout = config.read_timeout
        uv_config = uvicorn.Config(
            self.app, loop=loop,
            http=timed_protocol(http, timeout, lambda path: timeout_answer(path, timeout)),
            lifespan="off", access_log=False,
            log_level="warning",
            log_config=None if quiet_logging else uvicorn.config.LOGGING_CONFIG,
            ssl_certfile=self.tls.cert_file if self.tls else None,
            timeout_graceful_shutdown=2, timeout_keep_alive=30, backlog=2048,
            server_header=False, ws="none",
        )
        app = self.app

        class _Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if on_started is not None and not self.should_exit:
                    on_started()

            async def on_tick(self, counter: int) -> bool:
                if freeze_gc and counter % 10 == 0:
                    gc.freeze()
                return bool(await super().on_tick(counter))

            async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                # Idle keep-alive connections are dropped at once: a TLS close waits for the
                # peer's close_notify, and a pooled client that is not reading never sends it.
                app.release()
                for conn in list(self.server_state.connections):
                    cycle = getattr(conn, "cycle", None)
                    transport = getattr(conn, "transport", None)
                    if transport is not None and (cycle is None or cycle.response_complete):
                        transport.abort()
                await super().shutdown(sockets)

        self.server = _Server(uv_config)

    def run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.close()

    def stop(self) -> None:
        self.server.should_exit = True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.tls is not None:
            shutil.rmtree(self.tls.directory, ignore_errors=True)


def build_server(config: SandboxConfig, **kwargs: Any) -> SandboxServer:
    return SandboxServer(config, **kwargs)


class Sandbox:
    """A running sandbox, as a context manager.

    ``process=False`` serves from a background thread of this process (tests);
    ``process=True`` runs ``python -m opencdp.sandbox`` as a child process and reads its
    start-up line (benchmarks: the server then has its own interpreter and GIL).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        cdp_key: str = "cdp-test-key",
        site_id: str = "sandbox-site",
        track_key: str = "sandbox-track-key",
        app_key: str = "sandbox-app-key",
        faults: dict[str, Any] | None = None,
        rate_limit_rps: float | None = None,
        strict: bool = False,
        read_timeout: float = 30.0,
        process: bool = False,
        startup_timeout: float = 20.0,
        allow_remote: bool = False,
        clock: Clock | None = None,
    ) -> None:
        """``host`` must be loopback unless ``allow_remote`` (see ``SandboxConfig``).
        ``clock`` (a test's ``ManualClock``) needs ``process=False``: a child process
        cannot read this process's clock."""
        if clock is not None and process:
            raise ConfigurationError("sandbox: a clock can only be passed to a sandbox served "
                                     "from this process (process=False)")
        self.config = SandboxConfig(
            host=host, port=port, tls=tls, cdp_key=cdp_key, site_id=site_id,
            track_key=track_key, app_key=app_key, faults=faults, rate_limit_rps=rate_limit_rps,
            strict=strict, read_timeout=read_timeout, allow_remote=allow_remote,
            clock=clock,
        )
        self.process = process
        self.startup_timeout = startup_timeout
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None
        self.urls: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "running" if self.urls else "stopped"
        return f"<Sandbox {state} {self.urls.get('customerio_track', '')} process={self.process}>"

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Sandbox:
        if self.urls:
            return self
        if self.process:
            self._start_process()
        else:
            self._start_thread()
        ca = self.urls.get("ca_file")
        self._client = httpx.Client(
            base_url=self.urls["admin"], timeout=30,
            verify=ssl.create_default_context(cafile=ca) if ca else True)
        return self

    def _start_thread(self) -> None:
        started = threading.Event()
        server = SandboxServer(self.config, on_started=started.set)
        thread = threading.Thread(target=server.run, name="opencdp-sandbox", daemon=True)
        thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not started.wait(0.05):
            if not thread.is_alive() or time.monotonic() > deadline:
                server.stop()
                thread.join(5)
                server.close()
                raise OpenCDPError("the sandbox server did not start")
        self._server, self._thread, self.urls = server, thread, dict(server.urls)

    def _start_process(self) -> None:
        cfg = self.config
        args = [sys.executable, "-m", "opencdp.sandbox", "--host", cfg.host, "--port",
                str(cfg.port), "--site-id", cfg.site_id, "--read-timeout",
                str(cfg.read_timeout)]
        if cfg.rate_limit_rps is not None:
            args += ["--rate-limit-rps", str(cfg.rate_limit_rps)]
        if cfg.strict:
            args.append("--strict")
        if cfg.allow_remote:
            args.append("--allow-remote")
        if cfg.tls:
            args.append("--tls")
        if cfg.faults:
            args += ["--faults", json.dumps(cfg.faults)]
        env = dict(os.environ)
        env.update({ENV_KEYS[k]: getattr(cfg, k) for k in ENV_KEYS})
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env)
        if proc.stdout is None:  # pragma: no cover - stdout=PIPE always sets it
            raise OpenCDPError("the sandbox process has no stdout")
        deadline = time.monotonic() + self.startup_timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, remaining))
            if not ready:
                break
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
        try:
            urls = json.loads(line.split(b"\n", 1)[0])
        except ValueError:
            _terminate(proc)
            raise OpenCDPError("the sandbox process did not start (no start-up line)") from None
        self._proc, self.urls = proc, urls

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (idempotent); a hanging request does not hold it up."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._server is not None and self._thread is not None:
            self._server.stop()
            self._thread.join(timeout)
            self._server = self._thread = None
        if self._proc is not None:
            _terminate(self._proc, timeout)
            self._proc = None
        self.urls = {}

    # --- URLs -----------------------------------------------------------------------------
    @property
    def opencdp_url(self) -> str:
        return str(self.urls["opencdp"])

    @property
    def track_url(self) -> str:
        return str(self.urls["customerio_track"])

    @property
    def app_url(self) -> str:
        return str(self.urls["customerio_app"])

    @property
    def admin_url(self) -> str:
        return str(self.urls["admin"])

    @property
    def ca_file(self) -> str | None:
        ca = self.urls.get("ca_file")
        return None if ca is None else str(ca)

    # --- admin API ------------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: Any = None,
               params: dict[str, str] | None = None) -> httpx.Response:
        if self._client is None:
            raise OpenCDPError("the sandbox is not running")
        return self._client.request(method, path, json=body, params=params)

    def _json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        resp = self._admin(method, path, body, **kw)
        if resp.status_code >= 400:
            detail = resp.json().get("error", resp.text) if resp.content else resp.text
            if resp.status_code == 400:
                raise ConfigurationError(f"sandbox admin: {detail}")
            raise OpenCDPError(f"sandbox admin {method} {path}: {resp.status_code} {detail}")
        return resp.json()

    def stats(self) -> dict[str, Any]:
        """``{"opencdp": {...}, "customerio": {...}}``, as ``GET {admin}/stats``."""
        result: dict[str, Any] = self._json("GET", "/stats")
        return result

    def person(self, service: str, id: str) -> dict[str, Any] | None:
        """One stored person (by id, email, ``cio_`` id or phone), or None."""
        if service not in SERVICES:
            raise ConfigurationError(f"unknown service {service!r}; use opencdp or customerio")
        resp = self._admin("GET", f"/people/{quote(service, safe='')}/{quote(str(id), safe='')}")
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def people(self, service: str) -> list[dict[str, Any]]:
        """Every stored person of a service, as a list of person objects."""
        result: list[dict[str, Any]] = self._json("GET", f"/people/{quote(service, safe='')}")
        return result

    def sends(self, service: str, id: str | None = None) -> list[dict[str, Any]]:
        """Transactional sends received, oldest first; ``id`` keeps those to one identifier."""
        params = {"id": id} if id is not None else None
        result: list[dict[str, Any]] = self._json(
            "GET", f"/sends/{quote(service, safe='')}", params=params)
        return result

    def anonymous_events(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", "/anonymous_events")
        return result

    def objects(self) -> list[dict[str, Any]]:
        """Customer.io objects (``object_type_id``, ``object_id``, ``attributes``,
        ``relationships``), as ``GET {admin}/objects``."""
        result: list[dict[str, Any]] = self._json("GET", "/objects")
        return result

    def deliveries(self) -> list[dict[str, Any]]:
        """Delivery metrics and unsubscribes received (``/api/v1/metrics``,
        ``/push/events``, v2 ``delivery`` events, ``/unsubscribe``), oldest first."""
        result: list[dict[str, Any]] = self._json("GET", "/deliveries")
        return result

    def forms(self) -> list[dict[str, Any]]:
        """Form submissions received (``form_id``, ``data``), oldest first."""
        result: list[dict[str, Any]] = self._json("GET", "/forms")
        return result

    def segments(self) -> dict[str, list[str]]:
        """Manual segment id -> the people in it."""
        result: dict[str, list[str]] = self._json("GET", "/segments")
        return result

    def suppressed(self) -> list[dict[str, Any]]:
        """The profiles Customer.io suppressed (deleted, identifiers refused)."""
        result: list[dict[str, Any]] = self._json("GET", "/suppressed")
        return result

    def set_faults(self, faults: dict[str, Any]) -> dict[str, Any]:
        """Merge fault settings per service (``{"customerio": None}`` clears one)."""
        result: dict[str, Any] = self._json("POST", "/faults", faults)
        return result

    def clear_faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("DELETE", "/faults")
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/faults")
        return result

    def reset(self) -> None:
        """Empty the store and counters; faults go back to the start-up settings."""
        self._json("POST", "/reset")

    def diff(self, id: str) -> dict[str, Any]:
        """How one person differs between OpenCDP and Customer.io."""
        result: dict[str, Any] = self._json("GET", f"/diff/{quote(str(id), safe='')}")
        return result

    def send_webhook(self, url: str, signing_key: str, event: dict[str, Any],
                     timestamp: int | str | None = None) -> dict[str, Any]:
        """Have the sandbox POST a signed reporting webhook to a loopback ``url``."""
        body: dict[str, Any] = {"url": url, "signing_key": signing_key, "event": event}
        if timestamp is not None:
            body["timestamp"] = timestamp
        result: dict[str, Any] = self._json("POST", "/webhooks/send", body)
        return result


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()
