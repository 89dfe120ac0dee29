"""Settings for a throwaway real server started by tests and benchmarks (scripts/live_server.py).

Everything is the production settings module, except that static files are served straight from
the finders: collecting and compressing them (minutes on a small machine) would dominate a test
that only needs the pages to render. Select it with DJANGO_SETTINGS_MODULE=scripts.live_settings.
"""

from annotator.settings import *  # noqa: F403
from annotator.settings import STORAGES

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Throwaway accounts: a fast hash keeps seeding 50 experts in seconds (PBKDF2 is slow on purpose).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
