"""The parts every rule family shares: the rule unit, findings, the policy and the reporter.

A rule is a class holding metadata only (code, severity, one-line advice, docstring, examples).
The checks themselves live in plain functions of each family module, written for the caller's
thread: the hot path tests a cache and returns, and only a miss reaches a rule's slow path.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, Protocol

from .. import reentry
from ..errors import ConfigurationError, ValidationError
from ..throttle import Throttle

__all__ = ["RULES", "Example", "Finding", "GuardPolicy", "Reporter", "Rule", "SchemaCheck",
           "Severity"]

Severity = Literal["debug", "warning", "error"]
_SEVERITIES: Final = ("debug", "warning", "error")
_CODE: Final = re.compile(r"OCDP\d{3}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One reported cause: what was seen, where, and what to do instead."""

    code: str
    message: str
    field: str | None
    severity: Severity


class SchemaCheck(Protocol):
    """What the guards ask of a taxonomy (``Schemas``). A protocol, because the schemas are
    rules defined on top of this module; naming their class here made the two import each
    other."""

    def check(self, kind: str, name: str | None, data: Any, reporter: Reporter) -> Any:
        """Report (or refuse) what does not match; return ``data`` unchanged."""


@dataclass(frozen=True, slots=True)
class Example:
    """Source of one example, run by the generic test and printed in the docs.

    ``source`` is Python using ``client`` (``identify``/``track``/``track_anonymous``/
    ``suppress``), ``check_track_key``, ``datetime``/``timezone``/``Decimal``, and ``Event``/
    ``Schemas`` for the typed taxonomy. ``policy`` holds ``GuardPolicy`` overrides.
    """

    source: str
    policy: Mapping[str, Any] = field(default_factory=dict)


RULES: dict[str, type[Rule]] = {}
"""Every rule by code, in definition order (filled as the family modules are imported)."""


class Rule:
    """Base of every rule: subclasses set the class attributes and a docstring saying why."""

    code: ClassVar[str]
    severity: ClassVar[Severity]
    message: ClassVar[str]
    silenceable: ClassVar[bool] = True
    strict: ClassVar[bool] = True
    """Whether strict mode refuses this warning (False when the guard cannot be sure)."""
    once: ClassVar[bool] = False
    """Whether each cause is reported once per process rather than once per interval."""
    lenient: ClassVar[bool] = False
    """Whether the check can let the value through as sent (``GuardPolicy.lenient``)."""
    customerio_only: ClassVar[bool] = False
    """Whether the limit is Customer.io's alone: applied by ``customerio_refusal`` per
    message, dead-lettering only the Customer.io copy, never refused at the call."""
    bad: ClassVar[tuple[Example | str, ...]]
    good: ClassVar[tuple[Example | str, ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not _CODE.fullmatch(cls.code):
            raise RuntimeError(f"rule code {cls.code!r} is not OCDPnnn")
        if cls.code in RULES:
            raise RuntimeError(f"duplicate rule code {cls.code}")
        if cls.severity not in _SEVERITIES or not cls.__doc__ or not cls.bad or not cls.good:
            raise RuntimeError(f"rule {cls.code} needs a severity, docstring and examples")
        RULES[cls.code] = cls

    @classmethod
    def examples(cls, which: Literal["bad", "good"]) -> tuple[Example, ...]:
        raw = cls.bad if which == "bad" else cls.good
        return tuple(e if isinstance(e, Example) else Example(e) for e in raw)


@dataclass(frozen=True, kw_only=True, slots=True)
class GuardPolicy:
    """How the guards react.

    ``strict`` turns every warning into a ``ValidationError`` (except the few a process cannot
    be sure of, such as track-before-identify); ``silence`` holds codes that are neither
    reported nor (in strict mode) refused, but still counted; refusals whose rule is not
    silenceable (empty ids, unencodable values, gateway limits) always apply. ``email_hint``
    is the level of the "identify without email" hint ("off" disables it).
    ``max_event_names`` is the number of distinct event names after which the cardinality
    warning fires. ``report_interval`` is the number of seconds before a cause already
    reported is reported again (with the count of occurrences in between).
    ``customerio_limits`` has no effect any more: Customer.io's own limits are applied per
    message by ``customerio_refusal``, so they cost only the Customer.io copy. ``remember_ids``
    bounds the memory of identified user ids (track-before-identify) and of reported causes.
    ``lenient`` holds codes a caller's contract never enforced (``opencdp.compat``: the SDK it
    replaces sent such calls as they were): their check neither refuses nor rewrites, and
    reports a warning once per process and cause, with the code, even in strict mode. Only
    rules that can let a value through take part (``Rule.lenient``: OCDP104, OCDP122).
    """

    strict: bool = False
    silence: frozenset[str] = frozenset()
    email_hint: Literal["off", "debug", "warning"] = "debug"
    max_event_names: int = 500
    schemas: SchemaCheck | None = None
    customerio_limits: bool = True
    remember_ids: int = 100_000
    report_interval: float = 60.0
    lenient: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("silence", "lenient"):
            codes = getattr(self, name)
            if not isinstance(codes, frozenset):
                codes = frozenset(codes)
                object.__setattr__(self, name, codes)
            malformed = sorted(str(c) for c in codes if not _CODE.fullmatch(str(c)))
            if malformed:
                raise ConfigurationError(f"GuardPolicy.{name} holds codes like OCDP101, "
                                         f"not {malformed}")
        fixed = sorted(c for c in self.lenient if c not in RULES or not RULES[c].lenient)
        if fixed:
            allowed = sorted(c for c, r in RULES.items() if r.lenient)
            raise ConfigurationError(f"GuardPolicy.lenient takes {allowed}, not {fixed}: the "
                                     "other checks cannot let a value through as sent")
        if self.email_hint not in ("off", "debug", "warning"):
            raise ConfigurationError("GuardPolicy.email_hint must be 'off', 'debug' or 'warning'")
        if not isinstance(self.max_event_names, int) or self.max_event_names < 1:
            raise ConfigurationError("GuardPolicy.max_event_names must be a positive int")
        if not isinstance(self.remember_ids, int) or self.remember_ids < 1:
            raise ConfigurationError("GuardPolicy.remember_ids must be a positive int")
        if isinstance(self.report_interval, bool) or not isinstance(
                self.report_interval, (int, float)) or not self.report_interval >= 0:
            raise ConfigurationError("GuardPolicy.report_interval must be seconds >= 0")


class Reporter:
    """Counts every occurrence, reports each cause once per interval, refuses in strict mode.

    A cause is what a line is about (a field, an attribute name, an event name), never a user
    id or a value, so a bulk run over many people cannot flood the log. A cause seen again
    within ``report_interval`` is only counted; the next report after the interval says how
    many occurrences it stands for. Rules marked ``once`` are reported once per process.
    Only slow paths come here, so a lock keeps the counts exact across threads. Remembered
    causes are bounded: the oldest half is forgotten when ``remember_ids`` is reached.
    """

    __slots__ = ("_counts", "_interval", "_late", "_lenient", "_lock", "_report", "_silence",
                 "_strict", "_throttle")

    def __init__(self, policy: GuardPolicy, report: Callable[[Finding], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._report = report
        self._strict = policy.strict
        self._silence = policy.silence
        self._lenient = policy.lenient
        self._interval = float(policy.report_interval)
        self._throttle = Throttle(clock, policy.remember_ids)
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._late: deque[str] = deque()

    def _take(self, nested: bool) -> bool:
        """Take the lock, unless this thread may hold it already (``nested``: read before
        entering our own region): a call from a signal handler that interrupted a report
        (``reentry.py``) counts later instead of waiting."""
        return self._lock.acquire(blocking=not nested)

    def _count(self, code: str) -> None:
        self._counts[code] = self._counts.get(code, 0) + 1
        self._count_late()

    def refuse(self, rule: type[Rule], field: str | None, detail: str = "") -> ValidationError:
        """Count a refusal and return the error for the caller to raise."""
        nested = reentry.inside()
        with reentry.region():
            if self._take(nested):
                try:
                    self._count(rule.code)
                finally:
                    self._lock.release()
            else:
                self._late.append(rule.code)
        return ValidationError(f"{rule.code} {_text(rule, detail)}", field=field, code=rule.code)

    def silenced(self, rule: type[Rule]) -> bool:
        return rule.code in self._silence

    def lenient(self, rule: type[Rule]) -> bool:
        """Whether ``rule``'s check must let the value through as sent (``GuardPolicy``)."""
        return rule.code in self._lenient

    def relax(self, codes: frozenset[str]) -> None:
        self._lenient = codes

    def warn(
        self,
        rule: type[Rule],
        field: str | None,
        cause: str,
        detail: str = "",
        severity: Severity | None = None,
    ) -> None:
        """Count a warning; report it once per ``cause`` and interval; raise it in strict mode.

        A lenient code is reported as a warning, once per process and cause, and never raised.
        """
        code = rule.code
        lenient = code in self._lenient
        level = "warning" if lenient else severity or rule.severity
        if self._strict and level == "warning" and rule.strict and code not in self._silence \
                and not lenient:
            self.refuse(rule, field, detail)
            raise ValidationError(f"{code} {_text(rule, detail)}", field=field, code=code)
        nested = reentry.inside()
        with reentry.region():
            if not self._take(nested):
                self._late.append(code)
                return
            try:
                skipped = self._note(rule, code, (code, cause))
            finally:
                self._lock.release()
        if skipped is None:
            return
        text = _text(rule, detail)
        if skipped:
            text += f" ({skipped} more since the last report)"
        try:
            self._report(Finding(code, text, field, level))
        except Exception:
            # A failing log handler must not turn a warning into the host's exception.
            logging.getLogger("opencdp").exception("reporting %s failed", code)

    def _note(self, rule: type[Rule], code: str, key: tuple[str, str]) -> int | None:
        """Count; how many reports were skipped since the last one, or None: not now."""
        self._count(code)
        if code in self._silence:
            return None
        once = rule.once or code in self._lenient
        return self._throttle.admit(key, None if once else self._interval)

    def counts(self) -> dict[str, int]:
        nested = reentry.inside()
        with reentry.region():
            if not self._take(nested):
                return dict(sorted(self._counts.items()))
            try:
                self._count_late()
                return dict(sorted(self._counts.items()))
            finally:
                self._lock.release()

    def _count_late(self) -> None:
        counts, late = self._counts, self._late
        while late:
            code = late.popleft()
            counts[code] = counts.get(code, 0) + 1


def _text(rule: type[Rule], detail: str) -> str:
    return f"{detail}: {rule.message}" if detail else rule.message
