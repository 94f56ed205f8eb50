"""Run a rule's documented examples against real ``Guards`` and say which codes they raise.

The examples are the documentation, so they are written as the code a user would write
(``client.track(...)``) and executed here with ``client`` bound to a stand-in that drives
exactly what the real client does: the call-time check, then, for a message that goes to
Customer.io, ``customerio_refusal`` as its encoder applies it (a dead letter counts as the
rule's outcome). The
sources are this package's own constants, never user input, which is why ``exec`` is
acceptable here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, TypedDict

from ..errors import ValidationError
from ..message import CUSTOMERIO, OPENCDP, Message, new_ulid
from ._core import Example, Finding, GuardPolicy
from ._guards import Guards
from .customerio import customerio_refusal
from .keys import check_track_key
from .schemas import Event, Schemas

__all__ = ["ExampleClient", "Outcome", "run_example"]

_EVERYWHERE = OPENCDP | CUSTOMERIO
_POLICY_FIELDS = frozenset(f.name for f in dataclasses.fields(GuardPolicy))


@dataclasses.dataclass
class Outcome:
    """What running an example produced: reported findings, and the refusal if any."""

    findings: list[Finding] = dataclasses.field(default_factory=list)
    refusal: ValidationError | None = None
    dead_letters: list[str] = dataclasses.field(default_factory=list)

    @property
    def codes(self) -> set[str]:
        found = {f.code for f in self.findings}
        found.update(reason.split(" ", 1)[0] for reason in self.dead_letters)
        if self.refusal is not None and self.refusal.code:
            found.add(self.refusal.code)
        return found


class ExampleClient:
    """The client surface the examples use, over one ``Guards``."""

    def __init__(self, policy: GuardPolicy, report: Callable[[Finding], None],
                 dead_letter: Callable[[str], None]) -> None:
        self.guards = Guards(policy, report)
        self._dead_letter = dead_letter

    def identify(self, user_id: object, attributes: object = None, *,
                 timestamp: object = None, anonymous_id: object = None) -> Message:
        uid, attrs, ts = self.guards.identify(user_id, attributes, timestamp, anonymous_id)
        return self._send("identify", uid, None, attrs, ts)

    def track(self, user_id: object, event: object, properties: object = None, *,
              timestamp: object = None, event_id: object = None) -> Message:
        uid, name, props, ts = self.guards.track(user_id, event, properties, timestamp)
        mid = None if event_id is None else self.guards.event_id(event_id)
        return self._send("track", uid, name, props, ts, mid)

    def track_anonymous(self, anonymous_id: object, event: object, properties: object = None,
                        *, timestamp: object = None) -> Message:
        aid, name, props, ts = self.guards.track_anonymous(anonymous_id, event, properties,
                                                           timestamp)
        return self._send("track_anonymous", aid, name, props, ts)

    def suppress(self, user_id: object) -> Message:
        return self._send("suppress", self.guards.identifier(user_id), None, None, None)

    def register_device(self, user_id: object, device_id: object, platform: object,
                        **fields: Any) -> Message:
        uid, did, data = self.guards.device(user_id, device_id, platform, fields)
        return self._send("add_device", uid, did, data, None)

    def merge_people(self, primary: object, secondary: object) -> Message:
        label, sides = self.guards.merge(primary, secondary)
        return self._send("merge", label, None, sides, None)

    def __getattr__(self, name: str) -> Any:
        """The rest of the Track API (``page``, ``identify_object``...), through the real
        ``calls.TrackAPICalls`` over these guards."""
        from types import SimpleNamespace

        from ..calls import Calls, Queued, TrackAPICalls

        dead_letter = self._dead_letter

        class _Calls(TrackAPICalls):
            def _do(self, queued: Queued) -> str:
                reason = customerio_refusal(queued[0])
                if reason is not None:
                    dead_letter(reason)
                return queued[0].ulid

        calls = _Calls()
        calls._calls = Calls(SimpleNamespace(  # type: ignore[arg-type]
            guards=self.guards, everywhere=_EVERYWHERE, dual=True))
        return getattr(calls, name)

    def _send(self, kind: str, ident: str, name: str | None, data: Any, ts: int | None,
              mid: int | None = None) -> Message:
        message = Message(new_ulid() if mid is None else mid, kind, ident, name, data, ts,
                          _EVERYWHERE)
        reason = customerio_refusal(message)
        if reason is not None:
            self._dead_letter(reason)
        return message


def run_example(example: Example | str) -> Outcome:
    """Execute one example with fresh guards; collect what it reported or refused."""
    if isinstance(example, str):
        example = Example(example)
    outcome = Outcome()
    report = outcome.findings.append

    def client_factory(*_: object, **options: Any) -> ExampleClient:
        policy = {**example.policy, **{k: v for k, v in options.items() if k in _POLICY_FIELDS}}
        return ExampleClient(GuardPolicy(**policy), report, outcome.dead_letters.append)

    def keys(site_id: str, api_key: str, app_api_key: str | None) -> None:
        for finding in check_track_key(site_id, api_key, app_api_key):
            report(finding)

    namespace: dict[str, Any] = {
        "__name__": "opencdp_example",
        "client": client_factory(),
        "Client": client_factory,
        "check_track_key": keys,
        "Schemas": Schemas,
        "Event": Event,
        "TypedDict": TypedDict,
        "dataclass": dataclasses.dataclass,
        "datetime": datetime,
        "date": date,
        "timezone": timezone,
        "Decimal": Decimal,
        "math": math,
    }
    code = compile(example.source, "<example>", "exec", dont_inherit=True)
    try:
        exec(code, namespace)  # noqa: S102
    except ValidationError as exc:
        outcome.refusal = exc
    return outcome
