"""Settings for a throwaway real server started by tests and benchmarks (scripts/live_server.py).

Everything is the production settings module, except that static files are served straight from
the finders: collecting and compressing them (minutes on a small machine) would dominate a test
that only needs the pages to render. Select it with DJANGO_SETTINGS_MODULE=scripts.live_settings.
"""

import os as _os

from annotator.settings import *  # noqa: F403
from annotator.settings import STORAGES

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Throwaway accounts: a fast hash keeps seeding 50 experts in seconds (PBKDF2 is slow on purpose).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Campaign knobs (services/campaigns.py reads them with defaults), from the environment so a test
# can run a real campaign on the tiny model in small, quick batches.
for _name in ("CAMPAIGN_BATCH_SIZE", "CAMPAIGN_MAX_NEW_TOKENS", "CAMPAIGN_CRITIC"):
    if _name in _os.environ:
        globals()[_name] = _os.environ[_name]
