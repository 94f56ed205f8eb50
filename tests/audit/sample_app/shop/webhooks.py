"""A webhook endpoint deployed as a plain function (a serverless handler)."""

from opencdp import Client


def handler(request):
    client = Client.from_env()  # OCDP207
    client.track(request.json["user_id"], "webhook_received")
    client.close()


def describe(request):
    return {"method": request.method, "path": request.path}
