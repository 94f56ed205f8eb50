"""Outbox fixtures: every outbox behind one parametrized fixture, and a real redis-server.

``redis_url`` is session-scoped and reusable from other test folders once it is registered
in the root conftest (it lives here until then).
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HELPER = Path(__file__).resolve().parents[1] / "redis_server.py"


def _load_helper() -> Any:
    module = sys.modules.get("opencdp_tests_redis_server")
    if module is None:
        spec = importlib.util.spec_from_file_location("opencdp_tests_redis_server", _HELPER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    helper = _load_helper()
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


def _has_memory() -> bool:
    return importlib.util.find_spec("opencdp.outbox.memory") is not None


KINDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]
if _has_memory():
    KINDS.insert(0, "memory")


def make_outbox(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> Any:
    if kind == "memory":
        from opencdp.outbox.memory import MemoryOutbox

        return MemoryOutbox(**options)
    if kind == "sqlite":
        from opencdp.outbox.sqlite import SQLiteOutbox

        return SQLiteOutbox(tmp_path / "outbox.db", **options)
    from opencdp.outbox.redis import RedisOutbox

    url = request.getfixturevalue("redis_url")
    return RedisOutbox(url, prefix="t" + secrets.token_hex(6), **options)


@pytest.fixture(params=KINDS)
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    box = make_outbox(request.param, request, tmp_path)
    box.kind = request.param
    try:
        yield box
    finally:
        box.close()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def durable_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)
