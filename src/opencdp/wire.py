"""The wire: one exchange's data (``Request``, ``Response``, ``Failure``) and the ``Transport``
that makes it.

This is a leaf on purpose. Destinations build requests and read results, transports carry
them, and tests answer them (``opencdp.testing.MockTransport``); when these types lived with
the destinations, the aiohttp transport depended on the encoders it never calls. Nothing here
imports the rest of the package at run time (``Leased`` is named for the type checker only).

A failure carries its *kind* because the kind decides whether a resend is safe: only a
connection that was never established (``connect``, ``connect_timeout``, ``tls``) proves the
server never received the request, so only then may a transactional send move to another host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .outbox.base import Leased

__all__ = ["Failure", "FailureKind", "Request", "Response", "Service", "Transport"]

Service = str
"""The API a request is for: ``"gateway"``, ``"track"``, or a registered destination's own
(a label for transports, tracing and tests; nothing branches on a closed set of them)."""
FailureKind = Literal["connect", "connect_timeout", "timeout", "reset", "tls", "internal"]
_NEVER_SENT: frozenset[str] = frozenset({"connect", "connect_timeout", "tls"})


@dataclass(slots=True)
class Request:
    """One HTTP exchange to make. ``base`` is the host (scheme, host, base path) it goes to;
    ``send_safe`` marks a transactional send, which may move to another host only when it
    provably never reached the first."""

    service: Service
    method: str
    path: str
    body: bytes | None
    items: list[Leased]
    headers: dict[str, str] = field(default_factory=dict)
    base: str = ""
    send_safe: bool = False

    @property
    def url(self) -> str:
        return self.base + self.path


@dataclass(slots=True, frozen=True)
class Response:
    """The server answered: its status, body and headers, and the ``host`` that answered
    (after a failover, not the first one tried)."""

    status: int
    body: bytes
    headers: dict[str, str]
    host: str = ""


@dataclass(slots=True, frozen=True)
class Failure:
    """The exchange did not complete: ``Failure(reason, kind)``. ``kind`` says how far it got:
    only ``connect`` and ``connect_timeout`` and ``tls`` (the handshake failed) prove the
    server never received the request."""

    reason: str
    kind: FailureKind = "internal"

    @property
    def maybe_received(self) -> bool:
        return self.kind not in _NEVER_SENT


@runtime_checkable
class Transport(Protocol):
    """What the engine sends through (``transport=`` of a client). Both methods run on the
    engine's event loop; ``send`` returns a ``Failure`` rather than raising."""

    async def send(self, request: Request) -> Response | Failure:
        """One exchange; every failure is a ``Failure`` whose ``kind`` says how far it got."""
        ...

    async def aclose(self) -> None:
        """Release connections; the engine calls it once, at close."""
        ...
