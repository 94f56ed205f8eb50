import os

from app_options import client_options
from celery import Celery

from opencdp import Client
from opencdp.integrations.celery import OpenCDP

app = Celery("celery_app", broker=os.environ["APP_BROKER"])
app.conf.worker_hijack_root_logger = False
app.conf.broker_connection_retry_on_startup = True
app.conf.task_default_queue = os.environ.get("APP_CELERY_QUEUE", "celery")
cdp = OpenCDP(app, factory=lambda: Client(**client_options()))


@app.task
def track(i: int) -> None:
    cdp.client.track(f"t{i}", "signed_up", {"i": i})
    with open(os.environ["APP_ACCEPTED"], "a") as accepted:
        accepted.write(f"{i}\n")
