"""What the dashboard shows, as plain JSON-ready data: sources, the sampler, dead letters.

A source is where the numbers come from: a running ``Client`` (the relay's, a worker's), whose
``health()`` has the engine's view (breakers, retries, rate limits, held copies), or a queue
opened by URL (``opencdp dashboard``), which has only the queue's counts: the engine state
lives in the processes that deliver.

The sampler reads the source once a second on a thread of its own and keeps fifteen minutes
of samples; every open page reads the same samples, so ten pages cost the engine what one
does (a ``health()`` a second: a snapshot copy and the queue's counts). It starts with the
first request to the dashboard, not with the service, so a relay nobody looks at pays nothing.

Payloads are scrubbed twice before they reach a page: values under keys that name a secret
(sentry-python's default deny list: ``password``, ``token``, ``api_key``...) are replaced,
and every configured secret (keys, URL passwords) is removed from every string left.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from ..health import DestinationHealth, Health
from ..message import DESTINATION_NAMES, parse_ulid
from ..outbox.base import DeadLetter, Outbox, QueueStats
from ..redaction import REDACTED, scrub

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["ClientSource", "QueueSource", "Sampler", "Source", "letter_json", "scrub_value"]

logger = logging.getLogger("opencdp.dashboard")

HISTORY = 900
"""Samples kept: fifteen minutes at one a second."""
INTERVAL = 1.0
TRANSITIONS = 200
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[-_]?key|auth|credential|session|cookie|private[-_]?key"
    r"|card[-_]?number|cvv|ssn", re.IGNORECASE)


class Source(Protocol):
    """Where the dashboard reads from and acts on."""

    label: str

    def health(self) -> Health | None:
        """The engine's view, or None when this process runs no engine."""

    def outbox(self) -> Outbox:
        """The queue whose dead letters the page lists, replays and purges."""

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never reach a page."""

    def replay(self, destination: str | None, since: float | None) -> int:
        """Dead letters back to pending (and the engine woken, if there is one)."""


class ClientSource:
    """A running client, read through its public surface (``client_of`` may return None
    while the service starts or stops)."""

    def __init__(self, client_of: Callable[[], Client | None], label: str,
                 extra_secrets: Iterable[str] = ()) -> None:
        self._client_of = client_of
        self.label = label
        self._extra = tuple(extra_secrets)

    def __repr__(self) -> str:
        return f"<ClientSource {self.label}>"

    def _client(self) -> Client:
        client = self._client_of()
        if client is None:
            raise RuntimeError(f"the {self.label}'s client is not running")
        return client

    def health(self) -> Health | None:
        return self._client().health()

    def outbox(self) -> Outbox:
        return self._client().engine.outbox

    def secrets(self) -> tuple[str, ...]:
        client = self._client_of()
        own = client.config.secrets if client is not None else ()
        return (*own, *self._extra)

    def replay(self, destination: str | None, since: float | None) -> int:
        return self._client().replay_dead_letters(destination, since)


class QueueSource:
    """A durable queue opened by URL, from outside the processes that deliver it."""

    def __init__(self, box: Outbox, label: str, extra_secrets: Iterable[str] = ()) -> None:
        self._box = box
        self.label = label
        self._secrets = tuple(extra_secrets)

    def __repr__(self) -> str:
        return f"<QueueSource {self.label}>"

    def health(self) -> Health | None:
        return None

    def outbox(self) -> Outbox:
        return self._box

    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def replay(self, destination: str | None, since: float | None) -> int:
        return self._box.replay(destination, since)


# --- the sampler --------------------------------------------------------------------------

def _state_reason(d: DestinationHealth) -> str:
    if d.disabled:
        return "configured but switched off"
    if d.held:
        return f"held on purpose: {d.held_count} copy(ies) wait for rollback or finish"
    if d.failing:
        return f"every recent request was refused: {d.last_failure_reason or 'no reason given'}"
    if d.stalled is not None:
        return d.stalled
    if d.circuit_state != "CLOSED":
        return (f"breaker {d.circuit_state.lower()} after {d.failure_count} failure(s): "
                f"{d.last_failure_reason or 'no reason given'}")
    return "delivering"


def _from_health(d: DestinationHealth) -> dict[str, Any]:
    return {
        "state": d.state, "reason": _state_reason(d), "breaker": d.circuit_state,
        "failure_count": d.failure_count, "pending": d.pending, "in_flight": d.in_flight,
        "oldest_pending_age": d.oldest_pending_age, "dead_letters": d.dead_letters,
        "delivered": d.delivered, "dead": d.failed, "retried": d.retried,
        "throttled": int(str(d.rate_limit.get("throttled", 0) or 0)),
        "paused_for": float(str(d.rate_limit.get("paused_for", 0.0) or 0.0)),
        "spilled": d.spilled, "held": d.held_count, "avg_latency_ms": d.avg_latency_ms,
    }


def _from_stats(s: QueueStats) -> dict[str, Any]:
    return {
        "state": "queue", "reason": "read from the queue: breakers, retries and rate limits "
                                    "live in the processes that deliver",
        "breaker": None, "failure_count": None, "pending": s.pending, "in_flight": s.in_flight,
        "oldest_pending_age": s.oldest_pending_age, "dead_letters": s.dead,
        "delivered": s.delivered, "dead": s.dead, "retried": None, "throttled": None,
        "paused_for": None, "spilled": s.spilled, "held": None, "avg_latency_ms": None,
    }


@dataclass
class _Latest:
    taken_at: float = 0.0
    status: str = "unknown"
    destinations: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    queue_error: str | None = None


class Sampler:
    """Reads the source every ``interval`` seconds on a daemon thread; the routes only read
    what it kept. ``start`` is idempotent and cheap, so every request may call it."""

    def __init__(self, source: Source, interval: float = INTERVAL,
                 history: int = HISTORY) -> None:
        self.source = source
        self.interval = interval
        self.samples: deque[dict[str, Any]] = deque(maxlen=history)
        self.transitions: deque[dict[str, Any]] = deque(maxlen=TRANSITIONS)
        self.latest = _Latest()
        self._last: dict[str, tuple[float, dict[str, Any]]] = {}
        self._breakers: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_logged = 0.0

    def __repr__(self) -> str:
        return f"<Sampler {len(self.samples)} samples of {self.source!r}>"

    def start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="opencdp-dashboard-sampler",
                                      daemon=True)
            self._thread = thread
        thread.start()

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval)

    def sample_once(self) -> None:
        now = time.time()
        try:
            health = self.source.health()
            status: str
            if health is not None:
                dests = {name: _from_health(d) for name, d in health.destinations.items()}
                status, queue_error = health.status, health.queue_error
            else:
                stats = self.source.outbox().stats(now)
                dests = {name: _from_stats(s) for name, s in stats.items()}
                status, queue_error = "queue", None
        except Exception as exc:
            # The type only: a storage error's text can carry a connection URL.
            if now - self._failed_logged > 60:
                self._failed_logged = now
                logger.warning("OCDP380 dashboard: reading the %s failed: %s",
                               self.source.label, type(exc).__name__)
            with self._lock:
                self.latest = _Latest(now, "unknown", self.latest.destinations,
                                      f"cannot read the {self.source.label}: "
                                      f"{type(exc).__name__}")
            return
        point: dict[str, Any] = {"t": round(now, 3)}
        with self._lock:
            for name, d in dests.items():
                before = self._last.get(name)
                rates = [0.0, 0.0]
                if before is not None and now > before[0]:
                    dt = now - before[0]
                    rates = [max(0.0, (d["delivered"] - before[1]["delivered"]) / dt),
                             max(0.0, (d["dead"] - before[1]["dead"]) / dt)]
                self._last[name] = (now, d)
                d["delivered_rate"], d["dead_rate"] = round(rates[0], 2), round(rates[1], 2)
                point[name] = [d["delivered_rate"], d["dead_rate"], d["pending"]]
                breaker = d["breaker"]
                was = self._breakers.get(name)
                if name in self._breakers and breaker != was:
                    self.transitions.append({"t": round(now, 3), "destination": name,
                                             "from": was, "to": breaker})
                self._breakers[name] = breaker
            self.samples.append(point)
            self.latest = _Latest(now, status, dests, None, queue_error)

    def view(self, after: float | None) -> dict[str, Any]:
        """The latest state, and the samples and breaker changes newer than ``after``."""
        with self._lock:
            latest = self.latest
            samples = [s for s in self.samples if after is None or s["t"] > after]
            transitions = list(self.transitions)
        return {"taken_at": latest.taken_at, "status": latest.status,
                "destinations": latest.destinations, "error": latest.error,
                "queue_error": latest.queue_error, "samples": samples,
                "transitions": transitions, "label": self.source.label,
                "engine": latest.status != "queue"}


# --- dead letters -------------------------------------------------------------------------

def scrub_value(value: Any, secrets: tuple[str, ...], depth: int = 0) -> Any:
    """``value`` with secret-named keys' values replaced and known secrets cut from strings."""
    if depth > 32:
        return "…"
    if isinstance(value, dict):
        return {str(k): (REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, "")
                         else scrub_value(v, secrets, depth + 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v, secrets, depth + 1) for v in value]
    if isinstance(value, str):
        return scrub(value, secrets)
    return value


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def letter_json(letter: DeadLetter, secrets: tuple[str, ...], full: bool = False,
                ) -> dict[str, Any]:
    from ..migrate.status import reason_key

    m = letter.message
    out: dict[str, Any] = {
        "id": m.ulid, "destination": letter.destination, "kind": m.kind,
        "person": scrub(m.identifier, secrets), "name": m.name,
        "reason": scrub(letter.reason, secrets), "group": reason_key(letter.reason,
                                                                      letter.status),
        "status": letter.status, "attempts": letter.attempts, "dead_at": letter.dead_at,
        "dead_at_iso": _iso(letter.dead_at),
    }
    if full:
        out["data"] = scrub_value(m.data, secrets)
        out["timestamp"] = m.timestamp
        out["created_at_iso"] = _iso(m.created_ms / 1000)
        out["destinations"] = [n for bit, n in DESTINATION_NAMES.items()
                               if m.destinations & bit]
    return out


def find_letters(box: Outbox, message_id: str) -> list[DeadLetter]:
    wanted = parse_ulid(message_id)
    finder = getattr(box, "dead_letter", None)
    if callable(finder):
        found: list[DeadLetter] = finder(wanted)
        return found
    return [d for d in box.dead_letters(limit=100_000) if d.message.id == wanted]


def count_window(box: Outbox, destination: str | None, since: float | None) -> int:
    """How many dead letters a replay or purge of this window would move."""
    counts = box.stats(time.time())
    total = 0
    for name in [destination] if destination else sorted(counts):
        dead = counts[name].dead if name in counts else 0
        if not dead:
            continue
        if since is None:
            total += dead
        else:
            total += len(box.dead_letters(name, since, dead + 1))
    return total


def close_quietly(box: Outbox) -> None:
    with contextlib.suppress(Exception):
        box.close()
