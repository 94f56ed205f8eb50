"""Circuit breaker per destination, with the reliability guide's semantics.

``failure_threshold`` consecutive failures open it; after ``reset_timeout`` seconds it is
half-open and lets one probe request through at a time; ``success_threshold`` successes in a
row close it, and a failure while half-open opens it again at once. While open, the lane
does not send: messages wait in the outbox (the guide's fallback queue, without a second
system). The clock is injected so tests never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from ..config import BreakerConfig

__all__ = ["CircuitBreaker", "State"]

State = Literal["CLOSED", "OPEN", "HALF_OPEN"]


class CircuitBreaker:
    def __init__(
        self,
        config: BreakerConfig,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State, State, CircuitBreaker], None] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._on_change = on_change
        self._state: State = "CLOSED"
        self.failure_count = 0
        self.success_count = 0
        self.opened_at = 0.0
        self.last_failure: float | None = None
        """Wall-clock time of the last failure (for health reports)."""
        self.last_failure_reason: str | None = None
        self._probing = False

    @property
    def state(self) -> State:
        if self._state == "OPEN" and self._clock() - self.opened_at >= self.config.reset_timeout:
            self._set("HALF_OPEN")
            self.success_count = 0
        return self._state

    def wait_time(self) -> float:
        """Seconds until a request may be sent (0 when one may go now)."""
        state = self.state
        if state == "CLOSED":
            return 0.0
        if state == "OPEN":
            return max(0.0, self.opened_at + self.config.reset_timeout - self._clock())
        return 0.05 if self._probing else 0.0

    def before_request(self) -> None:
        if self.state == "HALF_OPEN":
            self._probing = True

    def record_success(self) -> None:
        self._probing = False
        self.failure_count = 0
        if self._state == "HALF_OPEN":
            self.success_count += 1
            if self.success_count >= self.config.success_threshold:
                self._set("CLOSED")

    def record_failure(self, reason: str) -> None:
        self._probing = False
        self.failure_count += 1
        self.last_failure = time.time()
        self.last_failure_reason = reason
        if self._state == "HALF_OPEN" or (
            self._state == "CLOSED" and self.failure_count >= self.config.failure_threshold
        ):
            self.opened_at = self._clock()
            self._set("OPEN")

    def _set(self, state: State) -> None:
        old, self._state = self._state, state
        if old != state and self._on_change is not None:
            self._on_change(old, state, self)
