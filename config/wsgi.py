from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

if settings.BUILD_STEP:
    # BUILD_STEP lets settings load without Stripe's secrets, for steps that serve nothing.
    raise ImproperlyConfigured("BUILD_STEP is set: it is for build steps only, never for serving the site.")
