"""Which destinations exist: a name, a stable bit, and how a client builds one.

The engine, the queues, health and metrics read this table instead of naming a platform, so
adding one means registering it (``register``) from its own module, not editing theirs. A
queue stores a message's destinations as a bit set of these ids; the built-in platforms keep
the bits they had before the table existed (1 and 2), so files and streams written then read
unchanged, and a new destination takes the next free power of two.

A leaf: it imports nothing of the package at load time. The built-in destinations register
themselves when their modules are imported; ``_load_builtins`` imports every module of
``opencdp.destinations`` the first time the table is read, so a queue opened without a client
(``opencdp queue stats``) still knows every name.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Registration",
    "bit",
    "bits",
    "mask",
    "name",
    "names",
    "names_in",
    "primary",
    "register",
    "registrations",
    "unregister",
]

Build = Callable[[Any], Any]
"""``build(config: ClientConfig) -> Destination | None``: the destination a client's
configuration asks for, or None when it asks for none. Typed loosely here because the queues
import this module and the configuration imports the queues' types: the typed call is
``opencdp.destinations.base.build_destinations``."""


@dataclass(frozen=True, slots=True)
class Registration:
    name: str
    bit: int
    build: Build | None
    primary: bool = False
    """The destination whose failure a blocking call raises and whose health decides the
    overall answer (the one a client cannot run without)."""


_lock = threading.Lock()
_table: dict[str, Registration] = {}
_loaded = threading.Event()
_SKIP = frozenset({"base", "registry"})


def _load_builtins() -> None:
    if _loaded.is_set():
        return
    _loaded.set()  # before importing: the modules call register() while they load
    from . import destinations

    for info in pkgutil.iter_modules(destinations.__path__):
        if info.name not in _SKIP:
            importlib.import_module(f"{destinations.__name__}.{info.name}")


def register(name: str, build: Build | None, *, bit: int | None = None,
             primary: bool = False) -> int:
    """Add (or replace the factory of) a destination; return its bit.

    A name keeps its bit for the life of the process, and a durable queue stores bits, so a
    destination that is ever written to a shared queue should pass the same ``bit`` in every
    process (the built-ins pass 1 and 2)."""
    if not name or not isinstance(name, str):
        raise ValueError("a destination name is a non-empty string")
    with _lock:
        known = _table.get(name)
        if known is not None and bit is None:
            bit = known.bit
        taken = {r.bit: r.name for r in _table.values() if r.name != name}
        if bit is None:
            bit = 4
            while bit in taken:
                bit <<= 1
        if bit <= 0 or bit & (bit - 1):
            raise ValueError(f"a destination's bit is a power of two, got {bit}")
        if bit in taken:
            raise ValueError(f"bit {bit} is {taken[bit]!r}'s")
        if primary and any(r.primary for r in _table.values() if r.name != name):
            raise ValueError("only one destination is primary")
        _table[name] = Registration(name, bit, build, primary)
        return bit


def unregister(name: str) -> None:
    """Forget a destination (a test's own); a queue holding its messages can no longer name
    them, so this is for tests and plugins being unloaded."""
    with _lock:
        _table.pop(name, None)


def registrations() -> list[Registration]:
    """Every destination, in bit order (the built-ins first)."""
    _load_builtins()
    return sorted(_table.values(), key=lambda r: r.bit)


def names() -> tuple[str, ...]:
    return tuple(r.name for r in registrations())


def bit(destination: str) -> int:
    """The bit of ``destination``; KeyError for a name nobody registered."""
    _load_builtins()
    return _table[destination].bit


def name(destination_bit: int) -> str:
    """The name of a bit; KeyError for a bit nobody registered."""
    for r in registrations():
        if r.bit == destination_bit:
            return r.name
    raise KeyError(destination_bit)


def bits(destinations: Iterable[str]) -> int:
    out = 0
    for destination in destinations:
        out |= bit(destination)
    return out


def mask() -> int:
    """Every registered bit: what a queue keeps of a message's destination set."""
    return bits(names())


def names_in(destination_bits: int) -> tuple[str, ...]:
    """The names of the registered destinations in a bit set, in bit order."""
    return tuple(r.name for r in registrations() if destination_bits & r.bit)


def primary() -> str:
    for r in registrations():
        if r.primary:
            return r.name
    raise LookupError("no primary destination is registered")
