"""Settings for the test suite: the embedded defaults plus a few speed-ups.

DATABASE_URL and REDIS_URL still apply, so the second CI pass runs the same suite against
PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="membership-test-"))

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Ordinary tests run tasks in-process; tests that need the real worker ask for the
# ``celery_worker`` fixture, which switches this off for their duration.
CELERY_TASK_ALWAYS_EAGER = True
# A task failing in a test fails the test; tried once, as in-process tasks are.
CELERY_TASK_EAGER_PROPAGATES = True
# Stripe is never called inside a transaction (the blocks wrapping each test do not count).
STRIPE_REFUSE_CALLS_IN_TRANSACTIONS = True
CELERY_TASK_ANNOTATIONS = {"*": {"max_retries": 0}}
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
# Each test process keeps its own cache: a test clearing it must never flush Redis, where the
# second CI pass keeps the Celery broker.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "local"},
}
