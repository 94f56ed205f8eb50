"""The Frameworks page's examples as written, under their real servers: Django and Flask
under gunicorn with the page's hooks, FastAPI under uvicorn with 2 workers, the Celery
example in a prefork worker on Redis.

Each host configures logging its own way (the page's ``logging.basicConfig`` line in
``gunicorn.conf.py``, gunicorn's ``logconfig_dict``, uvicorn's ``--log-config``, Celery's
worker log), and each example, used as written, logs no line at all: no OCDP115 although
nobody identifies. One extra call with an email address as the id then makes an OCDP111
warning (and the gateway's refusal, OCDP303), which must arrive in the host's format with
their level; a bare line would mean Python's last-resort handler printed it. The health
routes answer ``/health``, ``/health/opencdp`` and ``/health/customerio`` directly, never
with a redirect.
"""

from __future__ import annotations

import collections
import http.client
import json
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from support_apps import BIN, Server, free_port
from test_readme_frameworks import blocks, delivered, env, examples, section

WSGI = """import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
from django.core.wsgi import get_wsgi_application
application = get_wsgi_application()
"""
GUNICORN_LOGGING = '\nlogconfig_dict = {"root": {"level": "INFO", "handlers": ["console"]}}\n'
GUNICORN_LINE = re.compile(r"^\[[^]]+\] \[\d+\] \[(WARNING|ERROR)\] \[CDP\] OCDP\d{3} ")
BASIC_LINE = re.compile(r"^\d{4}-\d\d-\d\d \S+ (WARNING|ERROR) opencdp: \[CDP\] OCDP\d{3} ")
UVICORN_LOGGING = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"host": {"format": "HOST %(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "host"}},
    "root": {"level": "INFO", "handlers": ["console"]},
}
UVICORN_LINE = re.compile(r"^HOST \S+ \S+ (WARNING|ERROR) opencdp: \[CDP\] OCDP\d{3} ")
CELERY_INFO = re.compile(r"^\[[^]]+: INFO/ForkPoolWorker-\d+\] \[CDP\] OCDP342 ")
OURS = re.compile(r"^.*OCDP\d{3}.*$", re.M)


def write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        (tmp_path / name).write_text(source)
    (tmp_path / "sitecustomize.py").write_text("import readme_env  # noqa: F401\n")


def request(port: int, method: str, path: str,
            form: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request's status and body, redirects not followed."""
    body = urllib.parse.urlencode(form).encode() if form is not None else None
    headers = {"content-type": "application/x-www-form-urlencoded"} if form is not None else {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def serve(sandbox: Any, argv: list[str], tmp_path: Path, port: int, signup: Any,
          users: list[str], line: re.Pattern[str]) -> None:
    """Start the server, check its health routes, sign ``users`` up (nothing may be logged),
    sign an email address up (an OCDP111 line in the host's format), stop it with SIGTERM."""
    server = Server(argv, env(sandbox, tmp_path), tmp_path / "server.log", cwd=tmp_path)
    try:
        server.wait_http(f"http://127.0.0.1:{port}/health")
        for path, body in (("/health", "status"), ("/health/opencdp", "opencdp"),
                           ("/health/customerio", "customerio")):
            status, answer = request(port, "GET", path)
            assert status == 200 and body in json.loads(answer), (path, status, answer)
        for user in users:
            assert signup(port, user)[0] == 200, server.output()[-3000:]
        time.sleep(0.5)
        assert OURS.findall(server.output()) == [], server.output()[-3000:]
        assert signup(port, "someone@example.com")[0] == 200
        time.sleep(0.5)
        server.term()
        assert server.wait(40) == 0, server.output()[-3000:]
    except OSError as exc:
        raise AssertionError(server.output()[-3000:]) from exc
    finally:
        server.kill()
    ours = OURS.findall(server.output())
    assert all(line.match(text) for text in ours), ours
    assert any(" OCDP111 " in text for text in ours), server.output()[-3000:]
    for user in users:
        delivered(sandbox, user, "signed_up")


def form_signup(port: int, user: str) -> tuple[int, bytes]:
    return request(port, "POST", "/signup", {"user_id": user})


def query_signup(port: int, user: str) -> tuple[int, bytes]:
    return request(port, "POST", f"/signup?{urllib.parse.urlencode({'user_id': user})}")


def test_django_under_gunicorn(sandbox: Any, tmp_path: Path) -> None:
    files = {**examples("Django"), **examples("gunicorn")}
    files["gunicorn.conf.py"] += "\n" + blocks("Logs")[0]
    write(tmp_path, {**files, "wsgi.py": WSGI})
    port = free_port()
    argv = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--preload", "wsgi",
            "-b", f"127.0.0.1:{port}"]
    serve(sandbox, argv, tmp_path, port, form_signup,
          [f"django-{i}" for i in range(6)], BASIC_LINE)


def test_flask_under_gunicorn_as_the_readme_runs_it(sandbox: Any, tmp_path: Path) -> None:
    files = {**examples("gunicorn"), **examples("Flask")}
    files["gunicorn.conf.py"] += GUNICORN_LOGGING
    write(tmp_path, files)
    command = re.search(r"\$ (gunicorn [^\n]+)", section("Frameworks"))
    assert command is not None
    port = free_port()
    argv = [str(BIN / "gunicorn"), *command.group(1).split()[1:], "-b", f"127.0.0.1:{port}"]
    serve(sandbox, [a.strip('"') for a in argv], tmp_path, port,
          form_signup, [f"flask-{i}" for i in range(6)], GUNICORN_LINE)


def test_fastapi_under_uvicorn(sandbox: Any, tmp_path: Path) -> None:
    write(tmp_path, examples("FastAPI and Starlette"))
    (tmp_path / "logging.json").write_text(json.dumps(UVICORN_LOGGING))
    port = free_port()
    argv = [str(BIN / "uvicorn"), "main:app", "--workers", "2", "--host", "127.0.0.1",
            "--port", str(port), "--log-config", "logging.json"]
    serve(sandbox, argv, tmp_path, port, query_signup,
          [f"fastapi-{i}" for i in range(6)], UVICORN_LINE)


CELERY_TASKS = 600


@pytest.mark.redis
def test_celery_worker_stopped_under_latency_loses_nothing(
        sandbox: Any, tmp_path: Path, redis_url: str) -> None:
    """600 tasks run, 300 ms of gateway latency, SIGTERM while the children still deliver
    and a ``shutdown_timeout`` too short to drain: the durable queue keeps what was not
    delivered and the next worker delivers it, every task once on both platforms. (A child
    may outlive the SIGTERM by up to 30 s in billiard's wait for the parent to read its
    results, delivering all along: its client is closed only after that wait.)"""
    from celery import Celery

    write(tmp_path, examples("Celery"))
    environ = {**env(sandbox, tmp_path), "CELERY_BROKER_URL": redis_url,
               "OPENCDP_SHUTDOWN_TIMEOUT": "0.3", "PYTHONUNBUFFERED": "1"}
    publisher = Celery("publisher", broker=redis_url)
    publisher.control.purge()
    users = [f"celery-{i}" for i in range(CELERY_TASKS)]
    sandbox.set_faults({"opencdp": {"latency_ms": 300}})
    first = celery_worker(environ, tmp_path, "first.log")
    try:
        for user in users:
            publisher.send_task("tasks.welcome", args=[user])
        deadline = time.monotonic() + 60
        while first.output().count(" succeeded in ") < CELERY_TASKS:
            assert first.proc.poll() is None and time.monotonic() < deadline, first.output()
            time.sleep(0.05)
        first.term()
        assert first.wait(40) == 0, first.output()[-3000:]
    finally:
        first.kill()
    ran = first.output().count(" succeeded in ")
    left = ran - len(welcomed(sandbox, "opencdp"))
    assert left > 0, "the stop left nothing for the next worker to deliver"
    sandbox.clear_faults()
    second = celery_worker(environ, tmp_path, "second.log")
    try:
        wait_stored_users(sandbox, set(users))
        second.term()
        assert second.wait(40) == 0, second.output()[-3000:]
    finally:
        second.kill()
        publisher.close()
    assert welcomed(sandbox, "customerio") == collections.Counter(set(users))
    ids = welcomed_ids(sandbox, "opencdp")
    assert set(ids) == set(users)
    assert all(len(set(copies)) == 1 for copies in ids.values()), ids
    ours = OURS.findall(first.output() + second.output())
    assert all(CELERY_INFO.match(text) for text in ours), ours
    print(f"celery: {ran} tasks ran, {left} undelivered when the worker stopped, "
          f"all {CELERY_TASKS} delivered once after the restart")


def celery_worker(environ: dict[str, str], tmp_path: Path, log: str) -> Server:
    server = Server([str(BIN / "celery"), "-A", "tasks", "worker", "--pool", "prefork",
                     "--concurrency", "2", "--loglevel", "info", "--without-gossip",
                     "--without-mingle", "--without-heartbeat"], environ, tmp_path / log,
                    cwd=tmp_path)
    deadline = time.monotonic() + 30
    while "ready." not in server.output():
        assert server.proc.poll() is None and time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    return server


def welcomed_ids(sandbox: Any, service: str) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = collections.defaultdict(list)
    for person in sandbox.people(service):
        ids[person["id"]].extend(str(e["id"]) for e in person["events"]
                                 if e["name"] == "welcome_sent")
    return {user: copies for user, copies in ids.items() if copies}


def welcomed(sandbox: Any, service: str) -> collections.Counter[str]:
    return collections.Counter({u: len(c) for u, c in welcomed_ids(sandbox, service).items()})


def wait_stored_users(sandbox: Any, users: set[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(set(welcomed(sandbox, s)) >= users for s in ("opencdp", "customerio")):
            return
        time.sleep(0.2)

