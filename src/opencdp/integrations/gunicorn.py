"""gunicorn server hooks: one line in ``gunicorn.conf.py`` and every worker builds its own
client after the fork and drains it at exit.

.. code-block:: python

    # gunicorn.conf.py
    from opencdp.integrations.gunicorn import post_fork, post_worker_init, worker_exit  # noqa: F401

With ``--preload`` the app is imported once in the master and then forked: clients made
through the integrations are built lazily, so the master never has one; a client the
master did build is dropped (never used) in each worker, which builds its own once the app
is loaded (``post_worker_init``), so that a restarted worker delivers what a durable queue
kept without waiting for a request. Keep
gunicorn's ``graceful_timeout`` (30 s by default) above the client's ``shutdown_timeout``,
or the master kills a worker that is still draining.
"""

from __future__ import annotations

from typing import Any

from ._process import build_all, close_all, forget_all

__all__ = ["post_fork", "post_worker_init", "worker_exit"]


def post_fork(server: Any, worker: Any) -> None:
    """Drop any client inherited from the master; the worker builds its own on first use."""
    forget_all()


def post_worker_init(worker: Any) -> None:
    """Build the Django and Flask integrations' clients as soon as the worker loaded the app."""
    build_all()


def worker_exit(server: Any, worker: Any) -> None:
    """Drain this worker's clients within their ``shutdown_timeout`` before it exits."""
    drained = close_all()
    log = getattr(server, "log", None)
    if log is not None and not drained:
        log.warning("opencdp: worker %s exited before its queue drained (see OCDP302 above "
                    "for a memory queue; a durable queue keeps the rest for the next start)",
                    getattr(worker, "pid", "?"))
