"""One-click purchases of a private group's popup upsell, end to end through the sandbox. A
member who paid here before (Checkout saved their card) buys the upsell in one click: the
popup, the confirmation page, an off-session charge or a subscription on the saved card, and
access at once. A decline, a bank that asks for authentication, or no card on file sends them
to Checkout with a message. Webhooks reach the live server and are processed on the
``celery_worker`` (a real worker on Redis in CI's second pass); they change nothing that the
request already recorded.

The member's own writes that make Stripe send events run with the deliveries held: with SQLite
the live server shares the test's database connection.
"""

from __future__ import annotations

import http.client
import re
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from accounts.services import user_email_verify
from billing.models import CheckoutAttempt, OneClickPurchase, Payment, StripeAccount, StripeSubscription, WebhookEvent
from billing.tasks import sync_offer_to_stripe
from hubs import services as hub_services
from hubs.models import HubGroup
from memberships.models import Entitlement, Offer
from tests.billing import lifecycle_helpers as h
from tests.billing.test_stripe_flows import _connect

pytestmark = pytest.mark.django_db(transaction=True)

VIP_PAGE = "/community/vip/"
ONE_CLICK = "/offers/vip-room/buy-now/"
CHECKOUT = "/offers/vip-room/checkout/"
VIP_CONFIRMATION = "You're in: VIP Room"
DECLINES_OFF_SESSION = h.FAILS_LATER  # 0341: pays at checkout, declines every later charge
AUTHENTICATES_UNLESS_SET_UP = "4000002500003155"
ALWAYS_AUTHENTICATES = "4000002760003184"


@pytest.fixture
def connected(client: Client, owner: User, stripe_sandbox: Any) -> StripeAccount:
    _connect(client, owner, stripe_sandbox)
    client.logout()
    return StripeAccount.objects.connected().get()


def upsell(*, recurring: bool = False, amount: int = 1500) -> Offer:
    """The private group "VIP", whose popup upsell sells the offer "VIP Room"."""
    group = HubGroup.objects.create(name="VIP", slug="vip", permission=HubGroup.Permission.PRIVATE)
    offer = Offer.objects.create(
        title="VIP Room",
        slug="vip-room",
        status=Offer.Status.PUBLISHED,
        pricing=Offer.Pricing.RECURRING if recurring else Offer.Pricing.ONE_TIME,
        interval=Offer.Interval.MONTH if recurring else "",
        price_amount=amount,
        currency="usd",
    )
    offer.hub_groups.add(group)
    sync_offer_to_stripe.apply(args=[offer.pk])
    hub_services.hub_group_update(
        group=group,
        name="VIP",
        description="The inner room.",
        permission=HubGroup.Permission.PRIVATE,
        upsell=HubGroup.Upsell.POPUP,
        upsell_cta="Join the VIP Room",
        upsell_description="Monthly calls with the team.",
        extras={"upsell_offer": offer},
    )
    return offer


def setting_up(stripe_sandbox: Any, live_server: Any, *, recurring: bool = False) -> Offer:
    """The community's two offers (Inner Circle, bought first, and the upsell), then webhooks
    pointed at the live server."""
    h.offer()
    offer = upsell(recurring=recurring)
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    h.settle(stripe_sandbox)
    return offer


def member_with_a_card(client: Client, stripe_sandbox: Any, card: str = h.PAYS) -> User:
    """A buyer of Inner Circle (through Checkout, which saved the card), back through their
    emailed link (so their address is proven) and logged in."""
    buyer = h.buy(client, stripe_sandbox, card=card).buyer
    user_email_verify(user=buyer)
    client.force_login(buyer)
    return buyer


def confirmation_form(page: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="/offers/vip-room/buy-now/">(.*?)</form>', page, re.S)
    assert form, "the page has no confirmation form"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(1)))


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def upsell_payments() -> list[Payment]:
    return list(Payment.objects.filter(offer__slug="vip-room"))


def upsell_entitlement(member: User) -> Entitlement | None:
    return Entitlement.objects.filter(user=member, offer__slug="vip-room").first()


def one_click_intents(stripe_sandbox: Any, connected: StripeAccount) -> list[dict[str, Any]]:
    listed = stripe_sandbox.client().v1.payment_intents.list({"limit": 100}, {"stripe_account": connected.account_id})
    return [intent.to_dict() for intent in listed.data if intent.metadata.to_dict().get("one_click")]


def fallen_back(client: Client, response: Any) -> str:
    """Follow a purchase's result to the checkout page it sends the member to; its text."""
    result = client.get(response["Location"])
    assert result.status_code == 302
    assert result["Location"] == CHECKOUT
    page = client.get(CHECKOUT)
    assert page.status_code == 200
    return text(page)


# --- A card on file ------------------------------------------------------------------------------
def test_a_member_with_a_card_on_file_buys_in_one_click_and_a_double_submit_charges_once(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    setting_up(stripe_sandbox, live_server)
    member = member_with_a_card(client, stripe_sandbox)

    paywall = client.get(VIP_PAGE)
    assert paywall.status_code == 403
    body = text(paywall)
    assert "Join the VIP Room" in body  # the button opening the popup
    assert '<p class="price-label">$15.00</p>' in body
    assert f'<a class="button primary" href="{ONE_CLICK}?group=vip">Buy now</a>' in body
    assert "With the card you used here before" in body

    page = client.get(f"{ONE_CLICK}?group=vip")
    assert page.status_code == 200
    body = text(page)
    assert "Your saved card, Visa •••• 4242, expires 12/2034" in body
    assert "One payment of $15.00" in body
    form = confirmation_form(page.content.decode())
    assert form["amount"] == "1500"
    assert form["group"] == "vip"

    with h.deliveries_held(stripe_sandbox, ms=4000):
        first = client.post(ONE_CLICK, form)
        second = client.post(ONE_CLICK, form)  # a double click
        # Access at once, before any of Stripe's webhooks about the charge arrived.
        assert upsell_entitlement(member) is not None
        assert not WebhookEvent.objects.filter(
            type="payment_intent.succeeded", payload__data__object__metadata__one_click=form["request_key"]
        ).exists()
        result = client.get(first["Location"])
        entered = client.get(result["Location"])
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/buy-now/{form['request_key']}/"
    assert result["Location"] == VIP_PAGE
    assert entered.status_code == 200
    assert "You now have access to VIP Room." in text(entered)

    h.settle(stripe_sandbox)
    [intent] = one_click_intents(stripe_sandbox, connected)
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 1500)
    [payment] = upsell_payments()
    assert (payment.amount, payment.stripe_object_id, payment.kind) == (1500, intent["id"], Payment.Kind.ONE_TIME)
    assert payment.card_last4 == "4242"
    entitlement = upsell_entitlement(member)
    assert entitlement is not None
    assert (entitlement.status, entitlement.backed_by, entitlement.access_until) == ("active", intent["id"], None)
    assert h.reasons(entitlement) == ["Purchased"]
    purchase = OneClickPurchase.objects.get()
    assert (purchase.status, purchase.card_label, purchase.attempt.status) == ("charged", "Visa •••• 4242", "paid")
    # The webhook about the charge found it recorded.
    [succeeded] = WebhookEvent.objects.filter(type="payment_intent.succeeded", payload__data__object__id=intent["id"])
    assert (succeeded.status, succeeded.error) == (WebhookEvent.Status.PROCESSED, "")
    h.pause()
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, VIP_CONFIRMATION])
    assert client.get(VIP_PAGE).status_code == 200


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="the live server shares one SQLite connection between its threads: concurrency is tested on "
    "PostgreSQL (CI's second pass)",
)
def test_five_submits_of_one_confirmation_at_once_charge_the_card_once(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    setting_up(stripe_sandbox, live_server)
    member = member_with_a_card(client, stripe_sandbox)
    page = client.get(f"{ONE_CLICK}?group=vip")
    form = confirmation_form(page.content.decode())
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert csrf
    cookies = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}; " + (
        f"{settings.CSRF_COOKIE_NAME}={client.cookies[settings.CSRF_COOKIE_NAME].value}"
    )
    body = urlencode({**form, "csrfmiddlewaretoken": csrf.group(1)})
    server = urlsplit(live_server.url)
    answers: list[tuple[int, str]] = []
    barrier = threading.Barrier(5)

    def submit() -> None:
        connection = http.client.HTTPConnection(server.hostname or "", server.port, timeout=30)
        barrier.wait()
        connection.request(
            "POST",
            ONE_CLICK,
            body,
            {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookies},
        )
        response = connection.getresponse()
        answers.append((response.status, response.getheader("Location") or ""))

    threads = [threading.Thread(target=submit) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [(302, f"/buy-now/{form['request_key']}/")] * 5
    h.settle(stripe_sandbox)
    assert len(one_click_intents(stripe_sandbox, connected)) == 1
    assert len(upsell_payments()) == 1
    assert OneClickPurchase.objects.count() == 1
    assert CheckoutAttempt.objects.filter(offer__slug="vip-room").count() == 1
    h.pause()
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, VIP_CONFIRMATION])
    client.force_login(member)
    assert client.get(VIP_PAGE).status_code == 200


def test_a_recurring_upsell_is_bought_in_one_click_as_a_subscription_on_the_saved_card(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    setting_up(stripe_sandbox, live_server, recurring=True)
    member = member_with_a_card(client, stripe_sandbox)
    page = client.get(f"{ONE_CLICK}?group=vip")
    assert "$15.00 now, then $15.00 / month until you cancel" in text(page)

    with h.deliveries_held(stripe_sandbox, ms=4000):
        response = client.post(ONE_CLICK, confirmation_form(page.content.decode()))
        assert upsell_entitlement(member) is not None  # at once
    assert client.get(response["Location"])["Location"] == VIP_PAGE

    h.settle(stripe_sandbox)
    purchase = OneClickPurchase.objects.get()
    subscription = h.subscription(stripe_sandbox, purchase.stripe_object_id)
    assert subscription["status"] == "active"
    assert subscription["metadata"]["one_click"] == str(purchase.key)
    assert subscription["default_payment_method"] == purchase.payment_method_id
    period_end = h.moment(subscription["items"]["data"][0]["current_period_end"])
    entitlement = upsell_entitlement(member)
    assert entitlement is not None
    assert (entitlement.status, entitlement.source) == ("active", Entitlement.Source.SUBSCRIPTION)
    assert entitlement.backed_by == subscription["id"]
    assert entitlement.access_until == period_end + timedelta(hours=2)
    [payment] = upsell_payments()  # the first invoice, once, though invoice.paid arrived later
    assert (payment.kind, payment.amount, payment.stripe_subscription_id) == ("invoice", 1500, subscription["id"])
    assert StripeSubscription.objects.get(subscription_id=subscription["id"]).status == "active"
    h.pause()
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, VIP_CONFIRMATION])
    assert client.get(VIP_PAGE).status_code == 200


def test_a_card_saved_for_later_that_authenticates_unless_set_up_is_charged_in_one_click(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    """Stripe's 3155 card asks for authentication unless set up: Checkout set it up for
    off-session use when it saved it, so the bank lets the one-click charge through."""
    setting_up(stripe_sandbox, live_server)
    member = member_with_a_card(client, stripe_sandbox, card=AUTHENTICATES_UNLESS_SET_UP)
    page = client.get(f"{ONE_CLICK}?group=vip")

    with h.deliveries_held(stripe_sandbox, ms=4000):
        response = client.post(ONE_CLICK, confirmation_form(page.content.decode()))
    assert client.get(response["Location"])["Location"] == VIP_PAGE

    h.settle(stripe_sandbox)
    assert upsell_entitlement(member) is not None
    assert [payment.card_last4 for payment in upsell_payments()] == ["3155"]


# --- When the card cannot be used: Checkout, with a message --------------------------------------
def test_a_declined_saved_card_sends_the_member_to_checkout_with_a_message(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    setting_up(stripe_sandbox, live_server)
    member = member_with_a_card(client, stripe_sandbox, card=DECLINES_OFF_SESSION)
    page = client.get(f"{ONE_CLICK}?group=vip")
    assert "Visa •••• 0341" in text(page)

    with h.deliveries_held(stripe_sandbox, ms=4000):
        response = client.post(ONE_CLICK, confirmation_form(page.content.decode()))
        body = fallen_back(client, response)
    assert (
        "Your saved card (Visa •••• 0341) was declined: Your card was declined. Nothing was charged. "
        "You can pay with another card here."
    ) in body
    assert f'value="{member.email}"' in body  # the checkout form, filled in for the member

    h.settle(stripe_sandbox)
    assert upsell_entitlement(member) is None
    assert upsell_payments() == []
    purchase = OneClickPurchase.objects.get()
    assert (purchase.status, purchase.attempt.status) == ("declined", "failed")
    [intent] = one_click_intents(stripe_sandbox, connected)
    assert intent["status"] == "requires_payment_method"
    assert h.subjects(celery_worker) == [h.CONFIRMATION]  # Inner Circle's only
    assert client.get(VIP_PAGE).status_code == 403


def test_a_bank_that_asks_for_authentication_sends_the_member_to_checkout_with_a_message(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    """Stripe's 3184 card asks for authentication on every charge: off-session it cannot."""
    setting_up(stripe_sandbox, live_server)
    member = member_with_a_card(client, stripe_sandbox, card=ALWAYS_AUTHENTICATES)
    page = client.get(f"{ONE_CLICK}?group=vip")

    with h.deliveries_held(stripe_sandbox, ms=4000):
        response = client.post(ONE_CLICK, confirmation_form(page.content.decode()))
        body = fallen_back(client, response)
    assert (
        "Your bank wants you to confirm this payment, so your saved card (Visa •••• 3184) was not charged. "
        "Continue here to pay: your bank can ask you to confirm it on the payment page."
    ) in body

    h.settle(stripe_sandbox)
    assert upsell_entitlement(member) is None
    assert upsell_payments() == []
    assert OneClickPurchase.objects.get().status == "authentication_required"
    [intent] = one_click_intents(stripe_sandbox, connected)
    assert (intent["status"], intent["last_payment_error"]["code"]) == (
        "requires_payment_method",
        "authentication_required",
    )

    # Checkout then takes the card, the bank asking on Stripe's page.
    with h.deliveries_held(stripe_sandbox, ms=2000):
        start = client.post(f"{CHECKOUT}pay/", {"email": member.email, "full_name": "Bea Buyer"})
    assert start.status_code == 302
    attempt = CheckoutAttempt.objects.get(offer__slug="vip-room", status=CheckoutAttempt.Status.OPEN)
    assert stripe_sandbox.pay_checkout(attempt.stripe_session_id, card=ALWAYS_AUTHENTICATES, email=member.email).paid
    h.settle(stripe_sandbox)
    assert upsell_entitlement(member) is not None
    assert len(upsell_payments()) == 1


def test_a_member_without_a_card_on_file_goes_to_the_offer_page_as_before(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    setting_up(stripe_sandbox, live_server)
    member = User.objects.create_user("mia@example.com", "x", full_name="Mia Member")
    user_email_verify(user=member)
    client.force_login(member)

    body = text(client.get(VIP_PAGE))
    assert '<a class="button primary" href="/offers/vip-room/">Buy now</a>' in body
    assert "With the card you used here before" not in body
    # The one-click page itself, reached anyway, sends them to Checkout.
    assert client.get(f"{ONE_CLICK}?group=vip")["Location"] == CHECKOUT
    assert not OneClickPurchase.objects.exists()


def test_a_member_whose_customer_has_no_card_any_more_goes_to_checkout(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    """Paid before, so the popup offers one click; but Stripe holds no card for them (a
    purchase from before cards were saved): the page sends them to Checkout, and a stale
    confirmation charges nothing."""
    setting_up(stripe_sandbox, live_server)
    member = member_with_a_card(client, stripe_sandbox)
    page = client.get(f"{ONE_CLICK}?group=vip")
    form = confirmation_form(page.content.decode())
    attempt = CheckoutAttempt.objects.get(user=member, status=CheckoutAttempt.Status.PAID)
    with h.deliveries_held(stripe_sandbox):
        stranger = stripe_sandbox.client().v1.customers.create(
            {"email": member.email}, {"stripe_account": connected.account_id}
        )
        CheckoutAttempt.objects.filter(pk=attempt.pk).update(stripe_customer_id=stranger.id)
    h.settle(stripe_sandbox)

    assert f'href="{ONE_CLICK}?group=vip">Buy now</a>' in text(client.get(VIP_PAGE))
    assert client.get(f"{ONE_CLICK}?group=vip")["Location"] == CHECKOUT
    response = client.post(ONE_CLICK, form)
    body = fallen_back(client, response)
    assert "You have no saved card any more, so nothing was charged. You can pay with a card here." in body
    assert OneClickPurchase.objects.get().status == "no_card"
    assert one_click_intents(stripe_sandbox, connected) == []


def test_a_member_who_never_proved_their_address_buys_through_checkout(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    """Access added to an unproven account ends its sessions, so one click would log them out."""
    setting_up(stripe_sandbox, live_server)
    buyer = h.buy(client, stripe_sandbox).buyer
    client.force_login(buyer)

    assert 'href="/offers/vip-room/">Buy now</a>' in text(client.get(VIP_PAGE))
    assert client.get(f"{ONE_CLICK}?group=vip")["Location"] == CHECKOUT


def test_a_changed_price_is_confirmed_again(
    client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    setting_up(stripe_sandbox, live_server)
    member_with_a_card(client, stripe_sandbox)
    page = client.get(f"{ONE_CLICK}?group=vip")
    form = {**confirmation_form(page.content.decode()), "amount": "900"}

    response = client.post(ONE_CLICK, form)

    assert response["Location"] == f"{ONE_CLICK}?group=vip"
    assert "The price of VIP Room is now $15.00. Check it and confirm again." in text(client.get(response["Location"]))
    assert not OneClickPurchase.objects.exists()
