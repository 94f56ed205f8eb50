"""Take everything a queue holds for one destination, acknowledging as it goes."""

from __future__ import annotations

import time
from typing import Any


def drain(box: Any, destination: str, lease_seconds: float = 30.0) -> list[int]:
    ids: list[int] = []
    for _ in range(1000):
        batch = box.lease(destination, 500, time.time(), lease_seconds)
        if not batch:
            return ids
        ids.extend(x.message.id for x in batch)
        box.ack(destination, [x.message.id for x in batch])
    raise AssertionError("drain did not finish")
