"""Ready-made wiring for the frameworks and servers apps run under, one module each.

``django``, ``fastapi`` (Starlette too), ``flask``, ``celery`` and ``gunicorn``: each builds
one client per process after any fork, never at import, and closes it at worker exit with
``client.close(timeout=client.config.shutdown_timeout)``. ``pytest_plugin`` is the pytest
plugin. Import the module you need; none imports a framework until you do.
"""
