"""Shared fixtures: a sandbox over real loopback HTTP, and a real redis-server.

The redis-server is started once per session on a free loopback port by
``tests/redis_server.py`` (installed with apt-get when missing and we are root); under
``CI=true`` failing to get one is an error, elsewhere the Redis tests skip with instructions.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HELPER = Path(__file__).resolve().parent / "redis_server.py"


def _redis_helper() -> Any:
    module = sys.modules.get("opencdp_tests_redis_server")
    if module is None:
        spec = importlib.util.spec_from_file_location("opencdp_tests_redis_server", _HELPER)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load {_HELPER}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def sandbox() -> Iterator[Any]:
    from opencdp.sandbox import Sandbox

    with Sandbox(port=0) as sb:
        yield sb


@pytest.fixture
def make_client(sandbox: Any) -> Iterator[Any]:
    """Clients dual-writing into ``sandbox`` with quick retries, closed after the test."""
    from health.support import client_options
    from opencdp import Client

    made: list[Client] = []

    def build(**extra: Any) -> Client:
        client = Client(**client_options(sandbox, **extra))
        made.append(client)
        return client

    yield build
    for client in made:
        client.close(timeout=1)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    helper = _redis_helper()
    try:
        server = helper.running_redis()
        url = server.__enter__()
    except helper.RedisUnavailable as exc:
        if helper.in_ci():
            pytest.fail(f"CI=true but no redis-server could be had: {exc}")
        pytest.skip(f"Redis tests need a redis-server: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Any]:
    """Three masters with a replica each (tests/redis_server.py); its ``url`` is a
    ``redis+cluster://`` queue URL. Shared by the session: a test that kills a node starts
    a cluster of its own."""
    helper = _redis_helper()
    try:
        cluster = helper.RedisCluster()
    except helper.RedisUnavailable as exc:
        if helper.in_ci():
            pytest.fail(f"CI=true but no Redis Cluster could be had: {exc}")
        pytest.skip(f"Redis Cluster tests need redis-server and redis-cli: {exc}")
    cluster.__enter__()
    try:
        yield cluster
    finally:
        cluster.__exit__(None, None, None)
