"""Everything one running sandbox holds: config, store, fault settings, rate windows."""

from __future__ import annotations

import base64
import random
from collections import deque
from typing import Any

from ..clock import Clock, SystemClock
from .config import SERVICES, FaultSettings, SandboxConfig, parse_faults
from .requests_log import RequestLog
from .store import Store

__all__ = ["APP_READS_KEPT", "SlidingWindow", "State"]

APP_READS_KEPT = 100_000


class SlidingWindow:
    """A sliding log of the last second's accepted requests: exact, and O(1) amortised."""

    __slots__ = ("hits",)

    def __init__(self) -> None:
        self.hits: deque[float] = deque()

    def check(self, now: float, limit: float) -> float:
        """Record a request; return 0 if it is allowed, else the seconds until one would be."""
        if limit <= 0:
            return 0.0
        hits = self.hits
        cutoff = now - 1.0
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if len(hits) >= max(1, int(limit)):
            return hits[0] + 1.0 - now
        hits.append(now)
        return 0.0


class State:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock: Clock = config.clock if config.clock is not None else SystemClock()
        self.store = Store()
        self.faults: dict[str, FaultSettings] = parse_faults(config.faults, now=self.clock.time())
        self.rngs: dict[str, random.Random] = {}
        self.windows: dict[str, SlidingWindow] = {}
        self.base_url = ""
        self.urls: dict[str, Any] = {}
        basic = base64.b64encode(f"{config.site_id}:{config.track_key}".encode()).decode()
        self.track_auth = f"Basic {basic}"
        self.app_auth = f"Bearer {config.app_key}"
        self.track_basic = basic
        self.strict = config.strict
        self.cdp_auth = config.cdp_key
        self.requests_log = RequestLog()
        self.reset_runtime()

    def reset_runtime(self) -> None:
        self.windows = {"track": SlidingWindow(), "app": SlidingWindow(),
                        "opencdp": SlidingWindow(), "app_read": SlidingWindow()}
        # App API reads (arrival on the monotonic clock, method, path, status): a client's
        # rate is measured where the limit applies. Bounded, as the store's lists are not.
        self.app_reads: deque[tuple[float, str, str, int]] = deque(maxlen=APP_READS_KEPT)
        self.rngs = {s: random.Random(self.faults[s].seed) for s in SERVICES}

    def reset(self) -> None:
        """Back to the state at start-up: empty store, start-up faults, fresh windows."""
        self.store.reset()
        self.requests_log.clear()
        self.faults = parse_faults(self.config.faults, now=self.clock.time())
        self.reset_runtime()

    def set_faults(self, raw: dict[str, Any] | None) -> None:
        """Merge per-service settings into the current ones; ``null`` for a service (or a
        ``None`` body) puts it (or all) back to no faults."""
        if raw is None:
            current: dict[str, FaultSettings] = {s: FaultSettings() for s in SERVICES}
            self.faults = current
        else:
            current = {s: (FaultSettings() if s in raw and raw[s] is None else f)
                       for s, f in self.faults.items()}
            self.faults = parse_faults({s: v for s, v in raw.items() if v is not None}, current,
                                       now=self.clock.time())
        self.rngs = {s: random.Random(self.faults[s].seed) for s in SERVICES}

    def rate_limit(self, service: str) -> float:
        override = self.faults[service].rate_limit_rps
        if override is not None:
            return override
        return self.config.effective_rate_limit if service == "customerio" else 0.0
