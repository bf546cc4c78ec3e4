"""The outbox's Stripe writes: done once per key after commit, outside any transaction, retried
with the same idempotency key until Stripe answers, and left to a person when it cannot."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from accounts import outbox
from accounts.models import OUTBOX_STUCK_SENDING_AFTER, OutboxMessage

pytestmark = pytest.mark.django_db

BROKER_DOWN = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
ACTION = "test_refund"
EVENTS_PAGE = "/dashboard/settings/integrations/stripe/events/"


@dataclass
class Performer:
    """A stand-in for a Stripe write: records each call, and raises the errors it is given,
    one per call, before it succeeds."""

    errors: list[Exception] = field(default_factory=list)
    calls: list[tuple[dict[str, Any], str, bool]] = field(default_factory=list)

    def __call__(self, payload: dict[str, Any], idempotency_key: str) -> str | None:
        self.calls.append((payload, idempotency_key, connection.in_atomic_block))
        if self.errors:
            raise self.errors.pop(0)
        return f"re_{payload['payment']}"

    @property
    def keys(self) -> list[str]:
        return [key for _, key, _ in self.calls]


@pytest.fixture
def performer() -> Iterator[Performer]:
    performer = Performer()
    outbox.action_register(ACTION, performer)
    yield performer
    del outbox._performers[ACTION]


def _record(key: str = "refund:7:req-1") -> OutboxMessage:
    with transaction.atomic():
        return outbox.outbox_action_record(key=key, action=ACTION, payment=7, amount=2500)


def test_a_write_is_recorded_once_per_key_and_done_once_after_commit(
    performer, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        row = _record()
        assert performer.calls == []  # nothing before the commit
    with django_capture_on_commit_callbacks(execute=True) as again:
        assert _record().pk == row.pk  # a double submit
    assert again == []  # nothing queued for the row that already existed
    assert OutboxMessage.objects.count() == 1
    for callback in callbacks:
        callback()

    row.refresh_from_db()
    assert (row.kind, row.status, row.attempts, row.result) == ("stripe", "sent", 1, "re_7")
    assert row.payload == {"action": ACTION, "payment": 7, "amount": 2500}
    assert [(payload, key) for payload, key, _ in performer.calls] == [(row.payload, "outbox:refund:7:req-1")]
    assert outbox.outbox_status("refund:7:req-1") == row
    assert outbox.outbox_status("refund:7:other") is None


def test_an_action_nobody_registered_is_refused() -> None:
    with pytest.raises(LookupError, match="no_such_action"):
        outbox.outbox_action_record(key="refund:1:x", action="no_such_action", payment=1)
    assert not OutboxMessage.objects.exists()


def test_the_idempotency_key_is_the_rows_key_and_a_long_one_is_hashed_to_stripes_limit() -> None:
    assert outbox.idempotency_key("refund:7:req-1") == "outbox:refund:7:req-1"
    long = "transfer:" + "x" * 300
    hashed = outbox.idempotency_key(long)
    assert len(hashed) <= 255
    assert hashed == outbox.idempotency_key(long)
    assert hashed != outbox.idempotency_key(long + "y")


def test_the_broker_down_at_commit_leaves_the_write_pending_and_the_sweep_does_it(
    performer, django_capture_on_commit_callbacks, caplog
) -> None:
    caplog.set_level(logging.WARNING)
    with (
        mock.patch("celery.app.task.Task.delay", side_effect=BROKER_DOWN),
        django_capture_on_commit_callbacks(execute=True),
    ):
        row = _record()
    row.refresh_from_db()
    assert row.status == OutboxMessage.Status.PENDING
    assert performer.calls == []
    assert ["Error 111" in r.getMessage() for r in caplog.records] == [True]

    assert outbox.outbox_sweep() == outbox.OutboxSweep()  # too recent: its task may be on its way
    assert outbox.outbox_sweep(now=timezone.now() + timedelta(minutes=3)) == outbox.OutboxSweep(sent=1)
    row.refresh_from_db()
    assert (row.status, row.result) == ("sent", "re_7")
    assert performer.keys == ["outbox:refund:7:req-1"]


def test_a_transient_error_is_retried_with_growing_waits_and_the_same_key_until_it_succeeds(
    performer, django_capture_on_commit_callbacks
) -> None:
    performer.errors = [ConnectionError("Stripe unreachable"), ConnectionError("Stripe unreachable again")]
    with django_capture_on_commit_callbacks(execute=True):
        row = _record()
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "Stripe unreachable" in row.last_error
    first_try = row.claimed_at
    assert first_try is not None

    assert outbox.outbox_sweep(now=first_try + timedelta(minutes=1)) == outbox.OutboxSweep()  # resting
    assert outbox.outbox_sweep(now=first_try + timedelta(minutes=3)) == outbox.OutboxSweep(failed=1)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 2)
    second_try = first_try + timedelta(minutes=3)
    assert outbox.outbox_sweep(now=second_try + timedelta(minutes=3)) == outbox.OutboxSweep()  # waits 4 now
    assert outbox.outbox_sweep(now=second_try + timedelta(minutes=5)) == outbox.OutboxSweep(sent=1)

    row.refresh_from_db()
    assert (row.status, row.attempts, row.result, row.last_error) == ("sent", 3, "re_7", "")
    assert performer.keys == ["outbox:refund:7:req-1"] * 3


def test_a_permanent_failure_fails_the_write_at_once_and_the_events_page_offers_retry(
    performer, client, owner, django_capture_on_commit_callbacks
) -> None:
    performer.errors = [outbox.PermanentFailure("This charge has already been refunded.")]
    with django_capture_on_commit_callbacks(execute=True):
        row = _record()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "This charge has already been refunded.")
    assert outbox.outbox_sweep(now=timezone.now() + timedelta(hours=2)) == outbox.OutboxSweep()  # for a person

    client.force_login(owner)
    page = client.get(EVENTS_PAGE).content.decode()
    assert "Stuck Stripe writes" in page
    assert "Stuck emails" not in page
    assert "Stripe write" in page
    assert row.key in page
    assert "This charge has already been refunded." in page
    assert f"/dashboard/settings/integrations/outbox/{row.pk}/retry/" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/dashboard/settings/integrations/outbox/{row.pk}/retry/", follow=True)
    assert f"The Stripe write {row.key} was queued again." in response.content.decode()
    row.refresh_from_db()
    assert (row.status, row.result) == ("sent", "re_7")
    assert performer.keys == ["outbox:refund:7:req-1"] * 2
    assert "Stuck Stripe writes" not in client.get(EVENTS_PAGE).content.decode()


def _orphan(*, minutes_ago: int, attempts: int = 1) -> OutboxMessage:
    """A write claimed by a worker that died during the Stripe call."""
    return OutboxMessage.objects.create(
        kind=OutboxMessage.Kind.STRIPE,
        key="refund:7:orphan",
        payload={"action": ACTION, "payment": 7},
        status=OutboxMessage.Status.SENDING,
        attempts=attempts,
        claimed_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_a_write_left_sending_by_a_dead_worker_is_done_again_with_the_same_key_and_not_flagged(
    performer, client, owner
) -> None:
    row = _orphan(minutes_ago=1)
    assert outbox.outbox_sweep() == outbox.OutboxSweep()  # it may still be calling Stripe
    assert performer.calls == []
    OutboxMessage.objects.filter(pk=row.pk).update(
        claimed_at=timezone.now() - OUTBOX_STUCK_SENDING_AFTER - timedelta(minutes=1)
    )
    client.force_login(owner)
    page = client.get(EVENTS_PAGE).content.decode()
    assert row.key in page
    assert "possibly sent twice" not in page

    assert outbox.outbox_sweep() == outbox.OutboxSweep(sent=1)
    assert outbox.outbox_sweep(now=timezone.now() + timedelta(hours=1)) == outbox.OutboxSweep()
    row.refresh_from_db()
    assert (row.status, row.attempts, row.possibly_duplicated, row.result) == ("sent", 2, False, "re_7")
    assert performer.keys == ["outbox:refund:7:orphan"]


def test_a_write_orphaned_again_is_retried_and_on_its_last_try_left_to_a_person(performer) -> None:
    row = _orphan(minutes_ago=15)
    assert outbox.outbox_sweep() == outbox.OutboxSweep(sent=1)  # not given up after one orphaning
    OutboxMessage.objects.filter(pk=row.pk).update(
        status=OutboxMessage.Status.SENDING,
        attempts=outbox.MAX_ATTEMPTS,
        claimed_at=timezone.now() - timedelta(minutes=15),
    )
    assert outbox.outbox_sweep() == outbox.OutboxSweep(given_up=1)
    row.refresh_from_db()
    assert row.status == OutboxMessage.Status.FAILED
    assert "stopped on every try" in row.last_error
    assert len(performer.calls) == 1


def test_a_person_retrying_an_orphaned_write_does_not_flag_it_as_possibly_duplicated(
    performer, django_capture_on_commit_callbacks
) -> None:
    row = _orphan(minutes_ago=15)
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.outbox_retry(message=row)
    row.refresh_from_db()
    assert (row.status, row.possibly_duplicated) == ("sent", False)
    assert performer.keys == ["outbox:refund:7:orphan"]


@pytest.mark.django_db(transaction=True)
def test_the_performer_is_never_called_inside_a_transaction(performer) -> None:
    # Sent after a real commit: eager Celery runs the task from the commit's callback.
    _record("refund:7:after-commit")
    # Swept by hand while the broker is down.
    with mock.patch("celery.app.task.Task.delay", side_effect=BROKER_DOWN):
        _record("refund:7:swept")
    OutboxMessage.objects.filter(key="refund:7:swept").update(created_at=timezone.now() - timedelta(minutes=5))
    call_command("sweep_events", stdout=io.StringIO())

    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}
    assert [(key, in_atomic) for _, key, in_atomic in performer.calls] == [
        ("outbox:refund:7:after-commit", False),
        ("outbox:refund:7:swept", False),
    ]

    # Sending a write from inside a transaction is refused before anything is claimed.
    row = OutboxMessage.objects.get(key="refund:7:swept")
    OutboxMessage.objects.filter(pk=row.pk).update(status=OutboxMessage.Status.PENDING)
    with pytest.raises(RuntimeError, match="outside any database transaction"), transaction.atomic():
        outbox.outbox_send(message_id=row.pk)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 1)
    assert len(performer.calls) == 2
