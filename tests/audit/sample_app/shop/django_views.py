"""Django views."""

import time

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views import View

from opencdp.integrations.django import get_client

from .clients import cio, tracker
from .events import CART_VIEWED, ORDER_COMPLETED


def signup(request: HttpRequest) -> JsonResponse:
    user_id = request.POST["user_id"]
    attributes = {"email": request.POST["email"], "created_at": int(time.time())}
    tracker.identify(user_id, attributes)
    tracker.track(user_id, "user_signed_up")
    return JsonResponse({"ok": True})


@login_required
def view_cart(request: HttpRequest) -> JsonResponse:
    cio.track(customer_id=request.user.pk, name=CART_VIEWED)  # OCDP206, OCDP208
    return JsonResponse({"ok": True})


def newsletter(request: HttpRequest) -> JsonResponse:
    email = request.POST["email"]
    user_id = str(request.user.pk)
    tracker.track(user_id, f"newsletter_signup_{email}")  # OCDP204, OCDP205
    tracker.identify(request.user.email, {"newsletter": True})  # OCDP212
    return JsonResponse({"ok": True})


def place_order(request: HttpRequest) -> JsonResponse:
    get_client().track(str(request.user.pk), "Order Placed")  # OCDP206
    return JsonResponse({"ok": True})


class CheckoutView(View):
    def post(self, request: HttpRequest, order_id: int) -> JsonResponse:
        properties = {
            "order_id": order_id,
            "completed_at": time.time() * 1000,  # OCDP202
        }
        tracker.track(str(request.user.pk), ORDER_COMPLETED, properties)
        return JsonResponse({"ok": True})

    def get(self, request: HttpRequest, order_id: int) -> JsonResponse:
        started = time.time()
        tracker.track(str(request.user.pk), "checkout_viewed", {"order_id": order_id})
        elapsed_ms = (time.time() - started) * 1000
        return JsonResponse({"elapsed_ms": elapsed_ms})
