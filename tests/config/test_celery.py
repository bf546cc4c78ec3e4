from __future__ import annotations

import re
from typing import Any, cast

import pytest
from django.db import transaction
from kombu import Connection
from kombu.transport import redis as kombu_redis

from accounts import services
from accounts.models import MagicLink, User
from config.celery import app
from tests.conftest import SentEmails, body_text


def test_the_celery_app_is_configured_for_reliable_delivery() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_the_magic_link_task_sends_its_email_through_the_worker(celery_worker: SentEmails) -> None:
    """In the second CI pass this goes through Redis to a real worker process."""
    user = User.objects.create_user("worker@example.com", full_name="Wendy Worker")
    with transaction.atomic():
        services.magic_link_request(email="worker@example.com", next_url="/home/")
    sent = celery_worker.wait_for(1)
    assert len(sent) == 1
    assert sent[0]["To"] == "worker@example.com"
    assert re.search(r"/accounts/login-link/\S+/", body_text(sent[0]))
    link = MagicLink.objects.get(user=user)  # written by the worker, seen in this database
    assert link.next_url == "/home/"
    assert link.used_at is None


def test_a_redis_channel_of_a_closed_connection_fails_with_a_connection_error() -> None:
    """kombu detaches a collected connection from its transport; a channel that then tries to
    reach Redis (to restore an unacknowledged task) must fail the way a lost broker does, which
    every caller ignores, not with an AttributeError that makes the worker exit."""
    connection = Connection("redis://127.0.0.1:6399/3")
    transport = connection.transport
    channel = object.__new__(kombu_redis.Channel)
    channel.connection = cast(Any, transport)
    assert channel._connparams()["port"] == 6399  # an open connection is read as before

    transport.client = None  # what kombu's Connection.collect() leaves behind
    with pytest.raises(transport.connection_errors):
        channel._connparams()
