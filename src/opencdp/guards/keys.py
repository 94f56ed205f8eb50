"""Keys: Customer.io has two kinds, and the wrong one only shows up as a 401 later.

Track API calls authenticate with HTTP Basic ``site_id:track_api_key``; the App API (sends,
reporting) with ``Bearer <app_api_key>``. "App API keys are not the same as the Tracking API
keys", yet they are easily swapped in configuration. The shape test is a heuristic: Track
site ids and keys are 20 hexadecimal characters, App API keys are longer, and service-account
tokens start with ``sa_``. Nothing here ever echoes a key.
"""

from __future__ import annotations

import re
from typing import Final

from ._core import Finding, Rule

__all__ = ["TrackKeyIsAppKey", "TrackKeySwapped", "check_track_key", "explain_unauthorized"]

_TRACK_SHAPE: Final = re.compile(r"[0-9a-f]{20}")


class TrackKeyIsAppKey(Rule):
    """The Track API key is the App API key, or looks like one.

    Every Track call would be answered 401. Create or copy the Track API key (and its Site ID)
    from Customer.io's "API credentials" page, section "Track API keys".
    """

    code = "OCDP140"
    severity = "warning"
    message = ("Track API key looks like an App API key; use the Site ID + Track API key pair "
               "for tracking, the App API key only for sends")
    bad = ('check_track_key("a1b2c3d4e5f6a7b8c9d0", "0123456789abcdef0123456789abcdef", '
           '"0123456789abcdef0123456789abcdef")',
           'check_track_key("a1b2c3d4e5f6a7b8c9d0", "sa_live_9f8e7d6c5b4a", None)')
    good = ('check_track_key("a1b2c3d4e5f6a7b8c9d0", "f0e1d2c3b4a5968778695a4b", '
            '"0123456789abcdef0123456789abcdef")',
            'check_track_key("a1b2c3d4e5f6a7b8c9d0", "f0e1d2c3b4a596877869", None)')


class TrackKeySwapped(Rule):
    """The Track API key equals the Site ID: the two Basic-auth halves were swapped or copied."""

    code = "OCDP141"
    severity = "warning"
    message = "Track API key equals the Site ID; pass site_id and the Track API key separately"
    bad = ('check_track_key("a1b2c3d4e5f6a7b8c9d0", "a1b2c3d4e5f6a7b8c9d0", None)',)
    good = ('check_track_key("a1b2c3d4e5f6a7b8c9d0", "f0e1d2c3b4a596877869", None)',)


def check_track_key(site_id: str, api_key: str, app_api_key: str | None) -> list[Finding]:
    """Findings about a Customer.io key configuration (empty when it looks right)."""
    findings: list[Finding] = []
    track = (api_key or "").strip()
    app = (app_api_key or "").strip()
    if track and track == (site_id or "").strip():
        findings.append(_finding(TrackKeySwapped, "api_key"))
    if track and (
        (app and track == app)
        or track.startswith(("sa_live_", "sa_test_", "sa_"))
        or (len(track) >= 32 and not _TRACK_SHAPE.fullmatch(track))
    ):
        findings.append(_finding(TrackKeyIsAppKey, "api_key"))
    return findings


def explain_unauthorized(service: str) -> str:
    """The message to log when Customer.io answers 401 on ``service`` ("track" or "app")."""
    if service == "app":
        return ("Customer.io App API answered 401 Unauthorized: App API calls (transactional "
                "sends, reporting) need the App API key as a Bearer token, not the Site ID + "
                "Track API key pair. Create one under Account Settings > API credentials > "
                "App API keys, and pass it as CustomerIO(app_api_key=...). Check the region "
                "too: a US workspace cannot use the EU App API host.")
    return ("Customer.io Track API answered 401 Unauthorized: Track calls (identify, track, "
            "devices, suppress) authenticate with HTTP Basic Site ID + Track API key, which is "
            "not the App API key. Copy both from Account Settings > API credentials > Track "
            "API keys into CustomerIO(site_id=..., api_key=...), or CUSTOMERIO_SITE_ID and "
            "CUSTOMERIO_TRACK_API_KEY. An App API key passed as api_key is the usual cause.")


def _finding(rule: type[Rule], field: str) -> Finding:
    return Finding(rule.code, rule.message, field, rule.severity)
