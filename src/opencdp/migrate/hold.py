"""Phase 3 with a way back: ``opencdp migrate rollback`` and ``opencdp migrate finish``.

In phase 3 the clients run with ``send_to_customer_io="hold"``: every call still queues its
Customer.io copy, durably, but nothing is sent. ``rollback`` delivers those copies in call
order and dual-write goes on with no gap; ``finish`` purges them and ends the hold.

Where the hold lives, and why: in the queue, as a mark per destination (a row of the SQLite
file's ``meta`` table, a field of the ``{prefix}:hold`` Redis hash), which these commands flip
and which every client in hold mode reads at its housekeeping, about once a second. The other
shape, a hold in the client option only (rollback drains the queue, then the user turns the
option back to True), has a gap nobody can close: the copies queued between the end of the
drain and the restart of the last process are either sent out of order by a restarted
process or held by one not restarted yet, and a fleet restarted in a rolling fashion is
half held, half sending for the whole rollout. With the mark, ``rollback`` releases every
process at once, without a restart, and the option only says "obey the mark": after a
rollback a process restarted with "hold" still delivers (the mark says ``released``), so
``send_to_customer_io=True`` can be set at the next ordinary deploy.

The mark moves ``held -> draining -> released`` (rollback) or ``held -> finished`` (finish).
While ``draining``, the clients still hold and this command alone delivers: the Customer.io
lane of a client sends batches concurrently (up to ``max_concurrent_requests``) and several
processes lease in turns, so a fleet releasing a backlog would deliver it out of order. This
command sends one request at a time, in lease order, and retries a failed one in place
before the next (head-of-line), so the copies reach Customer.io in call order whenever
Customer.io accepts them; a copy it refuses for good is dead-lettered and the rest go on
(``opencdp queue replay`` later sends it out of order). The drain stops once it reaches the
copies queued after it began (one batch past), releases the mark, and the clients deliver the
rest as usual. If Customer.io keeps failing, or refuses the credentials, the command stops
with the mark still ``draining`` (nothing is lost or dead-lettered for it) and a second run
resumes where it stopped.

Exactly once: a copy is acknowledged in the queue after Customer.io accepted it; a run killed
between the two resends that batch, which Customer.io de-duplicates by the event id (events)
or applies again to the same value (attributes, devices).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import click
import orjson

from .. import clock
from ..config import ClientConfig
from ..destinations.base import (
    Dead,
    Delivered,
    Destination,
    Failure,
    Request,
    Response,
    Retry,
    Split,
)
from ..errors import ConfigurationError, OpenCDPError
from ..outbox.base import DeadItem, HoldMark, Leased, Outbox, RetryItem
from ..outbox.command import opened
from ..outbox.url import safe_url
from ..policies.plan import signal
from ..policies.ratelimit import SharedTokenBucket, TokenBucket
from ..policies.retry import backoff

__all__ = [
    "HoldError",
    "HoldFinishedError",
    "NothingHeldError",
    "RollbackInProgressError",
    "RollbackIncompleteError",
    "RollbackReport",
    "finish",
    "finish_command",
    "hold_again",
    "hold_command",
    "rollback",
    "rollback_command",
]

DESTINATION = "customerio"
"""The destination a migration holds: the platform being left."""


class HoldError(OpenCDPError):
    """The queue's hold is not in a state this command can act on (OCDP369)."""

    code = "OCDP369"


class NothingHeldError(HoldError):
    """No hold to roll back or finish: never held, or already released."""


class HoldFinishedError(HoldError):
    """The hold was finished: its copies were purged, there is nothing to roll back."""


class RollbackInProgressError(HoldError):
    """A rollback is delivering the held copies; a finish now would race it."""


class RollbackIncompleteError(HoldError):
    """Customer.io kept failing or refused the credentials: the rollback stopped, the copies
    not delivered stay held, and running the command again resumes it."""


@dataclass
class RollbackReport:
    delivered: int = 0
    dead_lettered: int = 0
    resumed: bool = False
    released: bool = False
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "dead_lettered": self.dead_lettered,
                "resumed": self.resumed, "released": self.released,
                "seconds": round(self.seconds, 3), "dead_letter_reasons": dict(self.reasons)}


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _refuse(mark: HoldMark | None, doing: str) -> HoldError:
    if mark is None:
        return NothingHeldError(
            f"OCDP369 nothing is held on this queue: no client in hold mode "
            f"(send_to_customer_io='hold') has used it, so there is nothing to {doing}")
    if mark.state == "released":
        return NothingHeldError(
            f"OCDP369 nothing is held on this queue: the hold was released by "
            f"`opencdp migrate rollback` at {_when(mark.changed)}")
    if mark.state == "finished":
        return HoldFinishedError(
            f"OCDP369 the hold was finished at {_when(mark.changed)}: its copies were purged, "
            f"there is nothing to {doing}")
    return RollbackInProgressError(
        f"OCDP369 a rollback is delivering the held copies (since {_when(mark.changed)}); "
        "wait for it to end, or if it was stopped, run `opencdp migrate rollback` again to "
        "resume it")


# --- rollback ---------------------------------------------------------------------------

def in_order(destination: Destination, items: list[Leased]) -> tuple[list[Request], list[Dead]]:
    """Requests for ``items`` that deliver them in order when sent one after the other.

    A destination may pull a message out of its batch (Customer.io sends what has no v2
    shape to v1, one by one): when the requests' messages interleave, the run is cut at the
    first message out of place and each side encoded on its own."""
    requests, refused = destination.encode(items)
    position = {id(item): n for n, item in enumerate(items)}
    spans = sorted((min(position[id(i)] for i in r.items),
                    max(position[id(i)] for i in r.items), n)
                   for n, r in enumerate(requests) if r.items)
    for (_, last, _), (first, _, _) in itertools.pairwise(spans):
        if last > first:
            head, more = in_order(destination, items[:first])
            tail, rest = in_order(destination, items[first:])
            return head + tail, more + rest
    return [requests[n] for _, _, n in spans], refused


class _Drain:
    """One destination's held copies, delivered one request at a time in lease order."""

    def __init__(self, outbox: Outbox, destination: Destination, config: ClientConfig,
                 transport: Any, echo: Any) -> None:
        self.outbox = outbox
        self.destination = destination
        self.name = destination.name
        self.config = config
        self.transport = transport
        self.echo = echo
        self.report = RollbackReport()
        self.lease_seconds = max(60.0, config.timeout * 3)
        rate = config.rate_limits.get(self.name)
        shared = outbox.shared_state()
        self.bucket: TokenBucket = (
            SharedTokenBucket(shared[0], f"{shared[1]}rate:{self.name}", rate)
            if shared is not None and rate is not None else TokenBucket(rate))

    async def run(self, started: float) -> None:
        while True:
            items = self.outbox.lease(self.name, self.config.batch_size, clock.wall(),
                                      self.lease_seconds)
            if not items:
                return
            try:
                await self._deliver(items)
            except BaseException:
                self._hand_back(items)
                raise
            if max(item.enqueued_at for item in items) >= started:
                return  # past the backlog: the released clients deliver what follows

    def _hand_back(self, items: list[Leased]) -> None:
        """What this run leased and did not settle goes back as it was: same attempt, and
        due at its first queueing, so a resumed run takes it first again."""
        with contextlib.suppress(OpenCDPError):
            self.outbox.retry(self.name, [
                RetryItem(i.message.id, i.enqueued_at or clock.wall(), "rollback stopped",
                          i.attempt) for i in items])

    async def _deliver(self, items: list[Leased]) -> None:
        requests, refused = in_order(self.destination, items)
        for dead in refused:
            self._dead(dead)
        for request in requests:
            await self._exchange(request)

    def _dead(self, dead: Dead) -> None:
        reason = self.config.scrub(dead.reason) or dead.reason
        self.outbox.dead(self.name, [DeadItem(i.message.id, reason, dead.status)
                                     for i in dead.items], clock.wall())
        self.report.dead_lettered += len(dead.items)
        key = reason[:80]
        self.report.reasons[key] = self.report.reasons.get(key, 0) + len(dead.items)

    async def _send(self, request: Request) -> Response | Failure:
        wait = self.bucket.take()
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.bucket.take()
        while True:
            try:
                result: Response | Failure = await self.transport.send(request)
            except Exception as exc:
                result = Failure(f"{type(exc).__name__}: {str(exc)[:200]}", "internal")
            host = self.destination.failover(request, result)
            if host is None:
                return result
            request.base = host

    async def _exchange(self, request: Request) -> None:
        attempt = 0
        while True:
            result = await self._send(request)
            verdict = signal(result)
            if verdict.refused:
                raise RollbackIncompleteError(
                    f"OCDP369 {self.name} refused the credentials ({verdict.reason}): the "
                    "rollback stopped and nothing was dead-lettered. Fix CUSTOMERIO_SITE_ID / "
                    "CUSTOMERIO_TRACK_API_KEY and run `opencdp migrate rollback` again")
            retry: list[Leased] = []
            last: Retry | None = None
            for outcome in self.destination.classify(request, result, clock.wall()):
                if isinstance(outcome, Delivered):
                    self.outbox.ack(self.name, [i.message.id for i in outcome.items])
                    self.report.delivered += len(outcome.items)
                elif isinstance(outcome, Dead):
                    self._dead(outcome)
                elif isinstance(outcome, Split):
                    half = len(outcome.items) // 2
                    await self._deliver(outcome.items[:half])
                    await self._deliver(outcome.items[half:])
                elif isinstance(outcome, Retry):
                    retry.extend(outcome.items)
                    last = outcome
            if last is None:
                return
            attempt += 1
            if attempt >= self.config.retry.max_attempts:
                raise RollbackIncompleteError(
                    f"OCDP369 {self.name} did not take {len(retry)} copy(ies) after {attempt} "
                    f"attempts (last: {self.config.scrub(last.reason)}): the rollback stopped "
                    "with them still held, in order. Run `opencdp migrate rollback` again once "
                    f"{self.name} answers")
            self.echo(f"{self.name} did not take {len(retry)} copy(ies) ({last.reason}); "
                      f"retrying them before the next (attempt {attempt + 1})")
            await asyncio.sleep(max(backoff(attempt, self.config.retry), last.after or 0.0))
            if len(retry) != len(request.items):
                requests, refused = in_order(self.destination, retry)
                for dead in refused:
                    self._dead(dead)
                for again in requests:
                    await self._exchange(again)
                return


def _customerio(config: ClientConfig) -> Destination:
    from ..destinations.customerio import CustomerIOTrack
    from ..guards import customerio_refusal

    cio = config.customer_io
    if cio is None:
        raise ConfigurationError(
            "rollback delivers the held copies to Customer.io and needs its Track "
            "credentials: set CUSTOMERIO_SITE_ID and CUSTOMERIO_TRACK_API_KEY (and "
            "CUSTOMERIO_REGION or CUSTOMERIO_TRACK_URL as the clients have them)",
            option="CUSTOMERIO_SITE_ID")
    return CustomerIOTrack(cio.track_url, cio.site_id, cio.api_key, refuse=customerio_refusal,
                           region_hint=cio.region_hint)


async def _drain(outbox: Outbox, config: ClientConfig, echo: Any, started: float
                 ) -> RollbackReport:
    from ..transport import AiohttpTransport

    transport = config.transport or AiohttpTransport(config)
    drain = _Drain(outbox, _customerio(config), config, transport, echo)
    try:
        await drain.run(started)
    finally:
        with contextlib.suppress(Exception):
            await transport.aclose()
    return drain.report


def rollback(outbox: Outbox, config: ClientConfig,
             echo: Any = lambda text: None) -> RollbackReport:
    """Deliver the held copies in order, then release the hold (see the module docstring).
    Raises a ``HoldError`` for a queue with nothing held or a finished hold, and
    ``RollbackIncompleteError`` when Customer.io keeps failing (the hold stays; run again)."""
    started_mono = clock.monotonic()
    _customerio(config)  # the credentials before the mark moves
    mark = outbox.hold_mark(DESTINATION)
    if mark is None or mark.state in ("released", "finished"):
        raise _refuse(mark, "roll back")
    resumed = mark.state == "draining"
    if not resumed:
        moved = outbox.set_hold_mark(DESTINATION, "draining", clock.wall(), ("held",))
        if moved is None or moved.state != "draining":
            raise _refuse(moved, "roll back")
    report = asyncio.run(_drain(outbox, config, echo, clock.wall()))
    report.resumed = resumed
    final = outbox.set_hold_mark(DESTINATION, "released", clock.wall(), ("draining",))
    report.released = final is not None and final.state == "released"
    report.seconds = clock.monotonic() - started_mono
    return report


def finish(outbox: Outbox) -> tuple[int, bool]:
    """End the hold for good and purge the held copies: ``(purged, already_finished)``.
    Clients in hold mode stop holding within a second and purge what they queue after."""
    mark = outbox.hold_mark(DESTINATION)
    if mark is None or mark.state in ("released", "draining"):
        raise _refuse(mark, "finish")
    already = mark.state == "finished"
    if not already:
        moved = outbox.set_hold_mark(DESTINATION, "finished", clock.wall(), ("held",))
        if moved is None or moved.state != "finished":
            raise _refuse(moved, "finish")
    return outbox.purge_pending(DESTINATION, None, clock.wall()), already


def hold_again(outbox: Outbox) -> bool:
    """Hold the Customer.io copies again after a rollback released them (or before any client
    in hold mode started): True when the mark moved, False when it already said held.
    Clients in hold mode hold again within a second; those with dual-write on still send."""
    mark = outbox.hold_mark(DESTINATION)
    if mark is not None and mark.state == "held":
        return False
    if mark is not None and mark.state != "released":
        raise _refuse(mark, "hold")
    moved = outbox.set_hold_mark(DESTINATION, "held", clock.wall(), (None, "released"))
    if moved is None or moved.state != "held":
        raise _refuse(moved, "hold")
    return True


# --- the commands -------------------------------------------------------------------------

@contextlib.contextmanager
def _queue(url: str) -> Iterator[Outbox]:
    """The durable queue at ``url``; what cannot work is a usage error (exit 2), a queue that
    does not answer a failure (exit 1)."""
    if url.strip().lower().split("?", 1)[0].split(":", 1)[0] == "memory":
        raise click.UsageError(
            "the memory queue lives and dies with its process: nothing can be held in it, "
            "so there is no hold to roll back or finish. Hold mode needs the durable queue "
            "the clients use (sqlite:///path.db or redis://host:6379/0)")
    with opened(url) as box:
        try:
            yield box
        except ConfigurationError as exc:
            raise click.UsageError(str(exc)) from None
        except OpenCDPError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


def _config(url: str) -> ClientConfig:
    overrides: dict[str, Any] = {"queue": url, "register_atexit": False, "start_worker": False}
    if not os.environ.get("CDP_API_KEY", "").strip():
        overrides["cdp_api_key"] = "not-used-by-rollback"  # only Customer.io is called
    try:
        return ClientConfig.from_env(**overrides)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None


def _queue_option(fn: Any) -> Any:
    return click.option(
        "--queue", "queue_url", envvar="OPENCDP_QUEUE_URL", show_envvar=True, required=True,
        metavar="URL", help="The clients' durable queue: sqlite:///path.db or redis://host/db",
    )(fn)


def _json_option(fn: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


@click.command(name="rollback")
@_queue_option
@_json_option
def rollback_command(queue_url: str, as_json: bool) -> None:
    """Deliver the held Customer.io copies in call order, then release the hold.

    Running clients in hold mode deliver again within a second, with no gap; afterwards set
    send_to_customer_io=True (OPENCDP_SEND_TO_CUSTOMER_IO=true) at your next deploy.
    Credentials come from CUSTOMERIO_SITE_ID, CUSTOMERIO_TRACK_API_KEY and the other
    variables the clients read. See docs/hold.md.
    """
    config = _config(queue_url)
    echo = (lambda text: None) if as_json else (lambda text: click.echo(text, err=True))
    with _queue(queue_url) as box:
        before = box.stats(clock.wall()).get(DESTINATION)
        report = rollback(box, config, echo)
    if as_json:
        click.echo(orjson.dumps({**report.to_dict(), "queue": safe_url(queue_url),
                                 "held_before": None if before is None else
                                 before.pending + before.in_flight}).decode())
        return
    click.echo(f"{'resumed the rollback and ' if report.resumed else ''}delivered "
               f"{report.delivered} held copy(ies) to Customer.io in call order "
               f"in {report.seconds:.1f} s")
    if report.dead_lettered:
        click.echo(f"{report.dead_lettered} copy(ies) were refused by Customer.io and "
                   "dead-lettered (see `opencdp queue list --destination customerio`)")
    click.echo("the hold is released: clients in hold mode deliver again within a second. "
               "Set send_to_customer_io=True (OPENCDP_SEND_TO_CUSTOMER_IO=true) at your "
               "next deploy.")


@click.command(name="hold")
@_queue_option
@_json_option
def hold_command(queue_url: str, as_json: bool) -> None:
    """Hold the Customer.io copies again, after a rollback released them.

    Clients running with send_to_customer_io="hold" hold again within a second; a client
    with dual-write on (True) still sends, so set "hold" on every process first.
    """
    with _queue(queue_url) as box:
        moved = hold_again(box)
    if as_json:
        click.echo(orjson.dumps({"held": True, "changed": moved,
                                 "queue": safe_url(queue_url)}).decode())
        return
    click.echo("the Customer.io copies are held again: clients in hold mode stop sending "
               "within a second" if moved else "the Customer.io copies were already held")


@click.command(name="finish")
@_queue_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_json_option
def finish_command(queue_url: str, yes: bool, as_json: bool) -> None:
    """Purge the held Customer.io copies and end the hold for good.

    Clients in hold mode stop holding within a second and send nothing to Customer.io;
    afterwards set send_to_customer_io=False (or remove the Customer.io credentials).
    """
    with _queue(queue_url) as box:
        mark = box.hold_mark(DESTINATION)
        if mark is None or mark.state in ("released", "draining"):
            raise _refuse(mark, "finish")
        stats = box.stats(clock.wall()).get(DESTINATION)
        held = 0 if stats is None else stats.pending + stats.in_flight
        if not yes and mark.state == "held":
            click.confirm(f"Purge {held} held Customer.io copy(ies) for good and end the hold "
                          "(there is no rollback after this)?", abort=True, err=True)
        purged, already = finish(box)
    if as_json:
        click.echo(orjson.dumps({"purged": purged, "already_finished": already,
                                 "queue": safe_url(queue_url)}).decode())
        return
    click.echo(f"{'the hold was already finished; ' if already else ''}purged {purged} held "
               "Customer.io copy(ies); the hold is finished. Set send_to_customer_io=False "
               "(or remove the Customer.io credentials) at your next deploy.")
