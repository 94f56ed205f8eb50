"""The pytest plugin, loaded by pytest on its own when opencdp is installed (entry point
``pytest11``; turn it off with ``-p no:opencdp``).

Fixtures:

- ``opencdp_sandbox``: the sandbox (one server per session, reset before each test);
- ``opencdp_client``: a dual-writing ``Client`` pointed at it, closed after the test;
- ``opencdp_capture``: a ``Capture`` (a real client delivering into memory);
- ``opencdp_async_capture``: an ``AsyncCapture`` for code that takes an ``AsyncClient``.

Test support and the sandbox are imported only when a fixture is used; the sandbox needs
the ``opencdp[sandbox]`` extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..client import Client
    from ..testing import AsyncCapture, Capture

__all__ = ["opencdp_async_capture", "opencdp_capture", "opencdp_client", "opencdp_sandbox"]


@pytest.fixture(scope="session")
def _opencdp_sandbox_server() -> Iterator[Any]:
    try:
        from ..sandbox import Sandbox
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        pytest.skip(f"the opencdp_sandbox fixture needs opencdp[sandbox]: {exc}")
    with Sandbox(port=0) as sandbox:
        yield sandbox


@pytest.fixture
def opencdp_sandbox(_opencdp_sandbox_server: Any) -> Any:
    """The session's sandbox, reset (data and faults) before the test."""
    _opencdp_sandbox_server.reset()
    return _opencdp_sandbox_server


@pytest.fixture
def opencdp_client(opencdp_sandbox: Any) -> Iterator[Client]:
    """A dual-writing client delivering to ``opencdp_sandbox`` with no backoff."""
    from ..testing import sandbox_client

    client = sandbox_client(opencdp_sandbox)
    yield client
    client.close(timeout=5)


@pytest.fixture
def opencdp_capture() -> Iterator[Capture]:
    """A capturing client: ``opencdp_capture.client`` in, ``opencdp_capture.messages`` out."""
    from ..testing import Capture

    cap = Capture()
    yield cap
    cap.close()


@pytest.fixture
def opencdp_async_capture() -> Iterator[AsyncCapture]:
    """An ``AsyncCapture``; works with pytest-asyncio, anyio or a plain ``asyncio.run``."""
    from ..testing import AsyncCapture

    cap = AsyncCapture()
    yield cap
    cap.close()
