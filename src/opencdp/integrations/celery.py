"""Celery: one client per worker process, drained when the process exits, nothing to wire.

.. code-block:: python

    from celery import Celery
    from opencdp.integrations.celery import OpenCDP

    app = Celery("tasks", broker="redis://localhost:6379/0")
    cdp = OpenCDP(app, queue="sqlite:///opencdp-outbox.db")  # options over the environment

    @app.task
    def welcome(user_id):
        cdp.client.track(user_id, "welcome_sent")

Prefork pool children leave through ``os._exit``, which skips ``atexit``: a module-level
client there loses what it had not sent. ``OpenCDP`` connects ``worker_process_init``
(drop anything inherited across the fork, then build the child's client on a thread, so
that a restarted worker delivers what a durable queue kept without waiting for a task, and
a slow queue never delays the child's start-up) and ``worker_process_shutdown`` (flush and close
with ``close(timeout=client.config.shutdown_timeout)``), which Celery sends in each child
before it exits, at warm shutdown and when ``--max-tasks-per-child`` recycles it; and
``worker_shutdown`` for the solo and thread pools. With a durable queue
(``sqlite:///``, ``redis://``) a task's ``track()`` is on disk before the task acks, and
what a stopped worker had not delivered waits there for the next one; with the memory queue
a worker stopped under gateway latency loses it (counted in OCDP302).
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from celery import signals

from ..client import Client
from ..errors import ConfigurationError
from ..options import ClientOptions
from ._process import ProcessClient, close_all, forget_all
from ._settings import config_from_mapping

if sys.version_info >= (3, 11):
    from typing import Unpack
else:
    from typing_extensions import Unpack

__all__ = ["OpenCDP"]


def _on_process_init(**kwargs: Any) -> None:
    forget_all()
    threading.Thread(target=_build, name="opencdp-build", daemon=True).start()


_holders: weakref.WeakSet[ProcessClient[Client]] = weakref.WeakSet()
"""Celery's own clients: built at a child's start, unlike those of a web app (or of the
tasks module a web app imports only to call ``.delay()``)."""


def _build() -> None:
    for holder in list(_holders):
        try:
            holder.get()
        except Exception:  # noqa: S110 - not built: the first task's use builds it or raises
            pass


def _on_shutdown(**kwargs: Any) -> None:
    close_all()


class OpenCDP:
    """Holds the client of each Celery process. ``options`` are ``Client`` options over the
    environment, read when a process first uses the client (so a web app that only imports
    the tasks to call ``.delay()`` needs none), with the integrations' defaults
    (``_settings.PROCESS_SILENCE``); or ``factory`` builds the client exactly as it says."""

    def __init__(self, app: Any = None, factory: Callable[[], Client] | None = None,
                 **options: Unpack[ClientOptions]) -> None:
        if factory is not None and options:
            raise ConfigurationError("OpenCDP() takes a factory or options, not both")
        self.app = app
        self._holder: ProcessClient[Client] = ProcessClient(
            factory or (lambda: Client(config_from_mapping(options, "OpenCDP(app, ...)"))))
        _holders.add(self._holder)
        signals.worker_process_init.connect(_on_process_init, weak=False,
                                            dispatch_uid="opencdp.process_init")
        signals.worker_process_shutdown.connect(_on_shutdown, weak=False,
                                                dispatch_uid="opencdp.process_shutdown")
        signals.worker_shutdown.connect(_on_shutdown, weak=False,
                                        dispatch_uid="opencdp.worker_shutdown")

    def __repr__(self) -> str:
        return f"OpenCDP({self._holder!r})"

    @property
    def client(self) -> Client:
        """This process's client, built on first use (in the pool child, after the fork)."""
        return self._holder.get()

    def override_client(self, client: Client) -> AbstractContextManager[Client]:
        """In tests (with ``task_always_eager``): tasks get ``client`` until the block ends."""
        return self._holder.override(client)

    def close(self) -> bool:
        """Close the worker process's client now (the worker's shutdown signal does it
        too); False if it could not drain in time."""
        return self._holder.close()
