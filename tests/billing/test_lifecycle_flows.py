"""A membership's life after the purchase, end to end: the buyer pays on the sandbox's hosted
checkout, the sandbox's clock runs renewals and failed charges, the buyer uses the billing
portal, the creator refunds and cancels, the bank disputes; every change reaches the platform
as real webhooks on the live server, processed on the ``celery_worker`` (a real worker on
Redis in CI's second pass). Each test checks what the buyer and the database see: the
entitlement, its history, the emails (each once), and the private group's page.

The platform's own clock moves only while reading, after the deliveries settled
(``reading_at``): access is stored as Stripe's dates and compared with now when read.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from accounts.models import OutboxMessage, User
from billing.models import Payment, StripeAccount, StripeSubscription, WebhookEvent
from billing.services import lifecycle
from memberships.models import Entitlement, Offer
from tests.billing import lifecycle_helpers as h
from tests.billing.test_stripe_flows import _connect, _deliver, _events
from tests.conftest import body_text

pytestmark = pytest.mark.django_db(transaction=True)

LEEWAY = timedelta(hours=2)


@pytest.fixture
def connected(client: Client, owner: User, stripe_sandbox) -> StripeAccount:
    _connect(client, owner, stripe_sandbox)
    client.logout()
    return StripeAccount.objects.connected().get()


def _deliver_to(stripe_sandbox, live_server) -> None:
    """Point the sandbox's webhooks at the live server, once the test's own setup is written
    (with SQLite the live server shares the test's database connection)."""
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    # The setup's own events (the offer's product and price) go out now, not during the
    # test's next write.
    h.settle(stripe_sandbox)


def _portal(client: Client, stripe_sandbox, purchase: h.Purchase) -> str:
    """The billing portal's address, as the buyer reaches it from My memberships. (The view
    makes the account's portal configuration the first time, which Stripe reports as an event.)"""
    purchase.buyer.refresh_from_db()
    client.force_login(purchase.buyer)
    with h.deliveries_held(stripe_sandbox):
        opened = client.get(reverse("billing:membership_portal", kwargs={"pk": purchase.entitlement.pk}))
    assert opened.status_code == 302
    assert opened["Location"].startswith(stripe_sandbox.url + "/p/session/")
    return str(opened["Location"])


# --- Renewals --------------------------------------------------------------------------------
def test_a_monthly_membership_renews_three_times(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer(recurring=True)
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox)
    _, end = h.period(stripe_sandbox, purchase.subscription_id)
    entitlement = purchase.refresh()
    assert (entitlement.status, entitlement.access_until, entitlement.renews_at) == ("active", end + LEEWAY, end)

    ends = [end]
    for _ in range(3):
        h.advance_past_period_end(stripe_sandbox, purchase.subscription_id)
        start, end = h.period(stripe_sandbox, purchase.subscription_id)
        assert start == ends[-1]
        entitlement = purchase.refresh()
        assert entitlement.status == Entitlement.Status.ACTIVE
        assert entitlement.access_until == end + LEEWAY
        assert entitlement.renews_at == end
        ends.append(end)
        with h.reading_at(start + timedelta(days=1)):
            h.assert_entered(client, purchase.buyer)

    renewals = list(Payment.objects.filter(is_renewal=True).order_by("period_start"))
    assert [payment.period_end for payment in renewals] == ends[1:]
    assert Payment.objects.filter(is_renewal=False).count() == 1
    assert h.email_keys("receipt:") == sorted(f"receipt:{payment.pk}" for payment in renewals)
    assert h.email_keys("confirmation:") == [f"confirmation:{entitlement.pk}:{purchase.subscription_id}"]
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION] + [h.RECEIPT] * 3)
    assert h.reasons(entitlement) == ["Purchased"] + [
        f"Renewed until {(end + LEEWAY).strftime('%b %-d, %Y')}" for end in ends[1:]
    ]


# --- A failed renewal: grace, suspension, recovery -------------------------------------------
def test_a_failed_renewal_runs_through_grace_and_suspension_and_recovers_with_a_new_card(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer(recurring=True)
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox, card=h.FAILS_LATER)
    h.advance_past_period_end(stripe_sandbox, purchase.subscription_id)

    invoice_id = h.subscription(stripe_sandbox, purchase.subscription_id)["latest_invoice"]
    account_id = connected.account_id
    invoice = stripe_sandbox.client().v1.invoices.retrieve(invoice_id, None, {"stripe_account": account_id})
    assert invoice.status == "open"
    grace_end = h.moment(invoice.created) + timedelta(days=3)
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.PAST_DUE
    assert entitlement.access_until == grace_end
    assert entitlement.renews_at is None
    assert (
        h.reasons(entitlement)[-1]
        == f"Renewal payment failed: access continues until {grace_end:%b %-d, %Y} (grace period)"
    )
    assert h.email_keys("payment_failed:") == [f"payment_failed:{invoice_id}"]
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.PAYMENT_FAILED])
    with h.reading_at(grace_end - timedelta(minutes=1)):
        assert entitlement.effective_status() == Entitlement.Status.PAST_DUE
        h.assert_entered(client, purchase.buyer)
    with h.reading_at(grace_end + timedelta(minutes=1)):
        assert entitlement.effective_status() == Entitlement.Status.SUSPENDED
        h.assert_paywalled(client, purchase.buyer)

    # The periodic job, a day before the grace period ends and after it: each email once.
    day_before = grace_end - timedelta(days=1) + timedelta(minutes=1)
    assert lifecycle.grace_reminders_record(now=day_before) == 1
    assert lifecycle.grace_reminders_record(now=day_before + timedelta(minutes=2)) == 0
    after = grace_end + timedelta(minutes=1)
    assert lifecycle.grace_reminders_record(now=after) == 1
    assert lifecycle.grace_reminders_record(now=after + timedelta(minutes=2)) == 0
    h.settle(stripe_sandbox)
    assert h.email_keys("grace_ending:") == [f"grace_ending:{entitlement.pk}:{int(grace_end.timestamp())}"]
    assert h.email_keys("suspended:") == [f"suspended:{entitlement.pk}:{int(grace_end.timestamp())}"]
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.PAYMENT_FAILED, h.GRACE_ENDING, h.SUSPENDED])

    # The buyer opens the billing portal from My memberships and enters a card that pays.
    answer = stripe_sandbox.portal_action(_portal(client, stripe_sandbox, purchase), "card", card=h.PAYS)
    assert answer.notice == "Your card was updated.", answer.error
    h.settle(stripe_sandbox)

    _, end = h.period(stripe_sandbox, purchase.subscription_id)
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert (entitlement.access_until, entitlement.renews_at) == (end + LEEWAY, end)
    assert h.reasons(entitlement)[-1] == "Payment received: access restored"
    recovered = Payment.objects.get(stripe_object_id=invoice_id)
    assert recovered.card_last4 == "4242"
    with h.reading_at(grace_end + timedelta(minutes=1)):
        assert entitlement.effective_status() == Entitlement.Status.ACTIVE
        h.assert_entered(client, purchase.buyer)
    # The recovered renewal's receipt. No "access is back": by the platform's clock, when the
    # payment came in, the grace period was still running (only the reads above moved time),
    # so access never lapsed; the email for access that did come back is in the dispute test.
    assert h.subjects(celery_worker) == sorted(
        [h.CONFIRMATION, h.PAYMENT_FAILED, h.GRACE_ENDING, h.SUSPENDED, h.RECEIPT]
    )
    assert h.email_keys("receipt:") == [f"receipt:{recovered.pk}"]


# --- Cancellations ---------------------------------------------------------------------------
def test_a_buyer_cancels_at_the_period_end_in_the_billing_portal(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer(recurring=True)
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox)
    _, end = h.period(stripe_sandbox, purchase.subscription_id)

    answer = stripe_sandbox.portal_action(
        _portal(client, stripe_sandbox, purchase), "cancel", subscription_id=purchase.subscription_id
    )
    assert answer.notice == "Your plan will be canceled at the end of the period.", answer.error
    h.settle(stripe_sandbox)
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert entitlement.cancel_at_period_end
    assert entitlement.renews_at is None
    assert entitlement.access_until == end + LEEWAY
    assert h.reasons(entitlement)[-1] == "Set to cancel at the end of the period"
    h.assert_entered(client, purchase.buyer)

    h.advance_past_period_end(stripe_sandbox, purchase.subscription_id)
    assert h.subscription(stripe_sandbox, purchase.subscription_id)["status"] == "canceled"
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.CANCELED
    assert not entitlement.has_access()
    assert h.reasons(entitlement)[-1] == "Subscription canceled: access ended"
    h.assert_paywalled(client, purchase.buyer)
    assert Payment.objects.count() == 1  # nothing charged at the period's end
    [revoked] = h.email_keys("revoked:")
    assert OutboxMessage.objects.get(key=revoked).payload["reason"] == "canceled"
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.ENDED])
    assert "was canceled" in body_text(next(m for m in celery_worker.all() if m["Subject"] == h.ENDED))


def _refunds(stripe_sandbox, account_id: str, payment_intent_id: str) -> list[int]:
    listed = stripe_sandbox.client().v1.refunds.list(
        {"payment_intent": payment_intent_id, "limit": 100}, {"stripe_account": account_id}
    )
    return [refund.amount for refund in listed.data]


def test_the_creator_cancels_at_once_with_a_prorated_refund(
    client: Client, connected, owner, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer(recurring=True)
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox)
    start, end = h.period(stripe_sandbox, purchase.subscription_id)
    payment = Payment.objects.get()

    # The creator confirms ten days and a bit into the period. Only the request is made at
    # that moment; the webhooks it causes are delivered after it, at the real time their
    # signatures carry.
    at = start + timedelta(days=10, seconds=12_345)
    unused, total = int((end - at).total_seconds()), int((end - start).total_seconds())
    expected = 2500 * unused // total  # by the second, rounded down to the cent
    assert 0 < expected < 2500
    with h.deliveries_held(stripe_sandbox), time_machine.travel(at, tick=False):
        assert lifecycle.prorated_refund_amount(entitlement=purchase.entitlement) == expected
        lifecycle.subscription_cancel_request(
            entitlement=purchase.entitlement, when="now", refund="prorated", by=owner, request_key="confirm-1"
        )
    h.settle(stripe_sandbox)

    assert h.stripe_writes() == [
        (f"cancel:{purchase.subscription_id}", "sent"),
        (f"refund:{payment.pk}:confirm-1", "sent"),
    ]
    assert h.subscription(stripe_sandbox, purchase.subscription_id)["status"] == "canceled"
    assert _refunds(stripe_sandbox, connected.account_id, payment.payment_intent_id) == [expected]
    payment.refresh_from_db()
    assert payment.amount_refunded == expected
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.CANCELED  # a partial refund: the cancellation decides
    h.assert_paywalled(client, purchase.buyer)
    money = f"${expected // 100}.{expected % 100:02d}"
    history = h.reasons(entitlement)
    assert f"Immediate cancellation with a refund of {money} requested by the creator" in history
    assert "Subscription canceled: access ended" in history
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.ENDED])


@pytest.mark.parametrize(
    ("policy", "status"),
    [(Offer.RefundPolicy.REVOKE, Entitlement.Status.REFUNDED), (Offer.RefundPolicy.KEEP, Entitlement.Status.CANCELED)],
)
def test_the_creator_cancels_at_once_refunding_the_last_payment(
    client: Client, connected, owner, stripe_sandbox, live_server, celery_worker, policy, status
) -> None:
    h.offer(recurring=True, refund_policy=policy)
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox)
    payment = Payment.objects.get()

    with h.deliveries_held(stripe_sandbox):
        lifecycle.subscription_cancel_request(
            entitlement=purchase.entitlement, when="now", refund="last", by=owner, request_key="confirm-1"
        )
    h.settle(stripe_sandbox)

    assert h.stripe_writes() == [
        (f"cancel:{purchase.subscription_id}", "sent"),
        (f"refund:{payment.pk}:confirm-1", "sent"),
    ]
    assert h.subscription(stripe_sandbox, purchase.subscription_id)["status"] == "canceled"
    assert _refunds(stripe_sandbox, connected.account_id, payment.payment_intent_id) == [2500]
    payment.refresh_from_db()
    assert payment.amount_refunded == 2500
    entitlement = purchase.refresh()
    assert entitlement.status == status
    h.assert_paywalled(client, purchase.buyer)
    assert "Immediate cancellation with a refund of $25.00 requested by the creator" in h.reasons(entitlement)
    assert len(h.email_keys("revoked:")) == 1
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.ENDED])


# --- Refunds ---------------------------------------------------------------------------------
def _stripe_refund(stripe_sandbox, account_id: str, payment: Payment, amount: int) -> None:
    """What the creator does in Stripe's own dashboard."""
    stripe_sandbox.client().v1.refunds.create(
        {"payment_intent": payment.payment_intent_id, "amount": amount}, {"stripe_account": account_id}
    )
    h.settle(stripe_sandbox)


@pytest.mark.parametrize("recurring", [False, True], ids=["one-time", "subscription"])
def test_a_full_refund_revokes_access_under_the_revoke_policy(
    client: Client, connected, stripe_sandbox, live_server, celery_worker, recurring
) -> None:
    h.offer(recurring=recurring)
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox)
    h.assert_entered(client, purchase.buyer)

    _stripe_refund(stripe_sandbox, connected.account_id, Payment.objects.get(), 2500)
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.REFUNDED
    assert h.reasons(entitlement)[-1] == "Payment refunded in full ($25.00): access revoked"
    h.assert_paywalled(client, purchase.buyer)
    [revoked] = h.email_keys("revoked:")
    assert OutboxMessage.objects.get(key=revoked).payload["reason"] == "refund"
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.ENDED])
    if recurring:  # no later invoice may grant it again
        assert h.stripe_writes() == [(f"cancel:{purchase.subscription_id}", "sent")]
        assert h.subscription(stripe_sandbox, purchase.subscription_id)["status"] == "canceled"
        assert purchase.refresh().status == Entitlement.Status.REFUNDED  # the cancellation's event after it
    else:
        assert h.stripe_writes() == []


def test_a_full_refund_keeps_access_under_the_keep_policy(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer(recurring=True, refund_policy=Offer.RefundPolicy.KEEP)
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox)

    _stripe_refund(stripe_sandbox, connected.account_id, Payment.objects.get(), 2500)
    assert Payment.objects.get().amount_refunded == 2500
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert h.reasons(entitlement)[-1] == "Full refund of $25.00 recorded ($25.00 refunded in all); access kept"
    h.assert_entered(client, purchase.buyer)
    assert h.subscription(stripe_sandbox, purchase.subscription_id)["status"] == "active"
    assert h.stripe_writes() == []
    assert h.subjects(celery_worker) == [h.CONFIRMATION]


def test_partial_refunds_keep_access_until_together_they_cover_the_payment(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer()
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox)

    _stripe_refund(stripe_sandbox, connected.account_id, Payment.objects.get(), 1000)
    assert Payment.objects.get().amount_refunded == 1000
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert h.reasons(entitlement)[-1] == "Partial refund of $10.00 recorded ($10.00 refunded in all); access kept"
    h.assert_entered(client, purchase.buyer)
    assert h.subjects(celery_worker) == [h.CONFIRMATION]

    _stripe_refund(stripe_sandbox, connected.account_id, Payment.objects.get(), 1500)
    assert Payment.objects.get().amount_refunded == 2500
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.REFUNDED
    assert h.reasons(entitlement)[-1] == "Payment refunded in full ($25.00): access revoked"
    h.assert_paywalled(client, purchase.buyer)
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.ENDED])


def test_the_creators_refund_of_a_one_time_purchase_revokes_access_once(
    client: Client, connected, owner, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer()
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox)
    payment = Payment.objects.get()

    with h.deliveries_held(stripe_sandbox):
        for _ in range(2):  # the confirmation form submitted twice
            lifecycle.payment_refund_request(payment=payment, amount=2500, by=owner, request_key="form-1")
    h.settle(stripe_sandbox)

    assert h.stripe_writes() == [(f"refund:{payment.pk}:form-1", "sent")]
    assert _refunds(stripe_sandbox, connected.account_id, payment.payment_intent_id) == [2500]
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.REFUNDED
    assert h.reasons(entitlement)[-2:] == [
        "Refund of $25.00 requested by the creator",
        "Payment refunded in full ($25.00): access revoked",
    ]
    h.assert_paywalled(client, purchase.buyer)
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.ENDED])


# --- Disputes --------------------------------------------------------------------------------
def test_a_dispute_suspends_access_and_winning_it_restores_it(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer()
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox)
    payment = Payment.objects.get()

    dispute = stripe_sandbox.create_dispute(payment.payment_intent_id)
    h.settle(stripe_sandbox)
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.DISPUTED
    assert h.reasons(entitlement)[-1] == "Payment disputed: access suspended until the dispute is decided"
    h.assert_paywalled(client, purchase.buyer)
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.SUSPENDED])

    stripe_sandbox.close_dispute(dispute["id"], "won")
    h.settle(stripe_sandbox)
    assert Payment.objects.get().dispute_status == "won"
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert h.reasons(entitlement)[-1] == "Dispute won: access restored"
    h.assert_entered(client, purchase.buyer)
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.SUSPENDED, h.RESTORED])


def test_a_lost_dispute_ends_a_subscription(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer(recurring=True)
    _deliver_to(stripe_sandbox, live_server)
    purchase = h.buy(client, stripe_sandbox)

    dispute = stripe_sandbox.create_dispute(Payment.objects.get().payment_intent_id)
    h.settle(stripe_sandbox)
    assert purchase.refresh().status == Entitlement.Status.DISPUTED
    h.assert_paywalled(client, purchase.buyer)

    stripe_sandbox.close_dispute(dispute["id"], "lost")
    h.settle(stripe_sandbox)
    assert Payment.objects.get().dispute_status == "lost"
    entitlement = purchase.refresh()
    assert entitlement.status == Entitlement.Status.DISPUTE_LOST
    assert h.reasons(entitlement)[-1] == "Dispute lost: access ended"
    assert h.stripe_writes() == [(f"cancel:{purchase.subscription_id}", "sent")]
    assert h.subscription(stripe_sandbox, purchase.subscription_id)["status"] == "canceled"
    h.assert_paywalled(client, purchase.buyer)
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.SUSPENDED])  # told once, when it was opened


# --- Buying again ----------------------------------------------------------------------------
def test_buying_again_after_a_cancellation_reuses_the_entitlement_and_ignores_stale_events(
    client: Client, connected, owner, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer(recurring=True)
    _deliver_to(stripe_sandbox, live_server)
    first = h.buy(client, stripe_sandbox)
    with h.deliveries_held(stripe_sandbox):
        lifecycle.subscription_cancel_request(
            entitlement=first.entitlement, when="now", refund="none", by=owner, request_key="confirm-1"
        )
    h.settle(stripe_sandbox)
    assert first.refresh().status == Entitlement.Status.CANCELED
    h.assert_paywalled(client, first.buyer)

    # The buyer comes back a day later (Stripe's times are whole seconds: a purchase in the
    # same second as the first would tie with it as "the most recent").
    stripe_sandbox.advance_clock(24 * 3600)
    again = h.buy(client, stripe_sandbox)
    assert again.subscription_id != first.subscription_id
    entitlement = again.refresh()
    assert entitlement.pk == first.entitlement.pk
    assert Entitlement.objects.count() == 1
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert entitlement.backed_by == again.subscription_id
    _, end = h.period(stripe_sandbox, again.subscription_id)
    assert entitlement.access_until == end + LEEWAY
    assert h.reasons(entitlement)[-1] == "Purchased"
    h.assert_entered(client, again.buyer)
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.ENDED, h.CONFIRMATION])

    # Late events about the old subscription: delivered again, and as events never seen.
    url = live_server.url + "/stripe/webhook/"
    stale = [
        event
        for type_ in ("customer.subscription.deleted", "customer.subscription.updated", "customer.subscription.created")
        for event in _events(stripe_sandbox, connected.account_id, type_)
        if event["data"]["object"]["id"] == first.subscription_id
    ]
    assert {event["type"] for event in stale} >= {"customer.subscription.deleted", "customer.subscription.created"}
    history = list(entitlement.changes.values_list("pk", flat=True))
    for event in stale:
        assert _deliver(url, event) == 200
        assert _deliver(url, {**event, "id": event["id"] + "late"}) == 200
    h.settle(stripe_sandbox)
    late = WebhookEvent.objects.filter(event_id__endswith="late")
    assert late.count() == len(stale)
    assert set(late.values_list("status", flat=True)) == {WebhookEvent.Status.PROCESSED}
    now = Entitlement.objects.get()
    assert (now.status, now.backed_by, now.access_until) == ("active", again.subscription_id, end + LEEWAY)
    assert list(now.changes.values_list("pk", flat=True)) == history
    assert StripeSubscription.objects.get(subscription_id=first.subscription_id).status == "canceled"
    h.assert_entered(client, again.buyer)
    h.pause()
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.ENDED, h.CONFIRMATION])
