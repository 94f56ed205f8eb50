"""The registry of audit rules, one module per rule, in code order."""

from __future__ import annotations

from ..rule import Rule
from .blocking_in_handler import BlockingCallInHandler
from .client_per_request import ClientPerRequest
from .dynamic_event_name import DynamicEventName
from .email_unsubscribe import EmailUnsubscribe
from .event_name_case import EventNameCase
from .hardcoded_credentials import HardcodedCredential
from .millisecond_timestamps import MillisecondTimestamp
from .mutable_user_id import MutableUserId
from .parse_failure import ParseFailure
from .pii_in_event_name import PiiInEventName
from .track_before_identify import TrackBeforeIdentify
from .unthrottled_send_loop import UnthrottledSendLoop
from .wrong_api_key import WrongApiKey

__all__ = [
    "BlockingCallInHandler",
    "ClientPerRequest",
    "DynamicEventName",
    "EmailUnsubscribe",
    "EventNameCase",
    "HardcodedCredential",
    "MillisecondTimestamp",
    "MutableUserId",
    "ParseFailure",
    "PiiInEventName",
    "TrackBeforeIdentify",
    "UnthrottledSendLoop",
    "WrongApiKey",
    "all_rules",
    "get_rule",
]

_RULES: tuple[type[Rule], ...] = tuple(
    sorted(
        (
            ParseFailure,
            HardcodedCredential,
            MillisecondTimestamp,
            TrackBeforeIdentify,
            DynamicEventName,
            PiiInEventName,
            EventNameCase,
            ClientPerRequest,
            BlockingCallInHandler,
            UnthrottledSendLoop,
            EmailUnsubscribe,
            WrongApiKey,
            MutableUserId,
        ),
        key=lambda rule: rule.code,
    )
)


def all_rules() -> tuple[type[Rule], ...]:
    """Every rule class, sorted by code."""
    return _RULES


def get_rule(code: str) -> type[Rule]:
    """The rule with ``code``; KeyError names the unknown code."""
    for rule in _RULES:
        if rule.code == code.upper():
            return rule
    raise KeyError(f"no audit rule has code {code!r}")
