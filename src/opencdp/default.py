"""The default client: ``opencdp.init(...)`` once, then ``opencdp.track(...)`` anywhere.

For scripts and small apps, as segment's, posthog's and sentry's module-level clients are.
It is an ordinary ``Client`` that ``init`` makes: nothing is created or read from the
environment at import, and the module functions only look the client up and call its method,
so they behave exactly as ``Client``'s (same checks, same return value, same errors). It is
closed at interpreter exit by the client's own atexit hook (``register_atexit``, on by
default), or earlier by ``opencdp.close()``; a call before ``init`` raises
``NotInitializedError``.

``init`` is thread-safe: of two racing calls one makes the client and the other raises
``ConfigurationError``, so a process never holds two default clients that both drain at exit.
A forked child keeps the parent's client (which is fork-safe itself); the lock is renewed
in the child, since a thread of the parent may have held it at the fork.

The module functions are the everyday calls only; every other method is one attribute
away: ``opencdp.get_client().health()``. (There is no ``opencdp.health()``: the name is the
``opencdp.health`` module's.)
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from .client import Client
from .errors import ConfigurationError, OpenCDPError
from .options import ClientOptions

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = [
    "NotInitializedError",
    "close",
    "flush",
    "get_client",
    "identify",
    "init",
    "page",
    "register_device",
    "screen",
    "send_email",
    "track",
    "track_anonymous",
]

P = ParamSpec("P")
R = TypeVar("R")



class _State:
    __slots__ = ("client", "lock")

    def __init__(self) -> None:
        self.client: Client | None = None
        self.lock = threading.Lock()


_state = _State()


class NotInitializedError(OpenCDPError, RuntimeError):
    """A module-level call (``opencdp.track(...)``) before ``opencdp.init(...)``."""


def init(**options: Unpack[ClientOptions]) -> Client:
    """Make the default client and return it.

    With ``cdp_api_key`` the options are all there is (``Client(**options)``); without it the
    client is configured from the environment and the options override it
    (``Client.from_env(**options)``). Raises ``ConfigurationError`` if a default client
    exists: ``opencdp.close()`` first to replace it."""
    with _state.lock:
        if _state.client is not None:
            raise ConfigurationError(
                "opencdp.init() was already called in this process; call opencdp.close() "
                "before making another default client")
        client = Client(**options) if "cdp_api_key" in options else Client.from_env(**options)
        _state.client = client
        return client


def get_client() -> Client:
    """The default client; ``NotInitializedError`` before ``init`` (or after ``close``)."""
    client = _state.client
    if client is None:
        raise NotInitializedError(
            "no default client: call opencdp.init(cdp_api_key=...) (or opencdp.init() with "
            "CDP_API_KEY set) before opencdp.track(), opencdp.identify() and the others")
    return client


def close(timeout: float | None = None) -> bool:
    """Close the default client (see ``Client.close``) and forget it, so ``init`` may make
    another; True at once when there is none."""
    with _state.lock:
        client, _state.client = _state.client, None
    return True if client is None else client.close(timeout)


def _delegate(method: Callable[Concatenate[Client, P], R]) -> Callable[P, R]:
    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return method(get_client(), *args, **kwargs)

    return call


identify = _delegate(Client.identify)
"""``Client.identify`` on the default client (``init`` first)."""
track = _delegate(Client.track)
"""``Client.track`` on the default client (``init`` first)."""
track_anonymous = _delegate(Client.track_anonymous)
"""``Client.track_anonymous`` on the default client (``init`` first)."""
page = _delegate(Client.page)
"""``Client.page`` on the default client (``init`` first)."""
screen = _delegate(Client.screen)
"""``Client.screen`` on the default client (``init`` first)."""
register_device = _delegate(Client.register_device)
"""``Client.register_device`` on the default client (``init`` first)."""
send_email = _delegate(Client.send_email)
"""``Client.send_email`` on the default client (``init`` first)."""
flush = _delegate(Client.flush)
"""``Client.flush`` on the default client (``init`` first)."""


def _after_fork_in_child() -> None:
    _state.lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
