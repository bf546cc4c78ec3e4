"""What every app's tasks share: the reliable task base, and queueing a task after commit.

Tasks import services, never the reverse: a service that needs a task run after its
transaction commits names it (``enqueue_on_commit("memberships.tasks.send_confirmation_email",
entitlement.pk)``) and this module finds it in Celery's registry when the commit happens.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
from celery import Task, current_app
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# What publishing a task raises while the broker is down or unreachable.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class ReliableTask(Task[..., Any]):
    """A task retried with exponential back-off, at most ``max_retries`` times.

    Tasks must be idempotent: with late acks a task can run again after a worker dies.
    """

    autoretry_for = (Exception,)
    max_retries = 5
    retry_backoff = 2
    retry_backoff_max = settings.TASK_RETRY_WAIT_MAX
    retry_jitter = True
    acks_late = True
    reject_on_worker_lost = True


def task_send(name: str, *args: Any) -> None:
    """Queue the task registered as ``name`` now (in-process when Celery runs eagerly)."""
    if name not in current_app.tasks:
        # Outside a worker, Celery imports the apps' tasks modules only when asked to; the
        # web process asks the first time it queues a task that nothing has imported yet.
        current_app.loader.import_default_modules()
    current_app.tasks[name].delay(*args)


def enqueue_on_commit(name: str, *args: Any, robust: bool = False) -> None:
    """Queue the task registered as ``name`` once the current transaction commits (at once
    outside a transaction).

    ``robust`` is for work that something else catches up on (the sweep): a failure to queue
    is logged instead of raised, and a broker outage as one warning line, not a traceback per
    request, since every request logs it while the outage lasts.
    """
    if not robust:
        transaction.on_commit(lambda: task_send(name, *args))
        return

    def send_or_warn() -> None:
        try:
            task_send(name, *args)
        except BROKER_ERRORS as exc:
            logger.warning("could not queue %s%r, left for the sweep: %s", name, args, exc)

    transaction.on_commit(send_or_warn, robust=True)
