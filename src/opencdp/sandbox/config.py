"""The sandbox's options and the per-service fault settings.

Fault settings arrive as JSON (start-up option, ``POST /_sandbox/faults``), so they are parsed
here into small frozen objects once, and the request path only reads attributes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..checks import is_loopback
from ..clock import Clock
from ..config import redact
from ..errors import ConfigurationError

__all__ = [
    "ERROR_STATUSES",
    "SERVICES",
    "STRICT_RATE_LIMIT",
    "FaultSettings",
    "Outage",
    "SandboxConfig",
    "parse_faults",
]

SERVICES = ("opencdp", "customerio")
STRICT_RATE_LIMIT = 100.0
ERROR_STATUSES = frozenset({500, 502, 503, 504, 521, 523})


@dataclass(frozen=True)
class Outage:
    """A window of absolute wall-clock seconds during which a service answers ``down_status``."""

    start: float
    end: float

    def active(self, now: float) -> bool:
        return self.start <= now < self.end

    def to_json(self) -> dict[str, float]:
        return {"start": self.start, "end": self.end}


def _rate(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigurationError(f"faults: {name} must be a number from 0 to 1")
    return float(value)


def _nonneg(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"faults: {name} must be a number >= 0")
    return float(value)


def _outage(raw: object, now: float) -> Outage:
    if not isinstance(raw, Mapping):
        raise ConfigurationError("faults: each outage must be an object")
    if "start" in raw or "end" in raw:
        start, end = _nonneg(raw.get("start"), "start"), _nonneg(raw.get("end"), "end")
    else:
        start = now + _nonneg(raw.get("down_from", 0), "down_from")
        end = start + _nonneg(raw.get("down_for"), "down_for")
    if end <= start:
        raise ConfigurationError("faults: an outage must end after it starts")
    return Outage(start, end)


@dataclass(frozen=True)
class FaultSettings:
    """What one service does wrong, and how often.

    Rates are probabilities from 0 to 1 drawn per request. ``statuses`` are the 5xx codes an
    injected error picks from. ``rate_limit_rps`` overrides the workspace's request limit
    (``0`` turns limiting off, ``None`` keeps the sandbox default).
    """

    error_rate: float = 0.0
    statuses: tuple[int, ...] = (503,)
    rate_limit_storm: float = 0.0
    retry_after: float = 1.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    reset_rate: float = 0.0
    reset_after_store_rate: float = 0.0
    hang_rate: float = 0.0
    down: bool = False
    down_status: int = 503
    outages: tuple[Outage, ...] = ()
    rate_limit_rps: float | None = None
    seed: int | None = None

    @property
    def active(self) -> bool:
        """Whether any fault can fire (so the fault-free path skips all of them)."""
        return bool(
            self.error_rate or self.rate_limit_storm or self.latency_ms or self.jitter_ms
            or self.reset_rate or self.reset_after_store_rate or self.hang_rate
            or self.down or self.outages
        )

    def is_down(self, now: float) -> bool:
        return self.down or any(o.active(now) for o in self.outages)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "outages":
                value = [o.to_json() for o in value]
            elif f.name == "statuses":
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def parse(
        cls, raw: Mapping[str, Any], base: FaultSettings | None = None, now: float | None = None
    ) -> FaultSettings:
        """Build settings from JSON; keys left out keep their value in ``base``."""
        if not isinstance(raw, Mapping):
            raise ConfigurationError("faults: each service's settings must be an object")
        now = time.time() if now is None else now
        known = {f.name for f in fields(cls)} | {"down_from", "down_for"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigurationError(f"faults: unknown setting(s) {', '.join(unknown)}")
        values: dict[str, Any] = {} if base is None else {
            f.name: getattr(base, f.name) for f in fields(cls)
        }
        for name in ("error_rate", "rate_limit_storm", "reset_rate", "reset_after_store_rate",
                     "hang_rate"):
            if name in raw:
                values[name] = _rate(raw[name], name)
        for name in ("latency_ms", "jitter_ms", "retry_after"):
            if name in raw:
                values[name] = _nonneg(raw[name], name)
        if "statuses" in raw:
            statuses = raw["statuses"]
            if (not isinstance(statuses, list) or not statuses
                    or any(s not in ERROR_STATUSES for s in statuses)):
                raise ConfigurationError(
                    f"faults: statuses must be a non-empty list of {sorted(ERROR_STATUSES)}"
                )
            values["statuses"] = tuple(int(s) for s in statuses)
        if "down" in raw:
            if not isinstance(raw["down"], bool):
                raise ConfigurationError("faults: down must be true or false")
            values["down"] = raw["down"]
        if "down_status" in raw:
            if raw["down_status"] not in ERROR_STATUSES:
                raise ConfigurationError(f"faults: down_status must be one of "
                                         f"{sorted(ERROR_STATUSES)}")
            values["down_status"] = int(raw["down_status"])
        if "outages" in raw:
            if not isinstance(raw["outages"], list):
                raise ConfigurationError("faults: outages must be a list")
            values["outages"] = tuple(_outage(o, now) for o in raw["outages"])
        if "down_from" in raw or "down_for" in raw:
            # The shorthand replaces earlier outages unless ``outages`` comes with it.
            extra = _outage({"down_from": raw.get("down_from", 0),
                             "down_for": raw.get("down_for")}, now)
            kept = values.get("outages", ()) if "outages" in raw else ()
            values["outages"] = (*kept, extra)
        if "rate_limit_rps" in raw:
            rps = raw["rate_limit_rps"]
            values["rate_limit_rps"] = None if rps is None else _nonneg(rps, "rate_limit_rps")
        if "seed" in raw:
            if raw["seed"] is not None and (isinstance(raw["seed"], bool)
                                            or not isinstance(raw["seed"], int)):
                raise ConfigurationError("faults: seed must be an integer or null")
            values["seed"] = raw["seed"]
        return cls(**values)


def parse_faults(
    raw: Mapping[str, Any] | None,
    current: Mapping[str, FaultSettings] | None = None,
    now: float | None = None,
) -> dict[str, FaultSettings]:
    """Parse ``{"opencdp": {...}, "customerio": {...}}``; services left out keep ``current``."""
    out = {s: (current or {}).get(s, FaultSettings()) for s in SERVICES}
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        raise ConfigurationError("faults must be an object keyed by service")
    unknown = sorted(set(raw) - set(SERVICES))
    if unknown:
        raise ConfigurationError(
            f"faults: unknown service(s) {', '.join(unknown)}; use opencdp or customerio"
        )
    for service, settings in raw.items():
        out[service] = FaultSettings.parse(settings, base=out[service], now=now)
    return out


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """Everything ``create_app`` needs. Credentials never appear in the repr.

    ``host`` must be a loopback address unless ``allow_remote``: the admin API takes no
    credentials, so on another interface anyone who reaches the port can read every stored
    person and change the faults.
    """

    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = False
    cdp_key: str = field(default="cdp-test-key", repr=False)
    site_id: str = "sandbox-site"
    track_key: str = field(default="sandbox-track-key", repr=False)
    app_key: str = field(default="sandbox-app-key", repr=False)
    faults: Mapping[str, Any] | None = None
    rate_limit_rps: float | None = None
    strict: bool = False
    read_timeout: float = 30.0
    service_token: str = field(default="sa_live_sandbox", repr=False)
    workspace_id: int = 1
    allow_remote: bool = False
    clock: Clock | None = field(default=None, repr=False, compare=False)
    """Whose time the rate windows, outages and timestamps read (the machine's by default).
    A test passes a ``ManualClock`` and advances it instead of sleeping out a window."""

    @property
    def effective_rate_limit(self) -> float:
        """Requests/s per workspace: the option when given, else 100 in strict mode and no
        limit otherwise (Customer.io does not strictly enforce its own)."""
        if self.rate_limit_rps is not None:
            return float(self.rate_limit_rps)
        return STRICT_RATE_LIMIT if self.strict else 0.0

    def __post_init__(self) -> None:
        for name in ("cdp_key", "site_id", "track_key", "app_key", "service_token"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"sandbox: {name} must be a non-empty string")
        if not isinstance(self.allow_remote, bool):
            raise ConfigurationError("sandbox: allow_remote must be true or false")
        if not isinstance(self.host, str) or not (self.allow_remote or is_loopback(self.host)):
            raise ConfigurationError(
                f"sandbox: host {self.host!r} is not a loopback address, and the admin API "
                "(/_sandbox) takes no credentials; listen on 127.0.0.1, ::1 or localhost, or "
                "pass --allow-remote (Sandbox(allow_remote=True)) to serve it to the network")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigurationError("sandbox: port must be an integer from 0 to 65535")
        rps = self.rate_limit_rps
        if rps is not None and (isinstance(rps, bool) or not isinstance(rps, (int, float))
                                or rps < 0):
            raise ConfigurationError("sandbox: rate_limit_rps must be a number >= 0 (0 = off)")
        if not isinstance(self.strict, bool):
            raise ConfigurationError("sandbox: strict must be true or false")
        timeout = self.read_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError("sandbox: read_timeout must be a number of seconds > 0")
        if isinstance(self.workspace_id, bool) or not isinstance(self.workspace_id, int):
            raise ConfigurationError("sandbox: workspace_id must be an integer")
        parse_faults(self.faults)  # fail at construction, not at start-up

    def describe(self) -> str:
        return (f"SandboxConfig(host={self.host!r}, port={self.port}, tls={self.tls}, "
                f"cdp_key={redact(self.cdp_key)}, site_id={self.site_id!r}, "
                f"strict={self.strict})")
