"""Reconciliation finds what lost webhooks never told the platform, and repairs it once: the
periodic events reconciliation, the ``reconcile_memberships`` command, and the reminders the
clock (not an event) calls for.

End to end through the sandbox: its webhooks reach the live server only for the purchase, then
the sandbox drops the deliveries the test is about (every copy), as an endpoint that was down
for longer than Stripe retries would have lost them.
"""

from __future__ import annotations

import io
import time
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import OutboxMessage, User
from billing.models import CheckoutAttempt, Payment, StripeAccount, StripeSubscription, WebhookEvent
from billing.services.lifecycle import grace_reminders_record
from billing.services.webhooks import webhook_events_reconcile
from memberships.models import Entitlement, EntitlementChange, Offer
from tests import factories
from tests.billing.test_stripe_flows import _offer, _paid, _start_checkout, _wait, connected

__all__ = ["connected"]  # the fixture

pytestmark = pytest.mark.django_db(transaction=True)

BUYER = "bea@example.com"


def _settled(sandbox: Any) -> None:
    """Every delivery made (or dropped) and every stored event processed."""
    sandbox.wait_for_deliveries()
    _wait(
        lambda: not WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).exists(),
        what="every stored event to be processed",
    )


def _buy(client: Client, sandbox: Any, live_server: Any, *, recurring: bool) -> tuple[Offer, User, CheckoutAttempt]:
    offer = _offer(recurring=recurring, amount=2500)
    attempt = _start_checkout(client, email=BUYER)
    sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    assert sandbox.pay_checkout(attempt.stripe_session_id, email=BUYER, name="Bea Buyer").paid
    _wait(lambda: _paid(attempt), what="the purchase to be fulfilled")
    _settled(sandbox)
    attempt.refresh_from_db()
    return offer, User.objects.get(email=BUYER), attempt


def _keys(prefix: str) -> list[str]:
    return list(OutboxMessage.objects.filter(key__startswith=prefix).values_list("key", flat=True))


def _subjects(sent: Any, count: int) -> list[str]:
    """The subjects sent, sorted: the real worker's email files are named to the second, so
    their order is not the order of sending."""
    sent.wait_for(count)
    time.sleep(0.5)  # and no more than that
    return sorted(str(message["Subject"]) for message in sent.all())


def _sees_the_paywall(client: Client, buyer: User) -> None:
    client.force_login(buyer)
    response = client.get("/community/members/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "You don't have access to it yet" in page
    assert buyer.email in page
    assert "Log out" in page


def _reconcile_memberships(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("reconcile_memberships", *args, stdout=out)
    return out.getvalue().splitlines()


# --- The periodic events reconciliation ----------------------------------------------------------
def test_a_refund_whose_webhooks_were_lost_is_found_by_reconciliation_which_revokes_access_and_emails_once(
    client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    offer, buyer, _ = _buy(client, stripe_sandbox, live_server, recurring=False)
    payment = Payment.objects.get()
    [confirmation] = _subjects(celery_worker, 1)

    stripe_sandbox.set_delivery(drop=2)  # refund.created and charge.refunded, every copy
    stripe_sandbox.client().v1.refunds.create(
        {"payment_intent": payment.payment_intent_id}, {"stripe_account": connected.account_id}
    )
    _settled(stripe_sandbox)
    assert not WebhookEvent.objects.filter(type__in=["refund.created", "charge.refunded"]).exists()
    entitlement = Entitlement.objects.get(user=buyer, offer=offer)
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert entitlement.has_access()

    assert webhook_events_reconcile() == 2
    _settled(stripe_sandbox)

    entitlement.refresh_from_db()
    assert entitlement.status == Entitlement.Status.REFUNDED
    assert not entitlement.has_access()
    assert Payment.objects.get().amount_refunded == 2500
    assert len(_keys("revoked:")) == 1
    assert len(_keys("confirmation:")) == 1
    assert _subjects(celery_worker, 2) == sorted([confirmation, "Your access to Inner Circle has ended"])
    _sees_the_paywall(client, buyer)

    changes = EntitlementChange.objects.count()
    assert webhook_events_reconcile() == 0
    report = _reconcile_memberships()
    assert report[-1].startswith(f"Stripe account {connected.account_id}:")
    assert "0 disagreed with Stripe" in report[-1]
    assert EntitlementChange.objects.count() == changes
    assert len(_keys("revoked:")) == 1
    assert len(_subjects(celery_worker, 2)) == 2


@pytest.mark.parametrize(
    ("recurring", "lost", "status"),
    [
        (False, "dispute", Entitlement.Status.DISPUTED),
        (True, "cancellation", Entitlement.Status.CANCELED),
    ],
)
def test_lost_lifecycle_events_of_every_kind_are_recovered_by_reconciliation(
    client, connected, stripe_sandbox, live_server, celery_worker, recurring, lost, status
) -> None:
    offer, buyer, attempt = _buy(client, stripe_sandbox, live_server, recurring=recurring)
    options = {"stripe_account": connected.account_id}
    if lost == "dispute":
        stripe_sandbox.set_delivery(drop=2)  # charge.dispute.created and charge.dispute.funds_withdrawn
        stripe_sandbox.create_dispute(Payment.objects.get().payment_intent_id)
    else:
        stripe_sandbox.set_delivery(drop=1)  # customer.subscription.deleted
        stripe_sandbox.client().v1.subscriptions.cancel(attempt.stripe_subscription_id, None, options)
    _settled(stripe_sandbox)
    assert Entitlement.objects.get(user=buyer, offer=offer).has_access()

    assert webhook_events_reconcile() >= 1
    _settled(stripe_sandbox)
    entitlement = Entitlement.objects.get(user=buyer, offer=offer)
    assert entitlement.status == status
    assert not entitlement.has_access()
    assert len(_keys("revoked:")) == 1


# --- reconcile_memberships --------------------------------------------------------------------
def test_the_command_reports_a_cancellation_that_was_never_delivered_and_repairs_it_unless_dry_run(
    client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    offer, buyer, attempt = _buy(client, stripe_sandbox, live_server, recurring=True)
    subscription_id = attempt.stripe_subscription_id
    assert subscription_id
    stripe_sandbox.set_delivery(drop=1)  # customer.subscription.deleted
    stripe_sandbox.client().v1.subscriptions.cancel(subscription_id, None, {"stripe_account": connected.account_id})
    _settled(stripe_sandbox)
    entitlement = Entitlement.objects.get(user=buyer, offer=offer)
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert entitlement.has_access()
    assert StripeSubscription.objects.get().status == "active"
    changes = EntitlementChange.objects.count()

    dry = _reconcile_memberships("--dry-run")
    assert f"{subscription_id} ({BUYER}, Inner Circle): Stripe says canceled, the membership said active" in dry[0]
    assert dry[0].endswith("-> not repaired (dry run; a repair makes it canceled)")
    assert "1 disagreed with Stripe (dry run: nothing repaired)" in dry[-1]
    entitlement.refresh_from_db()
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert StripeSubscription.objects.get().status == "active"
    assert EntitlementChange.objects.count() == changes
    assert _keys("revoked:") == []

    repaired = _reconcile_memberships()
    assert repaired[0] == (
        f"{subscription_id} ({BUYER}, Inner Circle): Stripe says canceled, the membership said active "
        "-> repaired (now canceled)"
    )
    assert repaired[-1].startswith(f"Stripe account {connected.account_id}: checked 1 subscription,")
    assert "1 disagreed with Stripe (1 repaired)" in repaired[-1]
    entitlement.refresh_from_db()
    assert entitlement.status == Entitlement.Status.CANCELED
    assert not entitlement.has_access()
    assert StripeSubscription.objects.get().status == "canceled"
    assert entitlement.changes.first().reason == "Subscription canceled: access ended"
    assert len(_keys("revoked:")) == 1
    # The confirmation and the revocation, once each.
    assert _subjects(celery_worker, 2) == sorted(["You're in: Inner Circle", "Your access to Inner Circle has ended"])
    _sees_the_paywall(client, buyer)

    again = _reconcile_memberships()
    assert again == [again[-1]]
    assert "0 disagreed with Stripe" in again[-1]
    assert len(_keys("revoked:")) == 1


def test_the_command_records_a_subscription_whose_every_event_was_lost(client, connected, stripe_sandbox) -> None:
    """No endpoint at all: the platform never heard of the purchase, and the events are older
    than the events reconciliation looks back."""
    offer = _offer(recurring=True, amount=2500)
    attempt = _start_checkout(client, email=BUYER)
    assert stripe_sandbox.pay_checkout(attempt.stripe_session_id, email=BUYER).paid
    subscription = stripe_sandbox.client().v1.subscriptions.list(
        {"status": "all"}, {"stripe_account": connected.account_id}
    )
    [subscription_id] = [sub.id for sub in subscription.data]

    dry = _reconcile_memberships("--dry-run")
    assert dry[0] == (
        f"{subscription_id} ({BUYER}, Inner Circle): Stripe says active, the platform had no record of it "
        "-> not repaired (dry run; a repair makes it active)"
    )
    assert not Entitlement.objects.exists()

    repaired = _reconcile_memberships()
    assert repaired[0].endswith("-> repaired (now active)")
    entitlement = Entitlement.objects.get(offer=offer, user__email=BUYER)
    assert entitlement.has_access()
    assert entitlement.backed_by == subscription_id
    assert Payment.objects.get().amount == 2500
    assert len(_keys("confirmation:")) == 1
    assert "0 disagreed" in _reconcile_memberships()[-1]


def test_the_command_without_a_connected_account_says_so(db) -> None:
    assert _reconcile_memberships() == ["No Stripe account is connected: nothing to reconcile."]


def test_a_subscription_stripe_cannot_read_is_reported_and_the_rest_goes_on(client, connected, stripe_sandbox) -> None:
    StripeSubscription.objects.create(
        subscription_id="sub_gone",
        stripe_account_id=connected.account_id,
        user=User.objects.create_user(BUYER),
        offer=factories.paid_offer(recurring=True),
        status="active",
        created=timezone.now(),
        synced_at=timezone.now(),
    )
    report = _reconcile_memberships()
    assert report[0].startswith(f"sub_gone ({BUYER}): Stripe could not be read:")
    assert report[-1].endswith("; 1 could not be checked.")


# --- The clock's reminders ------------------------------------------------------------------------
def _past_due(*, until: timedelta, status: str = Entitlement.Status.PAST_DUE) -> Entitlement:
    offer = factories.paid_offer(recurring=True, grace_period_days=7)
    user = User.objects.create_user(f"{status}{int(until.total_seconds())}@example.com")
    return Entitlement.objects.create(
        user=user,
        offer=offer,
        source=Entitlement.Source.SUBSCRIPTION,
        status=status,
        access_until=timezone.now() + until,
        backed_by="sub_test",
    )


@pytest.mark.django_db
def test_the_grace_reminder_goes_once_a_day_before_the_end_and_the_suspension_once_after_it(
    django_capture_on_commit_callbacks, mailoutbox
) -> None:
    failing = _past_due(until=timedelta(days=3))
    renewing = _past_due(until=timedelta(hours=12), status=Entitlement.Status.ACTIVE)
    assert renewing.access_until is not None
    assert failing.access_until is not None
    end = failing.access_until

    assert grace_reminders_record(now=end - timedelta(days=1, minutes=1)) == 0
    # The emails are built when sent, from the membership as it is then.
    with time_machine.travel(end - timedelta(hours=23), tick=False), django_capture_on_commit_callbacks(execute=True):
        assert grace_reminders_record() == 1
    assert grace_reminders_record(now=end - timedelta(hours=2)) == 0
    assert _keys("grace_ending:") == [f"grace_ending:{failing.pk}:{int(end.timestamp())}"]
    assert _keys("suspended:") == []
    [reminder] = mailoutbox
    assert reminder.to == [failing.user.email]
    assert reminder.subject == f"Update your card to keep {failing.offer.title}"

    with time_machine.travel(end + timedelta(minutes=5), tick=False), django_capture_on_commit_callbacks(execute=True):
        assert grace_reminders_record() == 1
    assert grace_reminders_record(now=end + timedelta(hours=5)) == 0
    [suspension] = OutboxMessage.objects.filter(key__startswith="suspended:")
    assert mailoutbox[1].subject == f"Your access to {failing.offer.title} is suspended"
    assert suspension.key == f"suspended:{failing.pk}:{int(end.timestamp())}"
    assert suspension.payload == {
        "email": "access_revoked",
        "entitlement": failing.pk,
        "reason": "payment_failed",
        "grace_ended": int(end.timestamp()),
    }
    assert len(mailoutbox) == 2

    # The active one, ending within the day too (its renewal due), gets nothing.
    assert not OutboxMessage.objects.filter(payload__entitlement=renewing.pk).exists()


@pytest.mark.django_db
def test_a_grace_period_extended_by_a_new_failure_gets_its_own_reminder(db) -> None:
    entitlement = _past_due(until=timedelta(hours=12))
    assert grace_reminders_record() == 1
    Entitlement.objects.filter(pk=entitlement.pk).update(access_until=timezone.now() + timedelta(hours=20))
    assert grace_reminders_record() == 1
    assert len(_keys("grace_ending:")) == 2


def test_reconciliation_reads_nothing_without_a_connected_account(db) -> None:
    assert not StripeAccount.objects.exists()
    assert webhook_events_reconcile() == 0
