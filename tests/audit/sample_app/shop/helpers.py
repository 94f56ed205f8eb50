"""Helpers handed a client by their callers, without annotations."""


def record_refund(client, order):
    client.track(order.user_id, "Refund Issued", {"amount": order.amount})  # OCDP206


def sync_newsletter(cio, user):
    cio.identify(user.email, {"newsletter": True})  # OCDP212


def record_coupon(analytics, user_id, code):
    analytics.track(user_id, f"coupon_{code}_used")  # OCDP204


def fetch_invoice(client, url):
    response = client.get(url)
    client.close()
    return response.json()
