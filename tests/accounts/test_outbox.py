"""The outbox: emails that committed changes require survive a broker outage and a crash."""

from __future__ import annotations

import logging
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from accounts import outbox
from accounts.models import OutboxMessage
from memberships import services
from memberships.models import Entitlement, Offer

pytestmark = pytest.mark.django_db

BROKER_DOWN = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.fixture
def free_offer(db: None) -> Offer:
    return Offer.objects.create(title="Free Circle", slug="free-circle", status=Offer.Status.PUBLISHED)


def _claim(offer: Offer, email: str = "bea@example.com") -> Entitlement:
    return services.offer_claim_free(offer=offer, email=email, full_name="Bea Buyer").entitlement


def test_a_claim_records_its_confirmation_email_in_the_outbox_and_sends_it(
    free_offer, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        entitlement = _claim(free_offer)
    row = OutboxMessage.objects.get()
    assert row.key.startswith(f"confirmation:{entitlement.pk}:")
    assert row.payload == {"email": "offer_confirmation", "entitlement": entitlement.pk}
    assert row.status == OutboxMessage.Status.SENT
    assert row.attempts == 1
    assert [m.to for m in mail.outbox] == [["bea@example.com"]]
    assert "Free Circle" in mail.outbox[0].subject


def test_the_broker_down_at_commit_leaves_the_row_pending_logs_one_line_and_the_sweep_sends_it_once(
    free_offer, django_capture_on_commit_callbacks, caplog
) -> None:
    caplog.set_level(logging.WARNING)
    with (
        mock.patch("celery.app.task.Task.delay", side_effect=BROKER_DOWN),
        django_capture_on_commit_callbacks(execute=True),
    ):
        _claim(free_offer)
    row = OutboxMessage.objects.get()
    assert row.status == OutboxMessage.Status.PENDING
    assert mail.outbox == []
    assert len(caplog.records) == 1, caplog.records
    assert caplog.records[0].exc_info is None
    assert "Error 111" in caplog.records[0].getMessage()

    assert outbox.outbox_sweep() == outbox.OutboxSweep()  # too recent: its task may be on its way
    later = timezone.now() + timedelta(minutes=3)
    assert outbox.outbox_sweep(now=later) == outbox.OutboxSweep(sent=1)
    assert outbox.outbox_sweep(now=later + timedelta(minutes=30)) == outbox.OutboxSweep()
    row.refresh_from_db()
    assert row.status == OutboxMessage.Status.SENT
    assert len(mail.outbox) == 1


def _orphan(entitlement: Entitlement, *, minutes_ago: int, possibly_duplicated: bool = False) -> OutboxMessage:
    """A row claimed by a worker that died before marking it sent."""
    return OutboxMessage.objects.create(
        key=f"confirmation:{entitlement.pk}:orphan",
        payload={"email": "offer_confirmation", "entitlement": entitlement.pk},
        status=OutboxMessage.Status.SENDING,
        attempts=1,
        claimed_at=timezone.now() - timedelta(minutes=minutes_ago),
        possibly_duplicated=possibly_duplicated,
    )


def test_a_row_left_sending_by_a_dead_worker_is_sent_once_more_logged_as_possibly_duplicated(
    free_offer, caplog
) -> None:
    entitlement = _claim(free_offer)  # no commit here: its own row is never sent
    mail.outbox.clear()
    recent = _orphan(entitlement, minutes_ago=1)
    assert outbox.outbox_sweep() == outbox.OutboxSweep()  # it may still be sending
    OutboxMessage.objects.filter(pk=recent.pk).update(claimed_at=timezone.now() - timedelta(minutes=15))
    caplog.set_level(logging.WARNING)

    assert outbox.outbox_send(message_id=recent.pk) == "sent"
    assert outbox.outbox_send(message_id=recent.pk) == "skipped"
    recent.refresh_from_db()
    assert (recent.status, recent.attempts, recent.possibly_duplicated) == ("sent", 2, True)
    assert len(mail.outbox) == 1
    assert ["possibly duplicated" in r.getMessage() for r in caplog.records] == [True]


def test_a_row_orphaned_again_after_its_one_retry_is_failed_and_left_to_a_person(free_offer) -> None:
    entitlement = _claim(free_offer)
    mail.outbox.clear()
    row = _orphan(entitlement, minutes_ago=15, possibly_duplicated=True)
    assert outbox.outbox_sweep() == outbox.OutboxSweep(given_up=1)
    row.refresh_from_db()
    assert row.status == OutboxMessage.Status.FAILED
    assert "may have been sent" in row.last_error
    assert mail.outbox == []


def test_the_sweep_sends_pending_rows_whose_task_was_lost(free_offer, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False):  # the task is lost: never run
        _claim(free_offer, "one@example.com")
        _claim(free_offer, "two@example.com")
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert outbox.outbox_sweep() == outbox.OutboxSweep(sent=2)
    assert sorted(m.to[0] for m in mail.outbox) == ["one@example.com", "two@example.com"]
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}


def test_recording_the_same_key_twice_writes_one_row_and_sends_one_email(
    free_offer, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        entitlement = _claim(free_offer)
    row = OutboxMessage.objects.get()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        again = outbox.outbox_email_record(key=row.key, email="offer_confirmation", entitlement=entitlement.pk)
    assert again.pk == row.pk
    assert callbacks == []  # nothing queued for a row that already existed
    assert OutboxMessage.objects.count() == 1


def test_a_failed_send_goes_back_to_pending_and_is_failed_after_its_last_try(
    free_offer, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        _claim(free_offer)
    row = OutboxMessage.objects.get()
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=ConnectionRefusedError("smtp")):
        assert outbox.outbox_send(message_id=row.pk) == "pending"
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("pending", 1)
        assert "smtp" in row.last_error
        OutboxMessage.objects.filter(pk=row.pk).update(attempts=outbox.MAX_ATTEMPTS - 1)
        assert outbox.outbox_send(message_id=row.pk) == "failed"
    assert outbox.outbox_send(message_id=row.pk) == "skipped"  # failed rows wait for a person
    assert mail.outbox == []


def test_a_repeated_claim_sends_its_login_link_through_the_outbox(
    client, member, django_capture_on_commit_callbacks
) -> None:
    offer = Offer.objects.create(title="Free Circle", slug="free-circle", status=Offer.Status.PUBLISHED)
    services.offer_claim_free(offer=offer, email=member.email)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/offers/free-circle/checkout/", {"email": member.email, "full_name": "Mia"})
    assert response.status_code == 200
    row = OutboxMessage.objects.get(key__startswith=f"login-link:{member.pk}:")
    assert row.payload["email"] == "magic_link"
    assert row.status == OutboxMessage.Status.SENT
    assert [m.to for m in mail.outbox] == [[member.email]]
    assert "/accounts/login-link/" in mail.outbox[0].body
