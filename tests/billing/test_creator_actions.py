"""The creator's side of a membership's life: the Memberships panel on a user's page, cancelling
a subscription and refunding a payment from the dashboard, and the offer's refund settings."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import formats, timezone

from accounts.models import OutboxMessage, User
from billing.models import Payment, StripeSubscription
from memberships.models import Entitlement, EntitlementChange, Offer
from tests import factories

pytestmark = pytest.mark.django_db

SUBSCRIPTION_ID = "sub_creator"


def day(moment: datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "M j, Y")


def stripe_writes() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(kind="stripe").order_by("pk"))


@pytest.fixture
def staff_client(client: Client, owner: User) -> Client:
    client.force_login(owner)
    return client


class Subscriber:
    """A member paying $25.00 a month, ten days into the current period."""

    def __init__(self, member: User, stripe_account: Any) -> None:
        now = timezone.now()
        self.member = member
        self.period_start = now - timedelta(days=10)
        self.period_end = now + timedelta(days=20)
        self.offer = factories.paid_offer(recurring=True, amount=2500, title="Monthly Circle")
        self.entitlement = Entitlement.objects.create(
            user=member,
            offer=self.offer,
            source=Entitlement.Source.SUBSCRIPTION,
            backed_by=SUBSCRIPTION_ID,
            renews_at=self.period_end,
            access_until=self.period_end,
            started_at=self.period_start,
        )
        self.subscription = StripeSubscription.objects.create(
            subscription_id=SUBSCRIPTION_ID,
            stripe_account_id=stripe_account.account_id,
            customer_id="cus_creator",
            user=member,
            offer=self.offer,
            status="active",
            current_period_start=self.period_start,
            current_period_end=self.period_end,
        )
        self.payment = Payment.objects.create(
            stripe_object_id="in_creator",
            kind=Payment.Kind.INVOICE,
            stripe_account_id=stripe_account.account_id,
            amount=2500,
            currency="usd",
            user=member,
            offer=self.offer,
            payment_intent_id="pi_creator",
            charge_id="ch_creator",
            card_last4="4242",
            stripe_subscription_id=SUBSCRIPTION_ID,
            period_start=self.period_start,
            period_end=self.period_end,
            paid_at=self.period_start,
        )

    @property
    def cancel_url(self) -> str:
        return reverse(
            "billing:membership_cancel", kwargs={"pk": self.member.pk, "entitlement_id": self.entitlement.pk}
        )

    @property
    def refund_url(self) -> str:
        return reverse("billing:payment_refund", kwargs={"pk": self.payment.pk})

    @property
    def user_url(self) -> str:
        return reverse("hubs:dashboard_user", kwargs={"pk": self.member.pk})


@pytest.fixture
def subscriber(member: User, stripe_account: Any) -> Subscriber:
    return Subscriber(member, stripe_account)


def request_key_of(response: Any) -> str:
    return str(response.context["form"]["request_key"].value())


def errors_of(response: Any) -> list[str]:
    form = response.context["form"]
    return [str(error) for errors in form.errors.values() for error in errors]


# --- The Memberships panel ---------------------------------------------------------------------
def test_the_users_page_shows_each_membership_with_its_payments_and_history(
    staff_client: Client, subscriber: Subscriber, owner: User
) -> None:
    EntitlementChange.objects.create(
        entitlement=subscriber.entitlement,
        at=subscriber.period_start,
        status_before="",
        status_after=Entitlement.Status.ACTIVE,
        access_until_after=subscriber.period_end,
        reason="First payment of $25.00",
        event_id="evt_paid",
    )
    EntitlementChange.objects.create(
        entitlement=subscriber.entitlement,
        at=timezone.now(),
        status_before=Entitlement.Status.ACTIVE,
        status_after=Entitlement.Status.ACTIVE,
        access_until_before=subscriber.period_end,
        access_until_after=subscriber.period_end,
        reason="Partial refund of $5.00",
        by=owner,
    )
    page = staff_client.get(subscriber.user_url).content.decode()
    assert "Memberships" in page
    assert "Monthly Circle" in page
    assert "Active" in page
    assert "$25.00" in page
    assert f"next payment {day(subscriber.period_end)}" in page
    assert "•••• 4242" in page
    assert subscriber.refund_url in page
    assert subscriber.cancel_url in page
    assert "First payment of $25.00" in page
    assert "Stripe event <code>evt_paid</code>" in page
    assert "Partial refund of $5.00" in page
    assert "by Olive Owner" in page


def test_a_refunded_payment_shows_its_refund_and_no_refund_button(staff_client: Client, subscriber: Subscriber) -> None:
    Payment.objects.filter(pk=subscriber.payment.pk).update(amount_refunded=2500)
    page = staff_client.get(subscriber.user_url).content.decode()
    assert "$25.00" in page
    assert subscriber.refund_url not in page


def test_a_user_without_memberships_gets_no_memberships_panel(staff_client: Client, outsider: User) -> None:
    page = staff_client.get(reverse("hubs:dashboard_user", kwargs={"pk": outsider.pk})).content.decode()
    assert "memberships-heading" not in page


# --- Cancelling -------------------------------------------------------------------------------
def test_the_cancel_page_offers_each_ending_and_refund_with_its_amount(
    staff_client: Client, subscriber: Subscriber
) -> None:
    response = staff_client.get(subscriber.cancel_url)
    page = response.content.decode()
    assert response.status_code == 200
    assert f"At the end of the period (on {day(subscriber.period_end)})" in page
    assert "Immediately" in page
    assert "No refund" in page
    assert "The last payment in full ($25.00)" in page
    prorated = response.context["membership"].prorated_refund
    assert 0 < prorated < 2500
    assert f"The unused part of the current period (${prorated // 100}.{prorated % 100:02d})" in page
    uuid.UUID(request_key_of(response))


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({"when": "period_end"}, "stops renewing"),
        ({"when": "now", "refund": "none"}, "ends now."),
        ({"when": "now", "refund": "last"}, "with a refund of the last payment in full ($25.00)"),
        ({"when": "now", "refund": "prorated"}, "with a refund of the unused part of the current period"),
    ],
)
def test_each_cancel_choice_is_requested_once_even_when_posted_twice(
    staff_client: Client, subscriber: Subscriber, choice: dict[str, str], message: str
) -> None:
    key = request_key_of(staff_client.get(subscriber.cancel_url))
    first = staff_client.post(subscriber.cancel_url, {**choice, "request_key": key}, follow=True)
    assert first.redirect_chain == [(subscriber.user_url, 302)]
    assert "Cancellation requested" in first.content.decode()
    assert message in first.content.decode()
    recorded = [(m.key, m.payload) for m in stripe_writes()]
    assert recorded
    staff_client.post(subscriber.cancel_url, {**choice, "request_key": key})
    assert [(m.key, m.payload) for m in stripe_writes()] == recorded


def test_a_cancel_with_a_new_request_key_is_a_new_request(staff_client: Client, subscriber: Subscriber) -> None:
    for _ in range(2):
        key = request_key_of(staff_client.get(subscriber.cancel_url))
        staff_client.post(subscriber.cancel_url, {"when": "period_end", "request_key": key})
    assert len({m.key for m in stripe_writes()}) >= 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"when": ""}, "Choose when the membership ends."),
        ({"when": "tomorrow"}, "Choose when the membership ends."),
        ({"when": "now", "refund": "everything"}, "Choose one of the refunds listed."),
        ({"when": "period_end", "refund": "last"}, "only made with a membership that ends immediately"),
        ({"when": "now", "refund": "none", "request_key": "abc"}, "This page has expired"),
    ],
)
def test_bad_cancel_choices_are_shown_again_with_a_clear_message(
    staff_client: Client, subscriber: Subscriber, data: dict[str, str], message: str
) -> None:
    response = staff_client.post(subscriber.cancel_url, {"request_key": str(uuid.uuid4()), **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not stripe_writes()


def test_a_cancel_the_service_refuses_shows_its_reason(staff_client: Client, subscriber: Subscriber) -> None:
    StripeSubscription.objects.filter(pk=subscriber.subscription.pk).update(status="canceled", ended_at=timezone.now())
    Entitlement.objects.filter(pk=subscriber.entitlement.pk).update(status=Entitlement.Status.CANCELED, renews_at=None)
    response = staff_client.post(
        subscriber.cancel_url, {"when": "now", "refund": "none", "request_key": str(uuid.uuid4())}
    )
    assert response.status_code == 400
    assert errors_of(response)
    assert not stripe_writes()


def test_a_free_claim_has_nothing_to_cancel_or_refund(staff_client: Client, member: User) -> None:
    free = factories.offer("Free Circle")
    entitlement = Entitlement.objects.create(user=member, offer=free, source=Entitlement.Source.FREE)
    url = reverse("billing:membership_cancel", kwargs={"pk": member.pk, "entitlement_id": entitlement.pk})
    assert "nothing to cancel" in staff_client.get(url).content.decode()
    response = staff_client.post(url, {"when": "now", "refund": "last", "request_key": str(uuid.uuid4())})
    assert response.status_code == 400
    assert errors_of(response)
    assert not stripe_writes()


def test_another_users_membership_is_not_found(staff_client: Client, subscriber: Subscriber, outsider: User) -> None:
    url = reverse("billing:membership_cancel", kwargs={"pk": outsider.pk, "entitlement_id": subscriber.entitlement.pk})
    assert staff_client.get(url).status_code == 404


# --- Refunding --------------------------------------------------------------------------------
def test_the_refund_page_shows_the_payment_and_proposes_what_is_left(
    staff_client: Client, subscriber: Subscriber
) -> None:
    Payment.objects.filter(pk=subscriber.payment.pk).update(amount_refunded=500)
    response = staff_client.get(subscriber.refund_url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "$25.00" in page
    assert "•••• 4242" in page
    assert "$5.00" in page  # refunded already
    assert 'value="20.00"' in page
    assert "Refunding in full revokes access" in page
    uuid.UUID(request_key_of(response))


def test_the_refund_page_says_when_the_offer_keeps_access(staff_client: Client, subscriber: Subscriber) -> None:
    Offer.objects.filter(pk=subscriber.offer.pk).update(refund_policy=Offer.RefundPolicy.KEEP)
    assert "Refunding in full keeps access" in staff_client.get(subscriber.refund_url).content.decode()


def test_a_refund_is_requested_once_even_when_posted_twice(staff_client: Client, subscriber: Subscriber) -> None:
    key = request_key_of(staff_client.get(subscriber.refund_url))
    first = staff_client.post(subscriber.refund_url, {"amount": "12.50", "request_key": key}, follow=True)
    assert first.redirect_chain == [(subscriber.user_url, 302)]
    assert "Refund of $12.50 requested" in first.content.decode()
    recorded = stripe_writes()
    assert [m.key for m in recorded] == [f"refund:{subscriber.payment.pk}:{key}"]
    assert 1250 in recorded[0].payload.values() or "1250" in str(recorded[0].payload)
    staff_client.post(subscriber.refund_url, {"amount": "12.50", "request_key": key})
    assert [m.key for m in stripe_writes()] == [f"refund:{subscriber.payment.pk}:{key}"]


def test_a_refund_from_sales_goes_back_to_sales(staff_client: Client, subscriber: Subscriber) -> None:
    sales = staff_client.get(reverse("billing:dashboard_sales")).content.decode()
    link = f"{subscriber.refund_url}?next=sales"
    assert link in sales
    key = request_key_of(staff_client.get(link))
    response = staff_client.post(link, {"amount": "25.00", "request_key": key, "next": "sales"})
    assert response.status_code == 302
    assert response.url == reverse("billing:dashboard_sales")


@pytest.mark.parametrize("next_value", ["https://evil.example/", "//evil.example/", "/dashboard/offers/", "SALES"])
def test_a_refund_never_goes_back_to_a_page_the_request_names(
    staff_client: Client, subscriber: Subscriber, next_value: str
) -> None:
    response = staff_client.post(
        f"{subscriber.refund_url}?next={next_value}",
        {"amount": "1.00", "request_key": str(uuid.uuid4()), "next": next_value},
    )
    assert response.status_code == 302
    assert response.url == subscriber.user_url


def test_the_sales_page_shows_refunded_amounts(staff_client: Client, subscriber: Subscriber) -> None:
    Payment.objects.filter(pk=subscriber.payment.pk).update(amount_refunded=2500)
    sales = staff_client.get(reverse("billing:dashboard_sales")).content.decode()
    assert sales.count("$25.00") == 2  # paid and refunded
    assert subscriber.refund_url not in sales


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("25.01", "At most $25.00 of this payment can be refunded."),
        ("-1", "Enter an amount above zero"),
        ("0", "Enter an amount above zero"),
        ("abc", "Enter the amount to refund as a number"),
        ("", "Enter the amount to refund, like 12.50."),
        ("1.999", "Use at most two decimals"),
        ("1e309", "larger than the payment"),
        ("NaN", "Enter the amount to refund as a number"),
    ],
)
def test_a_bad_refund_amount_is_shown_again_with_a_clear_message(
    staff_client: Client, subscriber: Subscriber, amount: str, message: str
) -> None:
    response = staff_client.post(subscriber.refund_url, {"amount": amount, "request_key": str(uuid.uuid4())})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert f'value="{amount}"' in response.content.decode() or amount == ""
    assert not stripe_writes()


def test_a_payment_refunded_in_full_cannot_be_refunded_again(staff_client: Client, subscriber: Subscriber) -> None:
    Payment.objects.filter(pk=subscriber.payment.pk).update(amount_refunded=2500)
    assert "nothing is left to refund" in staff_client.get(subscriber.refund_url).content.decode()
    response = staff_client.post(subscriber.refund_url, {"amount": "1.00", "request_key": str(uuid.uuid4())})
    assert response.status_code == 400
    assert "nothing is left to refund" in response.content.decode()
    assert not stripe_writes()


def test_a_refund_with_an_expired_key_is_shown_again_with_a_fresh_key(
    staff_client: Client, subscriber: Subscriber
) -> None:
    response = staff_client.post(subscriber.refund_url, {"amount": "3.00", "request_key": "abc"})
    assert response.status_code == 400
    assert "This page has expired" in response.content.decode()
    assert 'value="3.00"' in response.content.decode()
    uuid.UUID(request_key_of(response))
    assert not stripe_writes()


# --- Who may -----------------------------------------------------------------------------------
def test_members_and_visitors_cannot_cancel_or_refund(client: Client, subscriber: Subscriber) -> None:
    data = {"when": "now", "refund": "last", "amount": "25.00", "request_key": str(uuid.uuid4())}
    for url in (subscriber.cancel_url, subscriber.refund_url):
        response = client.post(url, data)
        assert response.status_code == 302
        assert response.url.startswith(reverse("accounts:login"))
    client.force_login(subscriber.member)
    for url in (subscriber.cancel_url, subscriber.refund_url):
        assert client.get(url).status_code == 403
        assert client.post(url, data).status_code == 403
    assert not stripe_writes()


# --- The offer editor --------------------------------------------------------------------------
def test_the_editor_saves_the_refund_policy_and_renewal_receipts(staff_client: Client) -> None:
    from tests.memberships.test_editor import CREATE_URL, form_data

    data = form_data(pricing="recurring", price="25", interval="month", refund_policy="keep", renewal_receipts=None)
    response = staff_client.post(CREATE_URL, data)
    assert response.status_code == 302
    offer = Offer.objects.get()
    assert (offer.refund_policy, offer.renewal_receipts) == (Offer.RefundPolicy.KEEP, False)
    page = staff_client.get(reverse("memberships:offer_edit", kwargs={"pk": offer.pk})).content.decode()
    assert "Email a receipt for each renewal" in page
    assert "When a payment is refunded in full or a dispute is lost" in page


def test_a_new_offer_revokes_access_on_refund_and_emails_renewal_receipts(staff_client: Client) -> None:
    page = staff_client.get(reverse("memberships:offer_create", kwargs={"kind": "membership"})).content.decode()
    assert 'value="revoke" checked' in page or 'value="revoke" id="id_refund_policy_0" checked' in page
    assert 'name="renewal_receipts" checked' in page


def test_an_unknown_refund_policy_is_refused_with_a_clear_message(staff_client: Client) -> None:
    from tests.memberships.test_editor import CREATE_URL, form_data

    response = staff_client.post(CREATE_URL, form_data(refund_policy="maybe"))
    assert response.status_code == 400
    assert "Choose whether a refunded buyer keeps access." in response.content.decode()
    assert not Offer.objects.exists()
