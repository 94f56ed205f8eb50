"""What encoders hand to the transport and get back: plain data, no I/O.

An encoder turns leased messages into ``Request`` objects and a finished exchange
(``Response`` or ``Failure``) into per-message outcomes. The lane applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..outbox.base import Leased

__all__ = ["Dead", "Delivered", "Failure", "Outcome", "Request", "Response", "Retry", "Split"]

Service = Literal["gateway", "track"]


@dataclass(slots=True)
class Request:
    service: Service
    method: str
    path: str
    body: bytes | None
    items: list[Leased]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str]
    host: str = ""


@dataclass(slots=True, frozen=True)
class Failure:
    """The exchange did not complete. ``maybe_received`` is False only when the request
    provably never reached the server (connect error or connect timeout)."""

    reason: str
    maybe_received: bool


@dataclass(slots=True, frozen=True)
class Delivered:
    items: list[Leased]


@dataclass(slots=True, frozen=True)
class Retry:
    items: list[Leased]
    reason: str
    status: int | None = None
    after: float | None = None


@dataclass(slots=True, frozen=True)
class Dead:
    items: list[Leased]
    reason: str
    status: int | None = None


@dataclass(slots=True, frozen=True)
class Split:
    """The server refused the whole request without saying which part: send halves."""

    items: list[Leased]
    reason: str
    status: int | None = None


Outcome = Delivered | Retry | Dead | Split
