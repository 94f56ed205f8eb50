"""Settings read from the environment, as they should be, except two keys."""

import os

DEBUG = os.environ.get("DEBUG") == "1"
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
CUSTOMERIO_SITE_ID = os.environ["CUSTOMERIO_SITE_ID"]
CUSTOMERIO_TRACK_API_KEY = os.environ.get("CUSTOMERIO_TRACK_API_KEY", "")
CUSTOMERIO_APP_API_KEY = "9c1f4e7a2b8d60354e1a"  # OCDP201
SEGMENT_WRITE_KEY = os.environ.get("SEGMENT_WRITE_KEY", "<your-write-key>")
CUSTOMERIO_SETTINGS = {"region": "eu", "timeout": 10}
OPENCDP = {
    "cdp_api_key": "cdp_4b9e2f7a1c6d8e30",  # OCDP201
    "queue": "sqlite:///var/lib/shop/opencdp.db",
}
