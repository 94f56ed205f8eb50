"""The seam between the engine and the platforms: plain data and one protocol, no I/O.

A ``Destination`` turns leased messages into ``Request`` objects (refusing, per message,
what it cannot take) and a finished exchange (``Response`` or ``Failure``) into per-message
outcomes. The lane is generic: it never asks which destination it drives, so adding a
platform means writing one of these, not editing the engine.

The wire types live in ``opencdp.wire``, which the transports share; they are re-exported
here for code written against this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .. import registry
from ..message import Message
from ..outbox.base import Leased
from ..wire import Failure, FailureKind, Request, Response

if TYPE_CHECKING:
    from ..config import ClientConfig

__all__ = [
    "Dead",
    "Delivered",
    "Destination",
    "Failure",
    "FailureKind",
    "Outcome",
    "Request",
    "Response",
    "Retry",
    "Split",
    "build_destinations",
]


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


class Destination(Protocol):
    """One platform, as the lane sees it."""

    name: str
    """The name it is registered under (``opencdp.registry``): the queues', health's and
    metrics' name for it."""
    prefix: str
    """The log prefix of this platform's lines (``[CDP]``, ``[Customer.io]``)."""
    batched: bool
    """True when one request carries many messages (lease a batch); False for one each."""

    def encode(self, items: list[Leased]) -> tuple[list[Request], list[Dead]]:
        """Requests for ``items`` and the messages refused before sending, with reasons."""

    def classify(self, request: Request, result: Response | Failure, now: float) -> list[Outcome]:
        """Per-message outcomes of one finished exchange."""

    def failover(self, request: Request, result: Response | Failure) -> str | None:
        """Another host to try the same request on at once, or None."""

    def probe(self) -> Request:
        """A cheap request that proves the platform answers (half-open breaker, no traffic)."""

    def describe(self, message: Message) -> str:
        """The dual-write guide's debug line for a delivered message, without prefix."""

    def explain(self, response: Response) -> str | None:
        """A hint for a response that means misconfiguration (credentials, region), or None."""


def build_destinations(config: ClientConfig) -> list[Destination]:
    """The destinations ``config`` asks for, in the registry's (bit) order: each registered
    factory decides from the configuration whether its platform is written to."""
    out: list[Destination] = []
    for r in registry.registrations():
        made = None if r.build is None else r.build(config)
        if made is not None:
            out.append(made)
    return out
