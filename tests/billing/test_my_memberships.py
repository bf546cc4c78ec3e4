"""My memberships (``/account/memberships/``) and the billing link every email carries
(``/account/memberships/<id>/billing/``), which opens a fresh Stripe billing portal session."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import formats, timezone

from accounts.models import User
from billing import stripe_gateway as gateway
from billing.models import Payment, StripeAccount, StripeSubscription
from memberships.models import Entitlement, EntitlementChange
from tests import factories
from tests.billing.test_stripe_flows import _connect, _offer, _paid, _start_checkout, _wait
from tests.conftest import PASSWORD, body_text

PAGE = "/account/memberships/"


def day(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "M j, Y")


def words(html: str) -> str:
    """The page's text as a person reads it: tags dropped, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def portal_path(entitlement: Entitlement) -> str:
    return f"/account/memberships/{entitlement.pk}/billing/"


def page_for(client: Client, user: User) -> str:
    client.force_login(user)
    response = client.get(PAGE)
    assert response.status_code == 200
    return response.content.decode()


def one_time(user: User, *, title: str = "Inner Circle", card: str = "4242") -> Entitlement:
    """A one-time purchase of $50.00, paid three days ago."""
    offer = factories.paid_offer(amount=5000, title=title)
    payment_intent = f"pi_{offer.slug}"
    Payment.objects.create(
        stripe_object_id=payment_intent,
        kind=Payment.Kind.ONE_TIME,
        stripe_account_id=factories.ACCOUNT_ID,
        amount=5000,
        currency="usd",
        user=user,
        offer=offer,
        payment_intent_id=payment_intent,
        card_last4=card,
        paid_at=timezone.now() - timedelta(days=3),
    )
    return Entitlement.objects.create(
        user=user, offer=offer, source=Entitlement.Source.PURCHASE, backed_by=payment_intent
    )


class Subscription:
    """A $25.00 monthly subscription in its second period: the first payment, then a renewal
    ten days ago, of which $5.00 was refunded."""

    def __init__(self, user: User, *, name: str = "monthly", title: str = "Monthly Circle", **entitlement: Any) -> None:
        now = timezone.now()
        self.subscription_id = f"sub_{name}"
        self.period_start = now - timedelta(days=10)
        self.period_end = now + timedelta(days=20)
        self.offer = factories.paid_offer(recurring=True, amount=2500, title=title, slug=name)
        self.row = StripeSubscription.objects.create(
            subscription_id=self.subscription_id,
            stripe_account_id=factories.ACCOUNT_ID,
            customer_id=f"cus_{name}",
            user=user,
            offer=self.offer,
            status=entitlement.pop("stripe_status", "active"),
            current_period_start=self.period_start,
            current_period_end=self.period_end,
            created=self.period_start - timedelta(days=30),
            synced_at=now,
        )
        for number, (start, renewal, refunded) in enumerate(
            [(self.period_start - timedelta(days=30), False, 0), (self.period_start, True, 500)]
        ):
            Payment.objects.create(
                stripe_object_id=f"in_{name}_{number}",
                kind=Payment.Kind.INVOICE,
                stripe_account_id=factories.ACCOUNT_ID,
                amount=2500,
                currency="usd",
                user=user,
                offer=self.offer,
                payment_intent_id=f"pi_{name}_{number}",
                stripe_subscription_id=self.subscription_id,
                is_renewal=renewal,
                period_start=start,
                period_end=start + timedelta(days=30),
                card_last4="4444" if renewal else "4242",
                amount_refunded=refunded,
                paid_at=start,
            )
        fields: dict[str, Any] = {
            "access_until": self.period_end,
            "renews_at": self.period_end,
            "started_at": self.period_start - timedelta(days=30),
            **entitlement,
        }
        self.entitlement = Entitlement.objects.create(
            user=user,
            offer=self.offer,
            source=Entitlement.Source.SUBSCRIPTION,
            backed_by=self.subscription_id,
            **fields,
        )


# --- The page ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_one_time_purchase_shows_its_price_and_its_receipt(client: Client, member: User) -> None:
    entitlement = one_time(member)
    page = page_for(client, member)
    text = words(page)

    assert "Inner Circle Active $50.00" in text
    assert f"$50.00 {day(timezone.now() - timedelta(days=3))} One-time payment Card ending 4242" in text
    assert "Renews on" not in text
    assert "Ends on" not in text
    # Nothing to manage on Stripe, nothing to buy again.
    assert portal_path(entitlement) not in page
    assert "Resubscribe" not in text


@pytest.mark.django_db
def test_a_renewing_subscription_shows_its_next_payment_receipts_and_the_portal_buttons(
    client: Client, member: User
) -> None:
    subscription = Subscription(member)
    page = page_for(client, member)
    text = words(page)

    assert f"Monthly Circle Active $25.00 / month Renews on {day(subscription.period_end)}" in text
    renewal = f"$25.00 {day(subscription.period_start)} Renewal Card ending 4444 Refunded $5.00"
    first = f"$25.00 {day(subscription.period_start - timedelta(days=30))} First payment Card ending 4242"
    assert renewal in text
    assert first in text
    assert text.index(renewal) < text.index(first)  # newest first
    path = portal_path(subscription.entitlement)
    assert f'<a class="button" href="{path}">Update card</a>' in page
    assert f'<a class="button danger" href="{path}">Cancel</a>' in page
    assert "Resubscribe" not in text


@pytest.mark.django_db
def test_a_canceled_subscription_says_when_it_ended_and_offers_to_resubscribe(client: Client, member: User) -> None:
    ended = timezone.now() - timedelta(days=2)
    subscription = Subscription(
        member,
        status=Entitlement.Status.CANCELED,
        access_until=ended,
        renews_at=None,
        ended_at=ended,
        stripe_status="canceled",
    )
    started = subscription.entitlement.started_at
    EntitlementChange.objects.create(
        entitlement=subscription.entitlement,
        at=started,
        status_after=Entitlement.Status.ACTIVE,
        access_until_after=started + timedelta(days=30),
        reason="Subscribed: first payment of $25.00",
    )
    EntitlementChange.objects.create(
        entitlement=subscription.entitlement,
        at=ended,
        status_before=Entitlement.Status.ACTIVE,
        status_after=Entitlement.Status.CANCELED,
        access_until_before=subscription.period_end,
        access_until_after=ended,
        reason="Canceled by the buyer in the billing portal",
        by=member,
    )
    page = page_for(client, member)
    text = words(page)

    assert f"Monthly Circle Canceled $25.00 / month Ended on {day(ended)}" in text
    assert '<a class="button primary" href="/offers/monthly/">Resubscribe</a>' in page
    assert portal_path(subscription.entitlement) not in page
    canceled = f"{day(ended)} Canceled by the buyer in the billing portal Active → Canceled Access until {day(ended)}"
    subscribed = f"{day(started)} Subscribed: first payment of $25.00 New → Active"
    assert canceled in text
    assert subscribed in text
    assert text.index(canceled) < text.index(subscribed)  # newest first


@pytest.mark.django_db
def test_a_canceled_subscription_ended_when_stripe_ended_it_not_when_the_news_arrived(
    client: Client, member: User
) -> None:
    ended = timezone.now() - timedelta(days=5)
    subscription = Subscription(
        member,
        status=Entitlement.Status.CANCELED,
        access_until=None,
        renews_at=None,
        ended_at=ended + timedelta(days=3),  # the webhook was handled late
        stripe_status="canceled",
    )
    StripeSubscription.objects.filter(pk=subscription.row.pk).update(ended_at=ended)
    text = words(page_for(client, member))
    assert f"Monthly Circle Canceled $25.00 / month Ended on {day(ended)}" in text


def late_evening() -> datetime:
    """Today at 23:00 on the site's clock: a period ending then, plus the renewal leeway, ends
    access on the next day."""
    return timezone.localtime().replace(hour=23, minute=0, second=0, microsecond=0)


@pytest.mark.django_db
def test_a_subscription_ending_at_the_period_end_gives_stripes_date_not_the_leeways(
    client: Client, member: User, owner: User
) -> None:
    with time_machine.travel(late_evening(), tick=False):
        subscription = Subscription(
            member, cancel_at_period_end=True, renews_at=None, access_until=timezone.now() + timedelta(days=20, hours=2)
        )
        assert day(subscription.entitlement.access_until) != day(subscription.period_end)
        text = words(page_for(client, member))
        assert f"Monthly Circle Active $25.00 / month Ends on {day(subscription.period_end)}" in text
        client.force_login(owner)
        staff_page = words(client.get(f"/dashboard/users/{member.pk}/").content.decode())
        assert f"$25.00 / month · ends {day(subscription.period_end)}" in staff_page


@pytest.mark.django_db
def test_a_subscription_ending_at_the_period_end_says_when_and_can_be_kept(client: Client, member: User) -> None:
    subscription = Subscription(member, cancel_at_period_end=True, renews_at=None)
    page = page_for(client, member)
    text = words(page)

    assert f"Monthly Circle Active $25.00 / month Ends on {day(subscription.period_end)}" in text
    assert "Renews on" not in text
    path = portal_path(subscription.entitlement)
    assert f'href="{path}">Update card</a>' in page
    assert f'href="{path}">Cancel</a>' not in page
    # Still running: resubscribing is the portal's Renew plan, never a second subscription.
    assert f'<a class="button primary" href="{path}">Resubscribe</a>' in page
    assert 'href="/offers/monthly/">Resubscribe' not in page


@pytest.mark.django_db
def test_a_past_due_subscription_says_so(client: Client, member: User) -> None:
    subscription = Subscription(member, status=Entitlement.Status.PAST_DUE, stripe_status="past_due")
    text = words(page_for(client, member))
    assert "Monthly Circle Past due (grace period)" in text
    assert f'href="{portal_path(subscription.entitlement)}">Update card</a>' in page_for(client, member)


@pytest.mark.django_db
def test_someone_without_memberships_gets_a_friendly_line(client: Client, outsider: User) -> None:
    text = words(page_for(client, outsider))
    assert "You have no memberships yet." in text


@pytest.mark.django_db
def test_the_page_shows_only_the_buyers_own_memberships(client: Client, member: User, outsider: User) -> None:
    one_time(outsider, title="Not Yours")
    Subscription(member)
    text = words(page_for(client, member))
    assert "Monthly Circle" in text
    assert "Not Yours" not in text


@pytest.mark.django_db
def test_the_page_runs_the_same_queries_whatever_the_number_of_memberships(
    client: Client, member: User, django_assert_num_queries
) -> None:
    Subscription(member, name="first")
    client.force_login(member)
    client.get(PAGE)  # the session is cached from here on
    with django_assert_num_queries(5) as one:
        assert client.get(PAGE).status_code == 200
    Subscription(member, name="second", title="Second Circle")
    one_time(member)
    with django_assert_num_queries(len(one.captured_queries)):
        assert client.get(PAGE).status_code == 200


@pytest.mark.django_db
def test_the_member_home_and_the_top_bar_link_to_the_page(client: Client, member: User) -> None:
    client.force_login(member)
    home = client.get("/home/").content.decode()
    assert "<h2>My memberships</h2>" in home
    assert f'<a href="{PAGE}">Open My memberships</a>' in home
    assert f'<a href="{PAGE}">My memberships</a>' in home  # the top bar


@pytest.mark.django_db
def test_logged_out_the_page_asks_to_log_in(client: Client) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={PAGE}"


# --- The billing link --------------------------------------------------------------------------
@pytest.mark.django_db
def test_another_persons_billing_link_is_not_found(client: Client, member: User, outsider: User, owner: User) -> None:
    subscription = Subscription(member)
    for person in (outsider, owner):  # staff included: this is the buyer's own door
        client.force_login(person)
        assert client.get(portal_path(subscription.entitlement)).status_code == 404


@pytest.mark.django_db
def test_a_billing_link_of_no_membership_is_not_found(client: Client, member: User) -> None:
    client.force_login(member)
    assert client.get("/account/memberships/999999/billing/").status_code == 404


@pytest.mark.django_db
def test_a_logged_out_billing_link_goes_through_the_login_page_and_comes_back(client: Client, member: User) -> None:
    subscription = Subscription(member)
    path = portal_path(subscription.entitlement)

    response = client.get(path)
    assert response.status_code == 302
    login_url = response["Location"]
    assert login_url == f"/accounts/login/?next={path}"
    login_page = client.get(login_url).content.decode()
    assert f'name="next" value="{path}"' in login_page
    logged_in = client.post(login_url, {"username": member.email, "password": PASSWORD, "next": path})
    assert logged_in.status_code == 302
    assert logged_in["Location"] == path


@pytest.mark.django_db
def test_a_membership_without_a_billing_account_says_so_on_the_page(client: Client, member: User) -> None:
    free = factories.offer("Free Circle")
    entitlement = Entitlement.objects.create(user=member, offer=free, source=Entitlement.Source.FREE)
    client.force_login(member)
    response = client.get(portal_path(entitlement), follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    assert "There is no billing account for this membership: nothing to manage." in response.content.decode()


@pytest.mark.django_db
def test_stripe_failing_to_open_the_portal_says_so_on_the_page(
    client: Client, member: User, stripe_account: StripeAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscription = Subscription(member)

    def down(**_: Any) -> str:
        raise gateway.StripeUnavailable("connection refused")

    monkeypatch.setattr(gateway, "portal_session_create", down)
    client.force_login(member)
    response = client.get(portal_path(subscription.entitlement), follow=True)
    assert response.redirect_chain == [(PAGE, 302)]
    text = words(response.content.decode())
    assert "Stripe's billing page for Monthly Circle could not be opened. We could not reach Stripe" in text
    assert "Monthly Circle" in text  # the page itself, below the message


@pytest.mark.django_db
def test_opening_the_portal_again_and_again_is_limited(
    client: Client, member: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "billing_portal": {"ip": 100, "email": 2, "window": 3600}}
    subscription = Subscription(member)
    monkeypatch.setattr(gateway, "portal_session_create", lambda **_: "https://billing.stripe.test/p/session/x")
    client.force_login(member)
    path = portal_path(subscription.entitlement)
    assert client.get(path)["Location"] == "https://billing.stripe.test/p/session/x"
    assert client.get(path)["Location"] == "https://billing.stripe.test/p/session/x"
    refused = client.get(path, follow=True)
    assert refused.redirect_chain == [(PAGE, 302)]
    assert "Too many attempts from here." in refused.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_subscriber_finds_the_purchase_and_opens_the_sandboxs_portal_from_my_memberships(
    client, owner, stripe_sandbox, live_server, celery_worker
) -> None:
    """A real purchase through the sandbox: its confirmation leads to My memberships, which
    shows it; the billing link opens the portal on the subscription, whose way back leads to
    My memberships again."""
    _connect(client, owner, stripe_sandbox)
    client.logout()
    _offer(recurring=True, amount=2500)
    attempt = _start_checkout(client)
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    assert stripe_sandbox.pay_checkout(attempt.stripe_session_id, email="bea@example.com", name="Bea Buyer").paid
    _wait(lambda: _paid(attempt), what="the subscription to be fulfilled")
    stripe_sandbox.wait_for_deliveries()
    # No more deliveries: with SQLite the live server shares this test's connection, and the
    # event of the portal configuration made below would open a transaction on it mid-call.
    stripe_sandbox.set_webhook_url("")
    buyer = User.objects.get(email="bea@example.com")
    entitlement = Entitlement.objects.get(user=buyer)
    assert entitlement.renews_at is not None
    # The confirmation states the terms and leads here.
    [confirmation] = celery_worker.wait_for(1)
    terms = body_text(confirmation)
    next_payment = timezone.localtime(entitlement.renews_at).strftime("%B %-d, %Y")
    assert f"Amount paid: $25.00\nBilling: Monthly\nNext payment: {next_payment}" in terms
    assert f"Your memberships and receipts: {settings.SITE_URL}{PAGE}" in terms
    client.force_login(buyer)

    page = client.get(PAGE).content.decode()
    text = words(page)
    assert f"Inner Circle Active $25.00 / month Renews on {day(entitlement.renews_at)}" in text
    assert "First payment Card ending 4242" in text
    assert f'href="{portal_path(entitlement)}">Cancel</a>' in page

    response = client.get(portal_path(entitlement))
    assert response.status_code == 302
    portal = response["Location"]
    assert portal.startswith(stripe_sandbox.url + "/p/session/bps_")
    shown = stripe_sandbox.portal_page(portal)
    assert shown.status == 200
    assert "$25.00 per month" in shown.html
    assert "Cancel plan</button>" in shown.html
    assert f'<a href="{settings.SITE_URL}{PAGE}">' in shown.html
    # Every visit is a fresh session: an old portal address is never reused.
    assert client.get(portal_path(entitlement))["Location"] != portal
