"""The sweep and the reconciliation by hand, and the outbox's rows on the staff events page."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from accounts.models import OutboxMessage
from billing import stripe_gateway
from billing.models import WebhookEvent
from billing.services import webhooks
from memberships import services
from memberships.models import Offer
from tests import factories
from tests.billing.helpers import ACCOUNT_ID, FakeStripe, event

pytestmark = pytest.mark.django_db


def _run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def _lost_confirmation(django_capture_on_commit_callbacks) -> OutboxMessage:
    offer = Offer.objects.create(title="Free Circle", slug="free-circle", status=Offer.Status.PUBLISHED)
    with django_capture_on_commit_callbacks(execute=False):  # its task is lost
        services.offer_claim_free(offer=offer, email="bea@example.com")
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    return OutboxMessage.objects.get()


def test_sweep_events_sends_lost_outbox_rows_and_requeues_lost_events_and_says_so(
    monkeypatch, django_capture_on_commit_callbacks
) -> None:
    row = _lost_confirmation(django_capture_on_commit_callbacks)
    factories.stripe_account()
    fake = FakeStripe(monkeypatch)
    with django_capture_on_commit_callbacks(execute=False):
        webhooks.webhook_event_record(
            event=event(
                "checkout.session.completed",
                fake.paid_session(factories.checkout_attempt(factories.paid_offer(slug="paid"))),
            )
        )
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(minutes=5))

    with django_capture_on_commit_callbacks(execute=True):
        output = _run("sweep_events")

    assert "Stripe events: 1 queued again for processing." in output
    assert "Outbox: 1 sent, 0 not sent, 0 given up." in output
    row.refresh_from_db()
    assert row.status == OutboxMessage.Status.SENT
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED
    assert sorted(m.to[0] for m in mail.outbox) == ["bea@example.com", "buyer@example.com"]
    assert "Outbox: 0 sent" in _run("sweep_events")


def test_reconcile_stripe_records_missed_events_since_the_time_asked_and_says_how_many(monkeypatch) -> None:
    factories.stripe_account()
    asked: list[int] = []

    def events_list(*, account_id: str, types: list[str], created_gte: int) -> list[dict]:
        asked.append(created_gte)
        return [event("customer.created", {"id": "cus_1"}) | {"id": "evt_missed"}]

    monkeypatch.setattr(stripe_gateway, "events_list", events_list)
    output = _run("reconcile_stripe", "--since", "2h")
    assert "1 never delivered, now recorded and queued for processing" in output
    assert abs(asked[0] - (timezone.now() - timedelta(hours=2)).timestamp()) < 60
    assert WebhookEvent.objects.get().event_id == "evt_missed"

    output = _run("reconcile_stripe", "--since", "2024-05-01T12:00:00")
    assert "Stripe events since 2024-05-01 12:00:00 UTC: 0 never delivered" in output
    assert asked[1] == 1714564800


def test_reconcile_stripe_without_a_connected_account_says_so() -> None:
    assert "No Stripe account is connected" in _run("reconcile_stripe")


def test_reconcile_stripe_refuses_a_since_it_cannot_read() -> None:
    from django.core.management import CommandError

    factories.stripe_account(account_id=ACCOUNT_ID)
    with pytest.raises(CommandError, match="--since"):
        _run("reconcile_stripe", "--since", "yesterday")


def test_the_events_page_shows_a_stuck_email_and_retry_sends_it(
    client, owner, django_capture_on_commit_callbacks
) -> None:
    row = _lost_confirmation(django_capture_on_commit_callbacks)
    client.force_login(owner)
    page = client.get("/dashboard/settings/integrations/stripe/events/").content.decode()
    assert "Stuck emails" in page
    assert row.key in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/dashboard/settings/integrations/outbox/{row.pk}/retry/", follow=True)
    assert response.status_code == 200
    assert f"{row.key} was queued again" in response.content.decode()
    row.refresh_from_db()
    assert row.status == OutboxMessage.Status.SENT
    assert [m.to for m in mail.outbox] == [["bea@example.com"]]
    assert "Stuck emails" not in client.get("/dashboard/settings/integrations/stripe/events/").content.decode()


def test_members_cannot_retry_an_outbox_row(client, member, django_capture_on_commit_callbacks) -> None:
    row = _lost_confirmation(django_capture_on_commit_callbacks)
    client.force_login(member)
    assert client.post(f"/dashboard/settings/integrations/outbox/{row.pk}/retry/").status_code == 403
    row.refresh_from_db()
    assert row.status == OutboxMessage.Status.PENDING
