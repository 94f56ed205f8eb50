"""The sandbox's request log: the newest requests to the emulated platforms, for its page.

Kept where the fault middleware sees every request, so injected errors, resets and hangs are
logged as the client met them (a reset or a hang has no status: "no answer"). Bounded, and a
list per entry, so the batch path pays one append and two stores per request.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .http import Message, Scope, Send

__all__ = ["KEPT", "RequestLog"]

KEPT = 500


class _Watch:
    """The ``send`` handed on: records the status, and keeps the ``transport`` attribute the
    fault middleware reads from its ``send`` to reset or hang a connection."""

    __slots__ = ("_entry", "_send", "transport")

    def __init__(self, send: Send, entry: list[Any]) -> None:
        self._send = send
        self._entry = entry
        self.transport = getattr(getattr(send, "__self__", None), "transport", None)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            entry = self._entry
            entry[5] = message["status"]
            entry[6] = round((time.perf_counter() - entry[7]) * 1000, 1)
        await self._send(message)


class RequestLog:
    def __init__(self, kept: int = KEPT) -> None:
        self.entries: deque[list[Any]] = deque(maxlen=kept)
        self.seq = 0

    def __repr__(self) -> str:
        return f"<RequestLog {len(self.entries)} of {self.seq}>"

    def watch(self, service: str, scope: Scope, send: Send) -> Send:
        self.seq += 1
        entry = [self.seq, time.time(), service, scope["method"], scope["path"], None, None,
                 time.perf_counter()]
        self.entries.append(entry)
        return _Watch(send, entry).send

    def clear(self) -> None:
        self.entries.clear()

    def after(self, seq: int, limit: int = 200) -> list[dict[str, Any]]:
        """Entries newer than ``seq``, oldest first (at most the newest ``limit``)."""
        found = [e for e in self.entries if e[0] > seq][-limit:]
        return [{"seq": e[0], "t": round(e[1], 3), "service": e[2], "method": e[3],
                 "path": e[4], "status": e[5], "ms": e[6]} for e in found]
