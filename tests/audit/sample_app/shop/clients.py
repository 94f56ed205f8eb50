"""Clients built once, at import, and shared by the whole app."""

from functools import lru_cache

from customerio import APIClient, CustomerIO

from opencdp import AsyncClient, Client

from . import settings

cio = CustomerIO(settings.CUSTOMERIO_SITE_ID, settings.CUSTOMERIO_TRACK_API_KEY)
cio_app = APIClient(settings.CUSTOMERIO_APP_API_KEY)
reporting = APIClient(settings.CUSTOMERIO_TRACK_API_KEY)  # OCDP211
tracker = Client.from_env()


@lru_cache(maxsize=1)
def async_tracker() -> AsyncClient:
    return AsyncClient.from_env()
