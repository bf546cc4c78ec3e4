"""The Celery application.

Reliability settings (late acks, reject on worker lost, prefetch 1) live in settings.py under
the CELERY_ namespace; ``core.tasks.ReliableTask`` adds bounded, backed-off retries for tasks
that talk to the outside world. ``_redis_channel_fails_like_a_lost_connection`` works around
a kombu bug that made a worker exit when Redis restarted under it.
"""

from __future__ import annotations

import os
from typing import Any, cast

import redis
from celery import Celery
from celery.signals import worker_init
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _redis_channel_fails_like_a_lost_connection() -> None:
    """Make a Redis channel whose connection kombu already closed fail with a connection error.

    When Redis goes away while the worker waits in BRPOP and holds an unacknowledged task,
    Celery's consumer first lets kombu collect the connection: closing the channel stops at the
    failed BRPOP read, before the channel is marked closed, and the connection is detached from
    its transport anyway (``transport.client = None``). The consumer then closes the connection
    again; this time the channel gets further, tries to restore the unacknowledged task through
    a new connection pool, and reads the broker's address from the detached transport:
    ``AttributeError: 'NoneType' object has no attribute 'hostname'``. No caller expects that
    error (they expect connection errors), so it escapes the consumer and the worker exits.
    Raised as a connection error instead, it is ignored like any other failure to talk to a
    broker that is gone, and the consumer reconnects. The task keeps running in its pool process;
    with late acks Redis still holds it (when it kept its data) until it is acknowledged.

    Seen with kombu 5.7.0 and Celery 5.7.0 (``tests/config/test_broker_restart.py``). The second
    close came with Celery 5.7.0 (celery/celery#10242, which releases the old socket); kombu's
    main branch still reads the transport unguarded, and the same dereference caused kombu
    issues 582 and 970 on other paths. Drop this once a kombu release checks it.
    """
    channel_class = cast(Any, kombu_redis.Channel)
    connparams = channel_class._connparams
    if getattr(connparams, "fails_like_a_lost_connection", False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("the connection to Redis was closed")
        return connparams(self, asynchronous=asynchronous)

    _connparams.fails_like_a_lost_connection = True  # type: ignore[attr-defined]
    channel_class._connparams = _connparams


_redis_channel_fails_like_a_lost_connection()

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
