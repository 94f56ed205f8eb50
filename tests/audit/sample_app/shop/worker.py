"""The Celery app, with opencdp's integration holding one client per worker process."""

from celery import Celery

from opencdp.integrations.celery import OpenCDP

app = Celery("shop", broker="redis://localhost:6379/0")
cdp = OpenCDP(app)
