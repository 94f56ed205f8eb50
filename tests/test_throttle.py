"""The one "report once per interval" rule, on a clock the test steps."""

from __future__ import annotations

from opencdp.throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_cause_is_reported_once_per_interval_with_what_was_held_back() -> None:
    clock = Clock()
    throttle = Throttle(clock)
    assert throttle.admit("down", 60.0) == 0
    assert throttle.admit("down", 60.0) is None
    assert throttle.admit("other", 60.0) == 0, "causes are independent"
    clock.now += 59.9
    assert throttle.admit("down", 60.0) is None
    clock.now += 0.1
    assert throttle.admit("down", 60.0) == 2
    assert throttle.admit("down", 60.0) is None


def test_no_interval_means_once_and_forget_means_at_once_again() -> None:
    clock = Clock()
    throttle = Throttle(clock)
    assert throttle.admit("hint", None) == 0
    clock.now += 1e9
    assert throttle.admit("hint", None) is None
    throttle.forget("hint")
    throttle.forget("never seen")
    assert throttle.admit("hint", None) == 0


def test_past_the_cap_the_oldest_causes_are_forgotten_not_the_new_ones() -> None:
    throttle = Throttle(Clock(), cap=4)
    for cause in "abcd":
        assert throttle.admit(cause, None) == 0
    assert throttle.admit("e", None) == 0, "a new cause is never silenced by old ones"
    assert throttle.admit("a", None) == 0, "a forgotten cause is reported again"
    assert throttle.admit("d", None) is None
    assert len(throttle) == 4
