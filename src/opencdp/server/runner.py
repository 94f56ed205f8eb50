"""Running the relay: a bound socket, the app, and uvicorn, in this thread or a background one.

The socket is bound before uvicorn starts, so ``port=0`` yields a known port and the URLs can
be announced as soon as the lifespan has started the client. In the main thread SIGTERM and
SIGINT stop the server gracefully (no new connections, requests in flight finished within
``drain_timeout``, then the client drains); unlike plain uvicorn, the signal is not raised
again afterwards, so a drained relay exits with status 0.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator

from ..errors import OpenCDPError
from ..serving import bind, request_timeout_answer, timed_protocol, uvicorn_choice
from .app import Relay, create_app
from .config import ServerConfig
from .gateway import GATEWAY_PREFIX

__all__ = ["READ_TIMEOUT", "RelayServer"]

READ_TIMEOUT = 30.0


class RelayServer:
    """One relay on one socket. ``run()`` serves until stopped; ``start()``/``stop()`` (or
    ``with``) serve from a background thread, for tests and embedding."""

    def __init__(self, config: ServerConfig, *, on_started: Callable[[], None] | None = None,
                 log_level: str = "warning", quiet_logging: bool = True,
                 read_timeout: float = READ_TIMEOUT, sock: socket.socket | None = None) -> None:
        """``read_timeout``: seconds a client may take to send a request's headers, or to
        send the next part of its body, before it is answered 408 and disconnected. ``sock``:
        a socket already bound to the port (one of several processes sharing it, scale.py)."""
        import uvicorn

        self.config = config
        self.sock = sock if sock is not None else bind(config.host, config.port, "relay")
        self.port: int = self.sock.getsockname()[1]
        host = f"[{config.host}]" if ":" in config.host else config.host
        self.url = f"{config.scheme}://{host}:{self.port}"
        try:
            self.app = create_app(config)
        except BaseException:
            self.sock.close()
            raise
        self.relay: Relay = self.app.state.relay
        loop, http = uvicorn_choice()
        answer = request_timeout_answer(
            b'{"message":"request timeout: the request did not arrive in time"}')
        uv_config = uvicorn.Config(
            self.app, loop=loop, http=timed_protocol(http, read_timeout, lambda _path: answer),
            lifespan="on", access_log=False,
            log_level=log_level,
            log_config=None if quiet_logging else uvicorn.config.LOGGING_CONFIG,
            timeout_graceful_shutdown=max(1, round(config.drain_timeout)),
            server_header=False, ws="none",
            ssl_certfile=config.tls_cert_file, ssl_keyfile=config.tls_key_file,
        )
        self.started = threading.Event()

        outer = self

        class _Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if not self.should_exit:
                    outer.started.set()
                    if on_started is not None:
                        on_started()

            @contextlib.contextmanager
            def capture_signals(self) -> Generator[None, None, None]:
                if threading.current_thread() is not threading.main_thread():
                    yield
                    return
                handled = (signal.SIGINT, signal.SIGTERM)
                previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
                try:
                    yield
                finally:
                    for sig, handler in previous.items():
                        signal.signal(sig, handler)

        self.server = _Server(uv_config)
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<RelayServer {self.url}>"

    @property
    def urls(self) -> dict[str, str | None]:
        """Base URL first, then each surface; ``webhooks`` is None without a signing key."""
        return {
            "url": self.url,
            "gateway": self.url + GATEWAY_PREFIX,
            "health": self.url + "/health",
            "metrics": self.url + "/metrics",
            "webhooks": (self.url + "/webhooks/customerio"
                         if self.config.webhook_signing_key is not None else None),
            "dashboard": self.url + "/dashboard/",
        }

    @property
    def drained(self) -> bool | None:
        """Whether the client delivered everything at shutdown (None while running)."""
        return self.relay.drained

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT (main thread) or ``stop()``; then drain and return.

        Raises ``OpenCDPError`` when the app could not start (e.g. the queue cannot be opened).
        """
        code: object = None
        try:
            self.server.run(sockets=[self.sock])
        except SystemExit as exc:  # uvicorn's way of saying the app could not start
            code = exc.code
        finally:
            self.close()
        error = self.relay.startup_error
        if error is not None:
            raise OpenCDPError(f"the relay did not start: {error}") from error
        if code not in (None, 0):
            raise OpenCDPError(f"the relay stopped (uvicorn exit status {code})")

    def start(self, timeout: float = 20.0) -> RelayServer:
        if self._thread is not None:
            return self
        thread = threading.Thread(target=self._run_quietly, name="opencdp-relay", daemon=True)
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not self.started.wait(0.05):
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                error = self.relay.startup_error
                raise OpenCDPError(
                    "the relay did not start" + (f": {error}" if error else "")
                ) from error
        return self

    def _run_quietly(self) -> None:
        with contextlib.suppress(OpenCDPError):
            self.run()

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully and wait (at most ``timeout``, by default enough for the drain)."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.config.drain_timeout * 2
                              + 5)
            self._thread = None
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RelayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
