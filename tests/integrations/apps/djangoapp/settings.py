import os
import tempfile

from app_options import options

SECRET_KEY = "integration-test-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "djangoapp.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "opencdp.integrations.django.OpenCDPConfig",
]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("APP_DB", os.path.join(tempfile.gettempdir(), "djangoapp.sqlite3")),
}}
USE_TZ = True
if os.environ.get("APP_NO_SETTINGS") != "1":
    OPENCDP = options()
