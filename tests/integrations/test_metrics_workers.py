"""``metrics_routes()`` under a real uvicorn: one process, and ``--workers 2`` in
prometheus_client's multiprocess mode, where every scrape must count every worker's
deliveries whichever worker answers it."""

from __future__ import annotations

import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from support_apps import BIN, Server, app_env, free_port, wait_stored

DESTINATIONS = ("opencdp", "customerio")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def uvicorn(port: int, *workers: str) -> list[str]:
    return [str(BIN / "uvicorn"), "fastapi_metrics_app:app", *workers, "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--timeout-graceful-shutdown", "20"]


@pytest.fixture
def server_env(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return app_env(sandbox)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, destination: str) -> float:
    """``name`` summed over its other labels, for one destination."""
    return sum(v for (n, labels), v in samples.items()
               if n == name and ("destination", destination) in labels)


def scrape(base: str) -> tuple[str, str, Samples]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:  # noqa: S310
        assert resp.status == 200
        body = resp.read().decode()
        return resp.headers["X-Worker-Pid"], resp.headers["Content-Type"], parse(body)


def track(base: str, i: int) -> str:
    request = urllib.request.Request(f"{base}/track/{i}", method="POST",  # noqa: S310
                                     data=b"")
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        assert resp.status == 200
        return str(resp.headers["X-Worker-Pid"])


def send(base: str, minimum: int, most: int, workers: int) -> tuple[int, dict[str, int]]:
    """POST ``/track/<i>`` from 8 threads until at least ``minimum`` were sent and ``workers``
    worker processes answered some (at most ``most``); returns the count and who answered."""
    answered: dict[str, int] = {}
    lock = threading.Lock()
    sent = 0

    def run() -> None:
        nonlocal sent
        while True:
            with lock:
                if sent >= most or (sent >= minimum and len(answered) >= workers):
                    return
                i = sent
                sent += 1
            pid = track(base, i)
            with lock:
                answered[pid] = answered.get(pid, 0) + 1

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return sum(answered.values()), answered


def delivered(samples: Samples) -> dict[str, float]:
    return {d: total(samples, "opencdp_messages_delivered_total", d) for d in DESTINATIONS}


@pytest.fixture
def started() -> Iterator[list[Server]]:
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.kill()


def test_metrics_route_without_a_lifespan_of_ones_own(
        sandbox: Any, tmp_path: Path, server_env: dict[str, str],
        started: list[Server]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(uvicorn(port), server_env, tmp_path / "server.log")
    started.append(server)
    server.wait_http(f"{base}/health/opencdp")
    count, _ = send(base, 12, 12, 1)
    assert count == 12
    wait_stored(sandbox, set(range(count)), timeout=30)
    deadline = time.monotonic() + 10
    while True:  # stored by the sandbox a moment before the lane counts the answer
        _, content_type, samples = scrape(base)
        if delivered(samples) == {d: count for d in DESTINATIONS} or \
                time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert content_type.startswith("text/plain"), content_type
    assert delivered(samples) == {d: count for d in DESTINATIONS}
    for dest in DESTINATIONS:
        assert total(samples, "opencdp_messages_dispatched_total", dest) == count
        assert total(samples, "opencdp_requests_total", dest) == \
            total(samples, "opencdp_request_duration_seconds_count", dest) > 0
        assert total(samples, "opencdp_queue_pending", dest) == 0
    server.term()
    # uvicorn's single process re-raises the SIGTERM it shut down gracefully on
    assert server.wait(40) in (0, -signal.SIGTERM), server.output()[-3000:]


def test_workers_scrapes_count_every_worker(
        sandbox: Any, tmp_path: Path, server_env: dict[str, str],
        started: list[Server]) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()  # empty, as a deployment's must be at start
    env = {**server_env, "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
           "APP_METRICS_INTERVAL": "0.5"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(uvicorn(port, "--workers", "2"), env, tmp_path / "server.log")
    started.append(server)
    server.wait_http(f"{base}/health/opencdp")
    count, answered = send(base, 40, 400, 2)
    assert len(answered) == 2, f"one worker answered all {count} calls: {answered}"
    wait_stored(sandbox, set(range(count)), timeout=30)
    want = {d: float(count) for d in DESTINATIONS}

    deadline = time.monotonic() + 15  # one write period after the last delivery
    while True:
        pid, _, samples = scrape(base)
        if delivered(samples) == want or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert delivered(samples) == want, (delivered(samples), answered)

    scraped_by: dict[str, int] = {}
    for _ in range(100):
        pid, content_type, samples = scrape(base)
        scraped_by[pid] = scraped_by.get(pid, 0) + 1
        assert content_type.startswith("text/plain"), content_type
        assert delivered(samples) == want, (pid, delivered(samples), answered)
        for dest in DESTINATIONS:
            assert total(samples, "opencdp_messages_dispatched_total", dest) == count
            assert total(samples, "opencdp_requests_total", dest) == \
                total(samples, "opencdp_request_duration_seconds_count", dest) > 0
            assert total(samples, "opencdp_queue_pending", dest) == 0
            assert total(samples, "opencdp_circuit_state", dest) == 0
        if len(scraped_by) == 2 and sum(scraped_by.values()) >= 10:
            break
    assert set(scraped_by) == set(answered), (scraped_by, answered)

    server.term()
    assert server.wait(40) == 0, server.output()[-3000:]
    # Each worker's shutdown wrote its last values and removed its live gauges; the
    # counters stay, summed.
    assert not list(multiproc.glob("gauge_live*")), sorted(p.name for p in multiproc.iterdir())
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(multiproc))
    after = parse_registry(registry)
    assert delivered(after) == want


def parse_registry(registry: CollectorRegistry) -> Samples:
    samples: Samples = {}
    for family in registry.collect():
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette")
def test_metrics_route_serves_a_given_registry_and_needs_the_lifespan(sandbox: Any) -> None:
    from prometheus_client import REGISTRY
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from health.support import client_options
    from opencdp import AsyncClient
    from opencdp.errors import ConfigurationError
    from opencdp.integrations.fastapi import lifespan, metrics_routes

    app = Starlette(lifespan=lifespan(lambda: AsyncClient(**client_options(sandbox))))
    app.routes.extend(metrics_routes("/prom/", registry=REGISTRY))
    with TestClient(app) as http:
        response = http.get("/prom")
        assert response.status_code == 200
        assert "python_info" in response.text  # the given registry
        assert 'opencdp_queue_pending{destination="opencdp"} 0.0' in response.text
        openmetrics = http.get("/prom", headers={"Accept": "application/openmetrics-text"})
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.endswith("# EOF\n")

    bare = Starlette(routes=metrics_routes())
    with TestClient(bare) as http, pytest.raises(ConfigurationError, match="lifespan"):
        http.get("/metrics")


def test_multiprocess_dir_set_after_prometheus_client_was_imported_is_refused(
        make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opencdp.errors import ConfigurationError
    from opencdp.metrics import MultiprocessWriter

    client = make_client()
    with pytest.raises(ConfigurationError, match="PROMETHEUS_MULTIPROC_DIR"):
        MultiprocessWriter(client)  # unset
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError, match="after prometheus_client was imported"):
        MultiprocessWriter(client)
