"""Clients wired to the sandbox, and a driver that runs the same test through either facade."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from opencdp import AsyncClient, Client
from opencdp.config import BreakerConfig, RetryConfig
from opencdp.testing import sandbox_options


class ListLogger:
    """A custom logger like the dual-write guide's: debug / warn / error."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def debug(self, msg: str) -> None:
        self.lines.append(("debug", msg))

    def warn(self, msg: str) -> None:
        self.lines.append(("warn", msg))

    def error(self, msg: str) -> None:
        self.lines.append(("error", msg))

    def text(self, level: str | None = None) -> str:
        return "\n".join(m for lvl, m in self.lines if level in (None, lvl))


class Driver:
    """Calls a client's methods the same way whichever facade it is."""

    def __init__(self, client: Client | AsyncClient, loop: asyncio.AbstractEventLoop | None):
        self.client = client
        self._loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)
        if self._loop is None or not asyncio.iscoroutinefunction(method):
            return method  # type: ignore[no-any-return]
        loop = self._loop

        def run(*args: Any, **kwargs: Any) -> Any:
            return loop.run_until_complete(method(*args, **kwargs))

        return run


FAST_RETRY = RetryConfig(base_delay=0.01, max_delay=0.05, max_attempts=8)


def options_for(sandbox: Any, **extra: Any) -> dict[str, Any]:
    return sandbox_options(sandbox, **{"retry": FAST_RETRY,
                                       "breaker": BreakerConfig(reset_timeout=0.2),
                                       "timeout": 5.0, **extra})


@pytest.fixture
def logger() -> ListLogger:
    return ListLogger()


@pytest.fixture(params=["sync", "async"])
def facade(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(sandbox: Any, facade: str) -> Iterator[Callable[..., Driver]]:
    made: list[Driver] = []
    loop = asyncio.new_event_loop() if facade == "async" else None

    def build(**extra: Any) -> Driver:
        cls = AsyncClient if facade == "async" else Client
        driver = Driver(cls(**options_for(sandbox, **extra)), loop)
        made.append(driver)
        return driver

    yield build
    for driver in made:
        driver.close(timeout=2)
    if loop is not None:
        loop.close()
