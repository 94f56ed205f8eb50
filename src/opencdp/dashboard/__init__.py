"""The live dashboard: one page over a relay, a worker or a queue, and the sandbox's page.

Served at ``/dashboard`` by ``opencdp serve`` and ``opencdp worker --http-port``, on loopback
by ``opencdp dashboard --queue URL``, and at ``/_sandbox/dashboard/`` by the sandbox. The
page's files ship inside this package; see docs/dashboard.md.

Charts are hand-drawn SVG polylines (``static/common.js``, about 60 lines) rather than a
vendored chart library: two lines over fifteen minutes need no axes engine, and the whole
page stays at 23 KB (8.3 KB gzipped, as served), where the smallest maintained chart
libraries alone add 40-200 KB.
"""

from __future__ import annotations

from .app import DashboardApp, dashboard_app
from .data import ClientSource, QueueSource, Source

__all__ = ["ClientSource", "DashboardApp", "QueueSource", "Source", "dashboard_app"]
