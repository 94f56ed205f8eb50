"""The relay beyond one process: ``opencdp serve --workers N`` and ``--ingest-only``.

``--workers N`` runs N relay processes on one port, forked from a small supervisor.

- **SO_REUSEPORT, not uvicorn's workers.** Each process binds its own socket to the port with
  ``SO_REUSEPORT``, so the kernel spreads new connections over the processes by a hash of
  their addresses. With one inherited listening socket (what ``uvicorn --workers`` and gunicorn
  share) the processes race for each connection, and the split is often uneven (a known
  behaviour of accept on a shared socket; not measured here). uvicorn's supervisor also
  imports the app from a string in each process, which would lose what ``RelayServer``
  adds (the read timeouts answered 408, the start-up line once every process is ready, exit
  status 0 after a drain). Where the platform has no SO_REUSEPORT, ``--workers`` above 1 is
  refused rather than silently unbalanced.
- **fork, after the supervisor has opened nothing.** The supervisor checks the queue and
  reserves the port, then forks; each child builds its own app, client and engine (the
  lifespan starts them), so no thread, connection or event loop crosses the fork. The
  supervisor never imports prometheus_client, so a child's metrics are file-backed from the
  start (below).
- **The queue.** A Redis queue is shared by design. A SQLite file is too: the SQLite outbox is
  safe for several processes on one host (leases carry the owner's pid and start time, and a
  dead process's leases are reclaimed by the others at once), so every process writes and
  delivers from the same file; a durable write still returns only once committed. A memory
  queue would be one queue per process: refused, since a process that dies takes its
  messages with it and nothing tells the caller.
- **Stopping.** SIGTERM or SIGINT to the supervisor is passed on as SIGTERM to every process;
  each stops accepting, finishes its requests, drains its client within ``--drain-timeout``
  and exits 0 when drained (3 when not). The supervisor prints ``drained: true`` only when
  every process did. A process that dies otherwise (a crash, kill -9) is logged (OCDP395) and
  replaced; a connection it held is reset, and what it answered 2xx is in the queue.
- **Health and metrics.** ``/health`` is the answering process's, with a ``relay`` section
  naming the process (index, count, pid) and the mode. ``/metrics`` adds up every process's
  values through prometheus_client's multiprocess mode (a directory the supervisor creates
  when ``PROMETHEUS_MULTIPROC_DIR`` is not set), so a scrape that lands on any process sees
  the whole relay, and counters never go backwards between scrapes.

``--ingest-only`` stores and answers: the relay's client starts no delivery (its queue is
delivered by ``opencdp worker`` processes), and transactional sends, which are forwarded at
once and never queued, go through a second client on a memory queue that delivers nothing
else. Its health says ``"mode": "ingest-only"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ..errors import ConfigurationError
from .config import ServerConfig

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ..client import Client

__all__ = ["PROCESS_ENV", "Supervisor", "bind_shared", "health_with_relay", "process_info",
           "start_extras"]

logger = logging.getLogger("opencdp.server")

PROCESS_ENV = "OPENCDP_RELAY_PROCESS"
"""``index/count`` in a process started by the supervisor (unset in a single relay)."""

NOT_DRAINED = 3


def process_info() -> tuple[int, int]:
    """(index, count) of this relay process; (0, 1) when it runs alone."""
    raw = os.environ.get(PROCESS_ENV, "")
    index, _, count = raw.partition("/")
    if index.isdigit() and count.isdigit() and int(count) > 0:
        return int(index), int(count)
    return 0, 1


def bind_shared(host: str, port: int) -> socket.socket:
    """A socket on ``host:port`` that other processes of this user may bind too
    (SO_REUSEPORT): the kernel balances connections between their listening sockets."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigurationError("--workers above 1 needs SO_REUSEPORT, which this platform "
                                 "lacks; run one relay process per port behind a balancer")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"relay: cannot listen on {host}:{port}: {exc.strerror}") \
            from None
    return sock


# inside each relay process ----------------------------------------------------------------
class Relay(Protocol):
    """What this module uses of the relay (``app.Relay``). A protocol, not that class: the
    relay's app imports this module, so naming it here made the two import each other."""

    config: ServerConfig
    sender: Client | None

    def start_multiprocess_metrics(self, client: Client) -> Any: ...


class _HealthWithRelay:
    """A class, not a function: Starlette's ``Route`` takes a plain function for a
    request-response endpoint, and an object for an ASGI app."""

    def __init__(self, health: ASGIApp, relay: Relay) -> None:
        self.health = health
        self.relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: dict[str, Any] = {}
        relay = self.relay

        async def intercept(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            body = message.get("body", b"")
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            if body:
                with contextlib.suppress(orjson.JSONDecodeError, TypeError):
                    data = orjson.loads(body)
                    if isinstance(data, dict):
                        data["relay"] = relay_section(relay)
                        body = orjson.dumps(data)
                headers.append((b"content-length", str(len(body)).encode()))
            headers.append((b"x-opencdp-relay-process", _process_header()))
            await send({**start, "headers": headers})
            await send({**message, "body": body})

        await self.health(scope, receive, intercept)


def health_with_relay(health: ASGIApp, relay: Relay) -> ASGIApp:
    """The health endpoint, its JSON extended with ``relay``: which process answered and
    whether it delivers. The status code is the client's, unchanged. (A HEAD answer keeps
    no content-length: its body is not sent, and its length is no longer known.)"""
    return _HealthWithRelay(health, relay)


def _process_header() -> bytes:
    index, count = process_info()
    return f"{index}/{count} pid={os.getpid()}".encode()


def relay_section(relay: Relay) -> dict[str, Any]:
    index, count = process_info()
    ingest_only = relay.config.ingest_only
    return {
        "mode": "ingest-only" if ingest_only else "deliver",
        "delivers": not ingest_only,
        "note": ("stores and answers only: `opencdp worker` processes on the same queue "
                 "deliver it") if ingest_only else None,
        "process": index, "processes": count, "pid": os.getpid(),
    }


async def start_extras(relay: Relay, client: Client) -> Callable[[], Any]:
    """What a relay process runs beside its client: the sends' client when ingest-only, and
    the periodic metrics write in multiprocess mode. Returns the coroutine function that
    stops them."""
    sender: Client | None = None
    if relay.config.ingest_only:
        from ..client import Client as _Client

        sender = await asyncio.to_thread(_Client, config=relay.config.client_config()
                                         .with_options(queue="memory", start_worker=True))
        relay.sender = sender
    task: asyncio.Task[None] | None = None
    writer = relay.start_multiprocess_metrics(client)
    if writer is not None:
        async def periodically() -> None:
            while True:
                await asyncio.sleep(5.0)
                try:
                    await asyncio.to_thread(writer.write)
                except Exception as exc:  # the next period tries again
                    logger.error("relay metrics: writing the multiprocess files failed: %s",
                                 type(exc).__name__)

        task = asyncio.get_running_loop().create_task(periodically())

    async def stop() -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(writer.close)
        if sender is not None:
            await asyncio.to_thread(sender.close, relay.config.drain_timeout)

    return stop


# the supervisor -----------------------------------------------------------------------------
class Supervisor:
    """Forks ``workers`` relay processes on one port and keeps them running until a signal.

    ``run()`` returns True when every process drained. ``on_started(urls)`` is called once
    all of them accept connections, with the first one's ``RelayServer.urls``.
    """

    def __init__(self, config: ServerConfig, workers: int, *, log_level: str = "info",
                 on_started: Callable[[dict[str, Any]], None] | None = None,
                 ready_timeout: float = 60.0) -> None:
        if workers < 2:
            raise ConfigurationError("a Supervisor runs 2 or more relay processes")
        if config.queue.split(":", 1)[0].lower() == "memory":
            raise ConfigurationError(
                "--workers needs a queue the processes share (sqlite:///path or "
                "redis://host:port/db): a memory queue would be one per process")
        self.config = config
        self.workers = workers
        self.log_level = log_level
        self.on_started = on_started
        self.ready_timeout = ready_timeout
        self.children: dict[int, int] = {}  # pid -> index
        self.exits: dict[int, int] = {}  # index -> exit status once stopping
        self.restarts = 0
        self._stopping = False
        self._metrics_dir: str | None = None
        self._reserve: socket.socket | None = None

    def run(self) -> bool:
        reserve = bind_shared(self.config.host, self.config.port)
        port = reserve.getsockname()[1]
        self.config = self.config.with_options(port=port)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self._metrics_dir = tempfile.mkdtemp(prefix="opencdp-relay-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = self._metrics_dir
        read, write = os.pipe()
        # A process started later (a replacement) writes its line to nobody: never block it.
        os.set_blocking(write, False)
        self._reserve = reserve
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.workers):
                self._spawn(index, write)
            urls = self._wait_ready(read)
            reserve.close()
            if self.on_started is not None:
                self.on_started(urls)
            return self._watch(write)
        finally:
            reserve.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._kill_all(signal.SIGKILL)
            os.close(read)
            os.close(write)
            if self._metrics_dir is not None:
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
                shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stopping = True
        self._kill_all(signal.SIGTERM)

    def _kill_all(self, sig: int) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if sig == signal.SIGKILL:
            for pid in list(self.children):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                self.children.pop(pid, None)

    def _spawn(self, index: int, ready: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            self.children[pid] = index
            return
        code = 1
        try:  # the child: never returns into the supervisor's code
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            if self._reserve is not None:
                self._reserve.close()
            os.environ[PROCESS_ENV] = f"{index}/{self.workers}"
            code = _serve_child(self.config, self.log_level, ready)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                sys.stderr.write(f"relay process {index}: {type(exc).__name__}: {exc}\n")
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def _wait_ready(self, read: int) -> dict[str, Any]:
        """Each process writes its URLs as one JSON line (atomic: shorter than PIPE_BUF)
        once it accepts connections."""
        import selectors

        deadline = time.monotonic() + self.ready_timeout
        lines = b""
        with selectors.DefaultSelector() as sel:
            sel.register(read, selectors.EVENT_READ)
            while lines.count(b"\n") < self.workers:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    started = lines.count(b"\n")
                    raise ConfigurationError("the relay processes did not all start "
                                             f"({started} of {self.workers} ready)")
                if sel.select(min(left, 0.2)):
                    lines += os.read(read, 65536)
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid:
                    self.children.pop(pid, None)
                    raise ConfigurationError(
                        f"a relay process exited while starting (status "
                        f"{os.waitstatus_to_exitcode(status)}); see its error above")
        first: dict[str, Any] = orjson.loads(lines.split(b"\n", 1)[0])
        return first

    def _watch(self, ready: int) -> bool:
        deadline: float | None = None
        while self.children:
            if self._stopping and deadline is None:
                deadline = time.monotonic() + 2 * self.config.drain_timeout + 15
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                if deadline is not None and time.monotonic() > deadline:
                    logger.error("relay: processes still draining after %.0f s; killed",
                                 2 * self.config.drain_timeout + 15)
                    for index in self.children.values():
                        self.exits[index] = -9
                    self._kill_all(signal.SIGKILL)
                    break
                time.sleep(0.05)
                continue
            index = self.children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if self._stopping:
                self.exits[index] = code
                continue
            self.restarts += 1
            logger.error("[CDP] OCDP395 relay process %d (pid %d) exited with %s; started "
                         "another in its place", index, pid,
                         f"signal {-code}" if code < 0 else f"status {code}")
            self._spawn(index, ready)
        return bool(self.exits) and all(code == 0 for code in self.exits.values())


def _serve_child(config: ServerConfig, log_level: str, ready: int) -> int:
    from .runner import RelayServer

    sock = bind_shared(config.host, config.port)
    holder: list[RelayServer] = []
    try:
        server = RelayServer(config, sock=sock, log_level=log_level, quiet_logging=False,
                             on_started=lambda: _signal_ready(ready, holder[0].urls))
    except BaseException:
        sock.close()
        raise
    holder.append(server)
    server.run()
    return 0 if server.drained else NOT_DRAINED


def _signal_ready(fd: int, urls: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, orjson.dumps(urls) + b"\n")
