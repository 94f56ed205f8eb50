"""Celery tasks: where slow deliveries belong, as long as they are paced."""

import time

from celery import shared_task
from customerio import SendEmailRequest

from opencdp import Client

from .clients import cio, cio_app, tracker
from .worker import app, cdp


@shared_task
def sync_all_customers(customers: list[dict[str, str]]) -> None:
    for customer in customers:
        cio.identify(id=customer["id"], email=customer["email"])  # OCDP209


@shared_task
def backfill_signups(customers: list[dict[str, str]]) -> None:
    for customer in customers:
        tracker.identify(customer["id"], {"email": customer["email"]})
        tracker.track(customer["id"], "user_signed_up")


@shared_task
def send_weekly_digest(customers: list[dict[str, str]]) -> None:
    for customer in customers:
        request = SendEmailRequest(
            transactional_message_id="weekly_digest",
            identifiers={"id": customer["id"]},
            to=customer["email"],
        )
        cio_app.send_email(request)
        time.sleep(0.02)


@shared_task
def retry_identify(customer_id: str, email: str) -> None:
    for attempt in range(3):
        try:
            cio.identify(id=customer_id, email=email)
            return
        except OSError:
            time.sleep(2**attempt)


@shared_task
def import_rows(rows: list[dict[str, str]]) -> None:
    client = Client.from_env()  # OCDP207
    for row in rows:
        client.identify(row["id"], {"email": row["email"]})
    client.close(timeout=10)


@app.task
def send_invoice(customer_id: str, invoice_id: str) -> None:
    cdp.client.track(customer_id, f"invoice_{invoice_id}_sent")  # OCDP204
