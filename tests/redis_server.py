"""A real ``redis-server`` for the tests: found, installed if we may, started on a free port.

The server runs with no persistence (no RDB, no AOF) on 127.0.0.1 only, in a temporary
directory, and is stopped when the test session ends. Under ``CI=true`` failing to get one is
an error, never a skip; elsewhere, without root to install it, the tests that need it skip with
a message saying how to enable them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RedisUnavailable", "RestartableRedis", "find_or_install_redis", "running_redis"]

_HOW_TO = (
    "install redis-server (e.g. 'sudo apt-get install -y redis-server' or 'brew install redis') "
    "or run the tests as root so the test run installs it"
)


class RedisUnavailable(RuntimeError):
    """No redis-server could be found, installed or started."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _which() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _apt(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(
        ["apt-get", *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def find_or_install_redis() -> str:
    """Path of a redis-server binary; installs the Debian package when root and missing."""
    found = _which()
    if found:
        return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RedisUnavailable(f"redis-server is not installed; {_HOW_TO}")
    result = _apt("install", "-y", "--no-install-recommends", "redis-server", timeout=600)
    if result.returncode != 0:
        _apt("update", timeout=600)
        result = _apt("install", "-y", "--no-install-recommends", "redis-server", timeout=600)
    found = _which()
    if result.returncode != 0 or not found:
        raise RedisUnavailable(
            "apt-get install redis-server failed: " + (result.stderr or result.stdout)[-2000:]
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis(startup_timeout: float = 20.0) -> Iterator[str]:
    """Start a throw-away redis-server and yield its ``redis://127.0.0.1:PORT/0`` URL."""
    binary = find_or_install_redis()
    workdir = Path(tempfile.mkdtemp(prefix="opencdp-redis-"))
    last_error = ""
    for _ in range(3):  # the free port may be taken between probe and bind
        port = _free_port()
        proc = subprocess.Popen(
            [
                binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no",
                "--protected-mode", "yes", "--loglevel", "warning",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and proc.poll() is None and not _ping(port):
            time.sleep(0.02)
        if proc.poll() is None and _ping(port):
            try:
                yield f"redis://127.0.0.1:{port}/0"
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
                if proc.stdout is not None:
                    proc.stdout.close()
                shutil.rmtree(workdir, ignore_errors=True)
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            last_error = proc.stdout.read().decode(errors="replace")[-2000:]
            proc.stdout.close()
    shutil.rmtree(workdir, ignore_errors=True)
    raise RedisUnavailable(f"redis-server did not start: {last_error}")


class RestartableRedis:
    """A redis-server on a fixed loopback port that a test stops, pauses and restarts.

    ``persist=True`` keeps an append-only file in its directory, so a restart comes back
    with the data; otherwise a restart comes back empty (streams and groups gone).
    """

    def __init__(self, persist: bool = False) -> None:
        self.binary = find_or_install_redis()
        self.persist = persist
        self.workdir = Path(tempfile.mkdtemp(prefix="opencdp-redis-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RestartableRedis:
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else [
            "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *aof, "--dir", str(self.workdir), "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not _ping(self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RedisUnavailable(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(19)  # SIGSTOP: connections stay open, nothing answers

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(18)  # SIGCONT

    def flushall(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(64)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = _free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RedisUnavailable("no free pair of ports for a cluster node")


def _ask(port: int, *command: str, timeout: float = 2.0) -> str:
    """One command over redis-cli's protocol-free path: a raw inline command and its reply."""
    cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
    result = subprocess.run([cli, "-p", str(port), *command], capture_output=True, text=True,
                            timeout=timeout, check=False)
    return result.stdout


class _NodeDown(RuntimeError):
    """A cluster that could not be started on the ports chosen."""


class RedisCluster:
    """Six ``redis-server --cluster-enabled yes`` on loopback: three masters, one replica
    each, joined by ``redis-cli --cluster create``. A test kills a master (SIGKILL) and waits
    for its replica's promotion with ``wait_failover``."""

    NODE_TIMEOUT_MS = 1000

    def __init__(self, nodes: int = 6) -> None:
        self.binary = find_or_install_redis()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisUnavailable(f"redis-cli is not installed; {_HOW_TO}")
        self.cli = cli
        self.workdir = Path(tempfile.mkdtemp(prefix="opencdp-cluster-"))
        self.count = nodes
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{next(iter(self.procs))}/"

    def start(self, timeout: float = 60.0, attempts: int = 3) -> RedisCluster:
        """Start and join the nodes; a node that cannot bind (its free port was taken
        meanwhile) makes it try again on new ports. Failing to start is a ``RuntimeError``:
        only a missing binary is ``RedisUnavailable`` (a skip outside CI)."""
        for attempt in range(attempts):
            try:
                return self._start(timeout)
            except _NodeDown:
                self.close()
                self.workdir = Path(tempfile.mkdtemp(prefix="opencdp-cluster-"))
                self.procs = {}
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> RedisCluster:
        for _ in range(self.count):
            port = _free_cluster_port()
            home = self.workdir / str(port)
            home.mkdir()
            self.procs[port] = subprocess.Popen(
                [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(home), "--daemonize", "no",
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", str(self.NODE_TIMEOUT_MS),
                 "--repl-diskless-sync-delay", "0", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        for port, proc in self.procs.items():
            while not _ping(port):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise _NodeDown(f"cluster node on port {port} did not start")
                time.sleep(0.02)
        created = subprocess.run(
            [self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.procs),
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout, check=False)
        if created.returncode != 0:
            raise _NodeDown(f"redis-cli --cluster create failed: {created.stdout[-2000:]}"
                                   f"{created.stderr[-2000:]}")
        self.wait_ok(deadline - time.monotonic())
        while not self.replicas_synced():
            if time.monotonic() > deadline:
                raise _NodeDown("the cluster's replicas did not sync with their masters")
            time.sleep(0.05)
        return self

    def replicas_synced(self) -> bool:
        """Every replica's link to its master is up (only then can it be promoted)."""
        infos = [_ask(p, "INFO", "replication") for p in self.live()]
        replicas = [i for i in infos if "role:slave" in i]
        return len(replicas) == self.count // 2 and all(
            "master_link_status:up" in i for i in replicas)

    def live(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def masters(self) -> list[int]:
        """Ports of the live masters that serve slots, as the cluster sees them."""
        for port in self.live():
            lines = _ask(port, "CLUSTER", "NODES").splitlines()
            if not lines:
                continue
            found = []
            for line in lines:
                fields = line.split()
                flags = fields[2].split(",")
                if "master" in flags and not {"fail", "fail?"} & set(flags) and len(fields) > 8:
                    found.append(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
            return sorted(found)
        return []

    def wait_ok(self, timeout: float) -> None:
        """Until every live node says cluster_state:ok and every slot has a live master."""
        deadline = time.monotonic() + max(1.0, timeout)
        while True:
            states = [_ask(p, "CLUSTER", "INFO") for p in self.live()]
            if states and all("cluster_state:ok" in s and "cluster_slots_ok:16384" in s
                              for s in states):
                return
            if time.monotonic() > deadline:
                raise _NodeDown(f"the cluster did not settle: {states}")
            time.sleep(0.1)

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait(timeout=10)

    def wait_failover(self, killed: int, timeout: float = 30.0) -> int:
        """Wait until a replica took over the killed master's slots; returns its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            masters = self.masters()
            if killed not in masters and len(masters) == 3:
                try:
                    self.wait_ok(0.5)
                except _NodeDown:
                    continue
                (promoted,) = set(masters) - set(self.first_masters)
                return promoted
            time.sleep(0.1)
        raise AssertionError(f"no replica took over from {killed} within {timeout} s")

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisCluster:
        self.start()
        self.first_masters = self.masters()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
