"""For the ``opencdp import`` tests: files with known bad lines, the command as a process
against a sandbox, and what each platform stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from support.waiting import wait_for


def env_for(sandbox: Any, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CDP_", "CUSTOMERIO_", "OPENCDP_"))}
    env.update({"CDP_API_KEY": "cdp-test-key", "OPENCDP_ENDPOINT": sandbox.opencdp_url,
                "OPENCDP_FALLBACK_ENDPOINTS": "", "CUSTOMERIO_SITE_ID": "sandbox-site",
                "CUSTOMERIO_TRACK_API_KEY": "sandbox-track-key",
                "CUSTOMERIO_TRACK_URL": sandbox.track_url})
    env.update(extra)
    return env


def write_records(path: Path, count: int, bad_every: int = 100, users: int = 200,
                  start_ts: int = 1_500_000_000) -> tuple[set[int], dict[str, int]]:
    """An NDJSON file: per user an identify, then events; every ``bad_every``-th line bad
    (alternately not JSON and refused by a guard). Returns the bad lines and the kinds
    of the good records."""
    bad: set[int] = set()
    kinds = {"identify": 0, "track": 0}
    with open(path, "wb") as out:
        for line in range(1, count + 1):
            user = f"user-{(line - 1) % users}"
            if line % bad_every == bad_every // 2:
                bad.add(line)
                if len(bad) % 2:
                    out.write(b'{"type": "track", "user_id": "u", "event"\n')
                else:
                    out.write(orjson.dumps({"type": "track", "user_id": user, "event": "x",
                                            "timestamp": "2020-01-01"}) + b"\n")
                continue
            if line <= users:
                record = {"type": "identify", "user_id": user, "timestamp": start_ts + line,
                          "attributes": {"email": f"{user}@example.com", "n": line}}
            else:
                record = {"type": "track", "user_id": user, "event": "order_placed",
                          "timestamp": start_ts + line, "properties": {"line": line}}
            kinds[str(record["type"])] += 1
            out.write(orjson.dumps(record) + b"\n")
    return bad, kinds


class Started(subprocess.Popen[bytes]):
    """An import running as a subprocess, writing to files: a pipe nobody reads while the
    test waits fills up (64 KiB of refusals and progress) and stops the import."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.paths = (cwd / f"import-{os.getpid()}-{id(self)}.out",
                      cwd / f"import-{os.getpid()}-{id(self)}.err")
        with open(self.paths[0], "wb") as out, open(self.paths[1], "wb") as err:
            super().__init__([sys.executable, "-m", "opencdp", "import", *args], env=env,
                             cwd=cwd, stdout=out, stderr=err)

    def communicate(self, input: bytes | None = None,
                    timeout: float | None = None) -> tuple[bytes, bytes]:
        self.wait(timeout)
        return self.paths[0].read_bytes(), self.paths[1].read_bytes()


def start_import(args: list[str], env: dict[str, str], cwd: Path) -> Started:
    return Started(args, env, cwd)


def run_import(args: list[str], env: dict[str, str], cwd: Path,
               timeout: float = 120) -> tuple[int, list[dict[str, Any]], str]:
    proc = subprocess.run([sys.executable, "-m", "opencdp", "import", *args], env=env,
                          cwd=cwd, capture_output=True, timeout=timeout, check=False)
    return proc.returncode, lines(proc.stdout), proc.stderr.decode(errors="replace")


def lines(stdout: bytes) -> list[dict[str, Any]]:
    """The JSON lines of a run's stdout (a killed run's last line may be cut short)."""
    out = []
    for raw in stdout.splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue
    return out


def refused_lines(events: list[dict[str, Any]]) -> set[int]:
    return {e["line"] for e in events if e.get("event") == "refused"}


def summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    found = [e for e in events if e.get("event") == "summary"]
    assert found, events[-5:]
    return found[-1]


def checkpoint_of(directory: Path) -> Path | None:
    found = sorted(directory.glob(".*.opencdp-import-*.json"))
    return found[0] if found else None


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data


def wait_queued(directory: Path, at_least: int, seconds: float = 60) -> dict[str, Any]:
    """The checkpoint once it records ``at_least`` queued records."""
    found: list[dict[str, Any]] = []

    def reached() -> bool:
        path = checkpoint_of(directory)
        data = read_checkpoint(path) if path else None
        if data is not None and data["queued"] >= at_least:
            found.append(data)
            return True
        return False

    assert wait_for(reached, seconds), f"the checkpoint never reached {at_least} queued"
    return found[0]


def stored_events(sandbox: Any, service: str) -> list[str]:
    """Every stored event id at ``service``, repeats included."""
    return [e["id"] for p in sandbox.people(service) for e in p["events"]]


def distinct_keys(sandbox: Any) -> int:
    """Distinct Idempotency-Keys the gateway saw (every import request carries one)."""
    stats = sandbox.stats()["opencdp"]
    return int(stats["accepted"]) - int(stats["duplicates"])


def settle(sandbox: Any, accepted: int, seconds: float = 60) -> None:
    """Wait until the gateway has accepted ``accepted`` distinct keys (delivery after a
    resume may lag the command's own exit only when it was cut short)."""
    wait_for(lambda: distinct_keys(sandbox) >= accepted, seconds)
