"""Fixtures for the sandbox's own tests: one shared server, reset before every test, and
plain httpx clients with each service's auth (session-wide: building a client's TLS context
costs more than most tests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from opencdp.clock import ManualClock
from opencdp.sandbox import Sandbox

SITE, TRACK_KEY, APP_KEY, CDP_KEY = "sandbox-site", "sandbox-track-key", "sandbox-app-key", \
    "cdp-test-key"
ULID_A = "01HZX3Q4T0V5B8K2M7N9P6R1S3"
ULID_B = "01HZX3Q4T0V5B8K2M7N9P6R1S4"


@pytest.fixture(scope="session")
def _shared_sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0) as sb:
        yield sb


@pytest.fixture
def sandbox(_shared_sandbox: Sandbox) -> Sandbox:
    """One server for the whole session (starting one per test would dominate the run),
    reset before each test: empty store, zeroed counters, start-up faults."""
    _shared_sandbox.reset()
    return _shared_sandbox


@pytest.fixture(scope="session")
def _strict_sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, strict=True) as sb:
        yield sb


@pytest.fixture
def strict_sandbox(_strict_sandbox: Sandbox) -> Sandbox:
    """A sandbox in strict mode (millisecond timestamps refused, 100 requests/s)."""
    _strict_sandbox.reset()
    return _strict_sandbox


@dataclass
class Stilled:
    """A sandbox whose clock moves only when the test advances it: a burst always lands in
    one rate window however slow the machine, and a window empties on ``clock.advance``."""

    sandbox: Sandbox
    clock: ManualClock

    def client(self, service: str) -> httpx.Client:
        sb = self.sandbox
        if service == "track":
            return httpx.Client(base_url=sb.track_url, auth=(SITE, TRACK_KEY), timeout=10)
        if service == "gateway":
            return httpx.Client(base_url=sb.opencdp_url, headers={"Authorization": CDP_KEY},
                                timeout=10)
        return httpx.Client(base_url=sb.app_url, timeout=10,
                            headers={"Authorization": f"Bearer {APP_KEY}"})


def _stilled(strict: bool) -> Iterator[Stilled]:
    clock = ManualClock(frozen=True)
    with Sandbox(port=0, strict=strict, clock=clock) as sb:
        yield Stilled(sb, clock)


@pytest.fixture(scope="session")
def _stilled_sandbox() -> Iterator[Stilled]:
    yield from _stilled(strict=False)


@pytest.fixture(scope="session")
def _stilled_strict_sandbox() -> Iterator[Stilled]:
    yield from _stilled(strict=True)


@pytest.fixture
def stilled(_stilled_sandbox: Stilled) -> Stilled:
    _stilled_sandbox.sandbox.reset()
    return _stilled_sandbox


@pytest.fixture
def stilled_strict(_stilled_strict_sandbox: Stilled) -> Stilled:
    _stilled_strict_sandbox.sandbox.reset()
    return _stilled_strict_sandbox


@pytest.fixture
def strict_track(strict_sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=strict_sandbox.track_url, auth=(SITE, TRACK_KEY),
                      timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def _track_client(_shared_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """Track API client (Basic site id : Track key)."""
    with httpx.Client(base_url=_shared_sandbox.track_url, auth=(SITE, TRACK_KEY), timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def _app_api_client(_shared_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """App API client (Bearer App key)."""
    with httpx.Client(base_url=_shared_sandbox.app_url, timeout=10,
                      headers={"Authorization": f"Bearer {APP_KEY}"}) as c:
        yield c


@pytest.fixture(scope="session")
def _gateway_client(_shared_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """OpenCDP gateway client (raw key)."""
    with httpx.Client(base_url=_shared_sandbox.opencdp_url, timeout=10,
                      headers={"Authorization": CDP_KEY}) as c:
        yield c


@pytest.fixture
def track(sandbox: Sandbox, _track_client: httpx.Client) -> httpx.Client:
    return _track_client


@pytest.fixture
def app_api(sandbox: Sandbox, _app_api_client: httpx.Client) -> httpx.Client:
    return _app_api_client


@pytest.fixture
def gateway(sandbox: Sandbox, _gateway_client: httpx.Client) -> httpx.Client:
    return _gateway_client
