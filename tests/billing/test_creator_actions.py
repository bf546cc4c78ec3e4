"""The creator's side of a membership's life: the Memberships panel on a user's page, cancelling
a subscription and refunding a payment from the dashboard, and the offer's refund settings."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone

from accounts.models import OutboxMessage, User
from billing.models import Payment, StripeSubscription
from billing.services import lifecycle
from memberships.models import Entitlement, EntitlementChange, Offer
from tests import factories
from tests.memberships.test_editor import CREATE_URL, form_data

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

    def __init__(self, member: User, stripe_account: Any, *, name: str = "creator") -> None:
        now = timezone.now()
        subscription_id = f"sub_{name}"
        self.member = member
        self.period_start = now - timedelta(days=10)
        self.period_end = now + timedelta(days=20)
        self.offer = factories.paid_offer(recurring=True, amount=2500, title="Monthly Circle", slug=f"monthly-{name}")
        self.entitlement = Entitlement.objects.create(
            user=member,
            offer=self.offer,
            source=Entitlement.Source.SUBSCRIPTION,
            backed_by=subscription_id,
            renews_at=self.period_end,
            access_until=self.period_end,
            started_at=self.period_start,
        )
        self.subscription = StripeSubscription.objects.create(
            subscription_id=subscription_id,
            stripe_account_id=stripe_account.account_id,
            customer_id=f"cus_{name}",
            user=member,
            offer=self.offer,
            status="active",
            current_period_start=self.period_start,
            current_period_end=self.period_end,
            created=self.period_start,
            synced_at=now,
        )
        self.payment = Payment.objects.create(
            stripe_object_id=f"in_{name}",
            kind=Payment.Kind.INVOICE,
            stripe_account_id=stripe_account.account_id,
            amount=2500,
            currency="usd",
            user=member,
            offer=self.offer,
            payment_intent_id=f"pi_{name}",
            charge_id=f"ch_{name}",
            card_last4="4242",
            stripe_subscription_id=subscription_id,
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


def _queries_with_one_then_six(
    client: Client, subscriber: Subscriber, stripe_account: Any, owner: User, *, renewing: bool
) -> tuple[int, int]:
    """How many queries the user's page runs with one membership, then with six."""

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(subscriber.user_url).status_code == 200
        return len(captured)

    def add(name: str) -> None:
        more = Subscriber(subscriber.member, stripe_account, name=name)
        Entitlement.objects.filter(pk=more.entitlement.pk).update(cancel_at_period_end=not renewing)
        EntitlementChange.objects.create(
            entitlement=more.entitlement, status_after=Entitlement.Status.ACTIVE, reason="Purchased", by=owner
        )

    few = queries()
    for n in range(5):
        add(f"more{n}")
    return few, queries()


def test_the_memberships_panel_adds_no_queries_per_membership(
    staff_client: Client, subscriber: Subscriber, stripe_account: Any, owner: User
) -> None:
    few, many = _queries_with_one_then_six(staff_client, subscriber, stripe_account, owner, renewing=False)
    assert many == few


def test_the_users_page_runs_fixed_queries_whatever_the_renewing_memberships(
    staff_client: Client, subscriber: Subscriber, stripe_account: Any, owner: User
) -> None:
    few, many = _queries_with_one_then_six(staff_client, subscriber, stripe_account, owner, renewing=True)
    assert many == few


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


def test_the_cancel_page_offers_what_is_left_of_a_partly_refunded_payment(
    staff_client: Client, subscriber: Subscriber
) -> None:
    Payment.objects.filter(pk=subscriber.payment.pk).update(amount_refunded=500)
    page = staff_client.get(subscriber.cancel_url).content.decode()
    assert "What is left of the last payment ($20.00 of $25.00)" in page
    Payment.objects.filter(pk=subscriber.payment.pk).update(amount_refunded=2500)
    page = staff_client.get(subscriber.cancel_url).content.decode()
    assert "last payment" not in page
    assert "The unused part of the current period" not in page  # nothing is left to refund


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({"when": "period_end"}, "stops renewing and ends at the end of the period (on {end})."),
        ({"when": "now", "refund": "none"}, "Monthly Circle ends now."),
        ({"when": "now", "refund": "last"}, "ends now, with a refund of the last payment in full ($25.00)."),
        ({"when": "now", "refund": "prorated"}, "ends now, with a refund of the unused part of the current period"),
    ],
)
def test_each_cancel_choice_is_requested_once_even_when_posted_twice(
    staff_client: Client, subscriber: Subscriber, owner: User, choice: dict[str, str], message: str
) -> None:
    page = staff_client.get(subscriber.cancel_url)
    key, prorated = request_key_of(page), page.context["membership"].prorated_refund
    first = staff_client.post(subscriber.cancel_url, {**choice, "request_key": key}, follow=True)
    assert first.redirect_chain == [(subscriber.user_url, 302)]
    assert "Cancellation requested: Monthly Circle" in first.content.decode()
    assert message.format(end=day(subscriber.period_end)) in first.content.decode()

    cancel = {"action": lifecycle.CANCEL_ACTION, "subscription": SUBSCRIPTION_ID}
    refund = {"action": lifecycle.REFUND_ACTION, "payment": subscriber.payment.pk, "by": owner.pk}
    refund_key = f"refund:{subscriber.payment.pk}:{key}"
    expected = {
        "period_end": [
            (
                f"cancel-at-period-end:{SUBSCRIPTION_ID}:{key}",
                {"action": lifecycle.CANCEL_AT_PERIOD_END_ACTION, "subscription": SUBSCRIPTION_ID},
            )
        ],
        "none": [(f"cancel:{SUBSCRIPTION_ID}", cancel)],
        "last": [(f"cancel:{SUBSCRIPTION_ID}", cancel), (refund_key, {**refund, "amount": 2500})],
        "prorated": [(f"cancel:{SUBSCRIPTION_ID}", cancel), (refund_key, {**refund, "amount": prorated})],
    }[choice.get("refund", "none") if choice["when"] == "now" else "period_end"]
    assert [(m.key, m.payload) for m in stripe_writes()] == expected

    staff_client.post(subscriber.cancel_url, {**choice, "request_key": key})
    assert [(m.key, m.payload) for m in stripe_writes()] == expected


def test_the_cancellation_request_is_in_the_history_with_who_asked(
    staff_client: Client, subscriber: Subscriber, owner: User
) -> None:
    key = request_key_of(staff_client.get(subscriber.cancel_url))
    staff_client.post(subscriber.cancel_url, {"when": "now", "refund": "last", "request_key": key})
    page = staff_client.get(subscriber.user_url).content.decode()
    assert "Immediate cancellation with a refund of $25.00 requested by the creator" in page
    assert "by Olive Owner" in page


def test_a_double_submitted_cancellation_is_noted_in_the_history_once(
    staff_client: Client, subscriber: Subscriber
) -> None:
    key = request_key_of(staff_client.get(subscriber.cancel_url))
    for _ in range(2):
        staff_client.post(subscriber.cancel_url, {"when": "now", "refund": "last", "request_key": key})
    assert EntitlementChange.objects.filter(entitlement=subscriber.entitlement).count() == 1


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
    response = staff_client.post(url, {"when": "now", "refund": "none", "request_key": str(uuid.uuid4())})
    assert response.status_code == 400
    assert "This membership has no subscription that renews: there is nothing to cancel." in response.content.decode()
    # No payment to refund: the page offers none.
    response = staff_client.post(url, {"when": "now", "refund": "last", "request_key": str(uuid.uuid4())})
    assert "Choose one of the refunds listed." in response.content.decode()
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


def test_a_refund_is_requested_once_even_when_posted_twice(
    staff_client: Client, subscriber: Subscriber, owner: User
) -> None:
    key = request_key_of(staff_client.get(subscriber.refund_url))
    first = staff_client.post(subscriber.refund_url, {"amount": "12.50", "request_key": key}, follow=True)
    assert first.redirect_chain == [(subscriber.user_url, 302)]
    assert "Refund of $12.50 requested" in first.content.decode()
    expected = [
        (
            f"refund:{subscriber.payment.pk}:{key}",
            {"action": lifecycle.REFUND_ACTION, "payment": subscriber.payment.pk, "amount": 1250, "by": owner.pk},
        )
    ]
    assert [(m.key, m.payload) for m in stripe_writes()] == expected
    again = staff_client.post(subscriber.refund_url, {"amount": "12.50", "request_key": key})
    assert again.status_code == 302
    assert [(m.key, m.payload) for m in stripe_writes()] == expected
    # A new confirmation page is a new request.
    other = request_key_of(staff_client.get(subscriber.refund_url))
    staff_client.post(subscriber.refund_url, {"amount": "2.00", "request_key": other})
    assert [m.payload["amount"] for m in stripe_writes()] == [1250, 200]


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
    listed = sales.split("<h2>Payments</h2>", 1)[1].split("<h2>Test purchases</h2>", 1)[0]
    assert listed.count("$25.00") == 2  # paid and refunded
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
    data = form_data(pricing="recurring", price="25", interval="month", refund_policy="keep", renewal_receipts=None)
    assert staff_client.post(CREATE_URL, data).status_code == 302
    offer = Offer.objects.get()
    assert (offer.refund_policy, offer.renewal_receipts) == (Offer.RefundPolicy.KEEP, False)
    page = staff_client.get(reverse("memberships:offer_edit", kwargs={"pk": offer.pk})).content.decode()
    assert 'value="keep" id="id_refund_policy_1" checked' in page
    assert 'name="renewal_receipts" id="id_renewal_receipts">' in page  # unchecked

    staff_client.post(
        reverse("memberships:offer_edit", kwargs={"pk": offer.pk}),
        form_data(pricing="recurring", price="25", interval="month", refund_policy="revoke", renewal_receipts="on"),
    )
    offer.refresh_from_db()
    assert (offer.refund_policy, offer.renewal_receipts) == (Offer.RefundPolicy.REVOKE, True)


def test_a_new_offer_revokes_access_on_refund_and_emails_renewal_receipts(staff_client: Client) -> None:
    page = staff_client.get(CREATE_URL).content.decode()
    assert "When a payment is refunded in full" in page
    assert 'value="revoke" id="id_refund_policy_0" checked' in page
    assert "Email a receipt for each renewal" in page
    assert 'name="renewal_receipts" id="id_renewal_receipts" checked' in page


def test_an_unknown_refund_policy_is_refused_with_a_clear_message(staff_client: Client) -> None:
    response = staff_client.post(CREATE_URL, form_data(refund_policy="maybe"))
    assert response.status_code == 400
    assert "Select a valid choice. maybe is not one of the available choices." in response.content.decode()
    assert not Offer.objects.exists()
