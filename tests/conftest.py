"""Shared fixtures: a sandbox over real loopback HTTP, one per test that asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def sandbox() -> Iterator["object"]:
    from opencdp.sandbox import Sandbox

    with Sandbox(port=0) as sb:
        yield sb
