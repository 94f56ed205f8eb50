"""The event loop the engine runs on, and what must be imported before its thread starts."""

from __future__ import annotations

import asyncio
import importlib

__all__ = ["new_loop", "preimport"]

PREIMPORT = ("encodings.idna", "encodings.ascii", "email.utils", "http.cookies",
             "aiohttp.client", "aiohttp.connector", "aiohttp.resolver", "ssl",
             "concurrent.futures.thread", "aiohttp.resolver", "asyncio.base_events", "uvloop")


def preimport() -> None:
    """Import what the engine's thread would import lazily, before the thread starts: a
    fork that catches a lazy import half-done leaves the child a broken module (an
    ``encodings.idna`` without ``getregentry``, and every connection failing)."""
    for name in PREIMPORT:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    "opencdp.invalid".encode("idna")


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (``opencdp[speed]``): it roughly halves the engine's
    per-request cost; the standard loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
