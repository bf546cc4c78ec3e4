"""The emails of a membership's life, as the buyer receives them: each recorded in the outbox as
the lifecycle records it, then sent, and built from the rows at that moment."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.utils import formats, timezone

from accounts import outbox
from accounts.models import OutboxMessage, User
from memberships.models import Entitlement
from tests.billing.test_my_memberships import Subscription

pytestmark = pytest.mark.django_db


def day(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "M j, Y")


def send(email: str, **ids: Any) -> list[Any]:
    """Record the email in the outbox and send it, as the outbox's task does after commit;
    returns what reached the mailbox."""
    with transaction.atomic():
        row = outbox.outbox_email_record(key=f"test:{uuid.uuid4()}", email=email, **ids)
    assert outbox.outbox_send(message_id=row.pk) == OutboxMessage.Status.SENT
    return list(mail.outbox)


def html_of(message: Any) -> str:
    [(html, kind)] = message.alternatives
    assert kind == "text/html"
    return str(html)


def links(entitlement: Entitlement) -> tuple[str, str]:
    return (
        f"{settings.SITE_URL}/account/memberships/{entitlement.pk}/billing/",
        f"{settings.SITE_URL}/account/memberships/",
    )


def assert_platform_links_only(message: Any) -> None:
    for part in (message.body, html_of(message)):
        assert "billing_portal" not in part
        assert "/p/session/" not in part
        assert "stripe.com" not in part


def past_due(member: User, *, grace_left: timedelta = timedelta(days=2)) -> Subscription:
    return Subscription(
        member, status=Entitlement.Status.PAST_DUE, stripe_status="past_due", access_until=timezone.now() + grace_left
    )


# --- payment_failed -----------------------------------------------------------------------------
def test_a_failed_payment_says_until_when_access_lasts_and_links_to_updating_the_card(member: User) -> None:
    subscription = past_due(member)
    entitlement = subscription.entitlement
    [message] = send("payment_failed", entitlement=entitlement.pk, invoice="in_failed")
    portal, memberships = links(entitlement)

    assert message.to == ["member@example.com"]
    assert message.subject == "Your payment for Monthly Circle didn't go through"
    assert message.body.startswith("Hi Mia,\n\nYour card was declined when we tried to collect the renewal payment")
    assert f"You keep your access until {day(entitlement.access_until)}." in message.body
    assert f"Update your card:\n{portal}\n" in message.body
    assert memberships in message.body
    html = html_of(message)
    assert f'<a class="button" href="{portal}">Update your card</a>' in html
    assert f'<a href="{memberships}">My memberships</a>' in html
    assert_platform_links_only(message)


def test_a_failed_payment_paid_before_the_email_went_out_sends_nothing(member: User) -> None:
    subscription = past_due(member)
    Entitlement.objects.filter(pk=subscription.entitlement.pk).update(status=Entitlement.Status.ACTIVE)
    assert send("payment_failed", entitlement=subscription.entitlement.pk, invoice="in_failed") == []


# --- grace_ending -------------------------------------------------------------------------------
def test_the_grace_period_ending_says_when_access_ends(member: User) -> None:
    subscription = past_due(member, grace_left=timedelta(hours=20))
    entitlement = subscription.entitlement
    [message] = send("grace_ending", entitlement=entitlement.pk)
    portal, memberships = links(entitlement)

    assert message.subject == "Update your card to keep Monthly Circle"
    assert (
        f"We still could not collect the renewal payment for Monthly Circle. Your access ends on "
        f"{day(entitlement.access_until)} unless your card is updated." in message.body
    )
    assert portal in message.body
    assert memberships in message.body
    assert f'href="{portal}">Update your card</a>' in html_of(message)
    assert_platform_links_only(message)


def test_the_grace_period_reminder_after_the_card_was_fixed_sends_nothing(member: User) -> None:
    subscription = Subscription(member)  # active again
    assert send("grace_ending", entitlement=subscription.entitlement.pk) == []


# --- access_restored ----------------------------------------------------------------------------
def test_access_restored_says_it_is_back(member: User) -> None:
    subscription = Subscription(member)
    [message] = send("access_restored", entitlement=subscription.entitlement.pk)
    _, memberships = links(subscription.entitlement)

    assert message.subject == "Your access to Monthly Circle is back"
    assert "Good news: your access to Monthly Circle is back. There is nothing more you need to do." in message.body
    assert memberships in message.body
    assert f'<a class="button" href="{memberships}">My memberships</a>' in html_of(message)


def test_access_restored_after_it_was_lost_again_sends_nothing(member: User) -> None:
    subscription = Subscription(member, status=Entitlement.Status.DISPUTED)
    assert send("access_restored", entitlement=subscription.entitlement.pk) == []


# --- access_revoked -----------------------------------------------------------------------------
REVOKED = {
    "refund": (
        Entitlement.Status.REFUNDED,
        "Your access to Monthly Circle has ended",
        "Your payment for Monthly Circle was refunded, so your access has ended.",
        "You can join again at any time from My memberships.",
    ),
    "dispute_lost": (
        Entitlement.Status.DISPUTE_LOST,
        "Your access to Monthly Circle has ended",
        "Your bank reversed your payment for Monthly Circle after a dispute, so your access has ended.",
        "You can join again at any time from My memberships.",
    ),
    "canceled": (
        Entitlement.Status.CANCELED,
        "Your access to Monthly Circle has ended",
        "Your subscription to Monthly Circle was canceled, so your access has ended.",
        "You can resubscribe at any time from My memberships.",
    ),
    "disputed": (
        Entitlement.Status.DISPUTED,
        "Your access to Monthly Circle is suspended",
        "Your bank opened a dispute over your payment for Monthly Circle, so your access is suspended until it "
        "is resolved.",
        "If you did not mean to dispute this payment, ask your bank to withdraw the dispute.",
    ),
}


@pytest.mark.parametrize("reason", sorted(REVOKED))
def test_access_revoked_says_why(member: User, reason: str) -> None:
    status, subject, why, next_step = REVOKED[reason]
    subscription = Subscription(member, status=status, renews_at=None, stripe_status="canceled")
    [message] = send("access_revoked", entitlement=subscription.entitlement.pk, reason=reason)
    portal, memberships = links(subscription.entitlement)

    assert message.subject == subject
    assert f"Hi Mia,\n\n{why}\n\n{next_step}\n" in message.body
    assert memberships in message.body
    assert portal not in message.body  # a new card changes nothing here
    html = html_of(message)
    assert f"<p>{why}</p>" in html
    assert f'<a class="button" href="{memberships}">My memberships</a>' in html
    assert_platform_links_only(message)


def test_access_suspended_after_the_grace_period_links_to_updating_the_card(member: User) -> None:
    subscription = past_due(member, grace_left=-timedelta(hours=1))  # the grace period ran out
    [message] = send("access_revoked", entitlement=subscription.entitlement.pk, reason="payment_failed")
    portal, memberships = links(subscription.entitlement)

    assert message.subject == "Your access to Monthly Circle is suspended"
    assert (
        "We could not collect the renewal payment for Monthly Circle and the grace period is over, so your access "
        "is suspended." in message.body
    )
    assert "Update your card: once the payment goes through, your access comes back." in message.body
    assert f"Update your card:\n{portal}\n" in message.body
    assert memberships in message.body
    assert f'<a class="button" href="{portal}">Update your card</a>' in html_of(message)


def test_access_revoked_but_given_back_before_the_email_went_out_sends_nothing(member: User) -> None:
    subscription = Subscription(member)  # the dispute was won meanwhile
    assert send("access_revoked", entitlement=subscription.entitlement.pk, reason="disputed") == []


def test_the_offers_title_is_escaped_in_the_html_part_only(member: User) -> None:
    subscription = Subscription(member, title="Yoga & <Friends>", status=Entitlement.Status.REFUNDED)
    [message] = send("access_revoked", entitlement=subscription.entitlement.pk, reason="refund")
    assert message.subject == "Your access to Yoga & <Friends> has ended"
    assert "Your payment for Yoga & <Friends> was refunded" in message.body
    html = html_of(message)
    assert "Yoga &amp; &lt;Friends&gt;" in html
    assert "<Friends>" not in html


# --- renewal_receipt ----------------------------------------------------------------------------
def renewal(subscription: Subscription) -> Any:
    return subscription.offer.payments.get(is_renewal=True)


def test_a_renewal_receipt_states_the_amount_date_card_and_next_payment(member: User) -> None:
    subscription = Subscription(member)
    payment = renewal(subscription)
    [message] = send("renewal_receipt", payment=payment.pk)
    portal, memberships = links(subscription.entitlement)

    assert message.subject == "Your receipt for Monthly Circle: $25.00"
    assert (
        f"Amount paid: $25.00\nDate: {day(payment.paid_at)}\nCard: ending 4444\n"
        f"Next payment: {day(subscription.period_end)}\n" in message.body
    )
    assert portal in message.body
    assert memberships in message.body
    html = html_of(message)
    assert "<strong>$25.00</strong>" in html
    assert f"<td>{day(subscription.period_end)}</td>" in html
    assert "ending 4444" in html
    assert_platform_links_only(message)


def test_a_renewal_receipt_of_a_subscription_ending_says_no_further_payment(member: User) -> None:
    subscription = Subscription(member, cancel_at_period_end=True, renews_at=None)
    [message] = send("renewal_receipt", payment=renewal(subscription).pk)
    assert "Next payment" not in message.body
    assert f"Your membership ends on {day(subscription.period_end)}: no further payment will be taken." in message.body


def test_a_renewal_receipt_gives_the_periods_end_not_the_access_leeway(member: User) -> None:
    late_evening = timezone.localtime().replace(hour=23, minute=0, second=0, microsecond=0)
    with time_machine.travel(late_evening, tick=False):
        subscription = Subscription(
            member, cancel_at_period_end=True, renews_at=None, access_until=timezone.now() + timedelta(days=20, hours=2)
        )
    assert day(subscription.entitlement.access_until) != day(subscription.period_end)
    [message] = send("renewal_receipt", payment=renewal(subscription).pk)
    assert f"Your membership ends on {day(subscription.period_end)}: no further payment will be taken." in message.body


def test_no_renewal_receipt_once_the_creator_turned_them_off(member: User) -> None:
    subscription = Subscription(member)
    subscription.offer.renewal_receipts = False
    subscription.offer.save(update_fields=["renewal_receipts"])
    assert send("renewal_receipt", payment=renewal(subscription).pk) == []
