"""The Celery application.

Reliability settings (late acks, reject on worker lost, prefetch 1) live in settings.py under
the CELERY_ namespace; ``core.tasks.ReliableTask`` adds bounded, backed-off retries for tasks
that talk to the outside world.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("membership")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _refuse_build_step_settings(**_: object) -> None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    if settings.BUILD_STEP:
        # BUILD_STEP lets settings load without Stripe's secrets, for steps that serve nothing.
        raise ImproperlyConfigured("BUILD_STEP is set: it is for build steps only, never for running a worker.")
