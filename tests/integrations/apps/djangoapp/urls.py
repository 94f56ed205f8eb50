from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from opencdp.integrations.django import get_client, health_view


@csrf_exempt
def track(request, i):
    get_client().track(f"t{i}", "signed_up", {"i": i})
    return HttpResponse("ok")


def ping(request):
    return HttpResponse("pong")


urlpatterns = [
    path("ping", ping),
    path("track/<int:i>", track),
    path("health", health_view),
    path("health/<str:destination>", health_view),
]
