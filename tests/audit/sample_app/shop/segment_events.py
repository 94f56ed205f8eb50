"""Segment-style calls kept from before the move to Customer.io."""

from segment import analytics

from . import settings

analytics.write_key = settings.SEGMENT_WRITE_KEY


def track_refund(user_id: str, amount: float) -> None:
    analytics.track(user_id, "Order Refunded", {"amount": amount})  # OCDP206


def track_signup(user_id: str, email: str) -> None:
    analytics.identify(user_id, {"email": email})
    analytics.track(user_id, "user_signed_up")
