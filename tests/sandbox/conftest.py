"""Fixtures for the sandbox's own tests: plain httpx clients with each service's auth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

SITE, TRACK_KEY, APP_KEY, CDP_KEY = "sandbox-site", "sandbox-track-key", "sandbox-app-key", \
    "cdp-test-key"
ULID_A = "01HZX3Q4T0V5B8K2M7N9P6R1S3"
ULID_B = "01HZX3Q4T0V5B8K2M7N9P6R1S4"


@pytest.fixture
def track(sandbox: Any) -> Iterator[httpx.Client]:
    """Track API client (Basic site id : Track key)."""
    with httpx.Client(base_url=sandbox.track_url, auth=(SITE, TRACK_KEY), timeout=10) as c:
        yield c


@pytest.fixture
def app_api(sandbox: Any) -> Iterator[httpx.Client]:
    """App API client (Bearer App key)."""
    with httpx.Client(base_url=sandbox.app_url, timeout=10,
                      headers={"Authorization": f"Bearer {APP_KEY}"}) as c:
        yield c


@pytest.fixture
def gateway(sandbox: Any) -> Iterator[httpx.Client]:
    """OpenCDP gateway client (raw key)."""
    with httpx.Client(base_url=sandbox.opencdp_url, timeout=10,
                      headers={"Authorization": CDP_KEY}) as c:
        yield c
