"""Outbox fixtures: every outbox behind one parametrized fixture (``redis_url`` is in the
root conftest)."""

from __future__ import annotations

import importlib.util
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _has_memory() -> bool:
    return importlib.util.find_spec("opencdp.outbox.memory") is not None


KINDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis),
         pytest.param("cluster", marks=pytest.mark.redis)]
if _has_memory():
    KINDS.insert(0, "memory")


def make_outbox(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> Any:
    if kind == "memory":
        from opencdp.outbox.memory import MemoryOutbox

        return MemoryOutbox(**options)
    if kind == "sqlite":
        from opencdp.outbox.sqlite import SQLiteOutbox

        return SQLiteOutbox(tmp_path / "outbox.db", **options)
    if kind == "cluster":
        from opencdp.outbox.cluster import RedisClusterOutbox

        seed = request.getfixturevalue("redis_cluster").url.replace("redis+cluster", "redis")
        return RedisClusterOutbox(seed.rstrip("/"), prefix="t" + secrets.token_hex(6),
                                  partitions=4, **options)
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
