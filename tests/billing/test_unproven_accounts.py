"""An account made by typing an address into a public form is not its owner's until the owner
uses an emailed link. A browser that typed someone else's address must never gain what a later
purchase, claim or grant adds to that account.

Browser A is the stranger who typed the address first; browser B belongs to the address's owner.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.db import transaction
from django.test import Client, TestCase

from accounts.models import User
from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, OfferStripePrice
from billing.services.fulfilment import checkout_attempt_fulfil
from hubs import services as hub_services
from hubs.models import Hub, HubGroup, Post
from memberships.models import Offer
from memberships.services import offer_update
from tests import factories
from tests.billing.helpers import FakeStripe

pytestmark = pytest.mark.django_db

VICTIM = "victim@example.com"


@pytest.fixture
def stripe(monkeypatch: pytest.MonkeyPatch) -> FakeStripe:
    """Checkout Sessions are accepted and payments read back as the gateway would."""
    created = iter(range(1, 1000))
    monkeypatch.setattr(
        gateway,
        "checkout_session_create",
        lambda *, account_id, params, idempotency_key: gateway.CheckoutSessionCreated(
            session_id=f"cs_test_{next(created)}", url="https://pay.test/s"
        ),
    )
    monkeypatch.setattr(
        gateway,
        "price_retrieve",
        lambda *, account_id, price_id: gateway.Price.from_stripe(
            {
                "id": price_id,
                "active": True,
                "unit_amount": Offer.objects.get(stripe_price__price_id=price_id).price_amount,
                "currency": "usd",
                "recurring": None,
            }
        ),
    )
    factories.stripe_account()
    return FakeStripe(monkeypatch)


def _group(name: str) -> Hub:
    group = hub_services.hub_group_create(name=name, permission=HubGroup.Permission.PRIVATE, description="")
    return hub_services.hub_create(group=group, name="General")


@pytest.fixture
def free_hub() -> Hub:
    return _group("Free Lounge")


@pytest.fixture
def paid_hub() -> Hub:
    return _group("Paid Lounge")


@pytest.fixture
def free_offer(free_hub: Hub) -> Offer:
    offer = Offer.objects.create(
        title="Free Taster", slug="free-taster", status=Offer.Status.PUBLISHED, pricing=Offer.Pricing.FREE
    )
    offer.hub_groups.add(free_hub.group)
    return offer


def _paid(hub: Hub, slug: str, price_id: str) -> Offer:
    offer = factories.paid_offer(slug=slug)
    OfferStripePrice.objects.filter(offer=offer).update(price_id=price_id)
    offer.hub_groups.add(hub.group)
    return offer


@pytest.fixture
def paid(paid_hub: Hub) -> Offer:
    return _paid(paid_hub, "inner-circle", "price_inner")


def claim(browser: Client, offer: Offer, email: str = VICTIM) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return browser.post(f"/offers/{offer.slug}/checkout/", {"email": email, "full_name": "Someone"})


def buy(browser: Client, offer: Offer, stripe: FakeStripe, email: str = VICTIM) -> CheckoutAttempt:
    """Pay in ``browser`` and let the payment be fulfilled (as the webhook would)."""
    response = browser.post(f"/offers/{offer.slug}/checkout/pay/", {"email": email, "full_name": "Someone"})
    assert response.status_code == 302, response.content.decode()
    attempt = CheckoutAttempt.objects.filter(offer=offer).latest("created_at")
    session = stripe.paid_session(attempt)
    with TestCase.captureOnCommitCallbacks(execute=True):
        checkout_attempt_fulfil(
            attempt_id=attempt.pk,
            paid=gateway.PaidObject(
                stripe_object_id=session["payment_intent"], kind="one_time", amount=attempt.amount, currency="usd"
            ),
        )
    return attempt


def come_back(browser: Client, attempt: CheckoutAttempt) -> Any:
    return browser.get(f"/checkout/{attempt.pk}/complete/")


def is_logged_in(browser: Client) -> bool:
    return browser.get("/home/").status_code == 200


def enters(browser: Client, hub: Hub) -> bool:
    return browser.get(hub.get_absolute_url()).status_code == 200


def posts_in(browser: Client, hub: Hub) -> bool:
    before = Post.objects.filter(hub=hub).count()
    browser.post(hub.get_absolute_url(), {"title": "", "body": "Posted under someone else's name"})
    return Post.objects.filter(hub=hub).count() > before


def owner_opens_the_emailed_link(browser: Client) -> None:
    """The newest login link emailed to the victim, used as its owner would (GET, then POST)."""
    links = [
        match.group(0)
        for message in mail.outbox
        if message.to == [VICTIM]
        for match in re.finditer(r"https?://[^/\s]+(/accounts/login-link/\S+/)", message.body)
    ]
    assert links, [message.body for message in mail.outbox]
    path = re.sub(r"^https?://[^/]+", "", links[-1])
    assert browser.get(path).status_code == 200
    assert browser.post(path).status_code == 302


def assert_shut_out(stranger: Client, hub: Hub) -> None:
    assert not is_logged_in(stranger)
    assert stranger.get(hub.get_absolute_url()).status_code == 302  # to the login page
    assert not posts_in(stranger, hub)


def assert_owner_gets_in(owner_browser: Client, hub: Hub) -> None:
    owner_opens_the_emailed_link(owner_browser)
    account = User.objects.get(email=VICTIM)
    assert account.email_verified_at is not None
    assert owner_browser.session[SESSION_KEY] == str(account.pk)
    assert enters(owner_browser, hub)
    assert posts_in(owner_browser, hub)


def test_free_then_paid_the_stranger_loses_the_session_and_the_owner_gets_the_purchase(
    stripe: FakeStripe, free_offer: Offer, free_hub: Hub, paid: Offer, paid_hub: Hub
) -> None:
    stranger, owner = Client(), Client()
    claim(stranger, free_offer)
    assert is_logged_in(stranger)
    assert enters(stranger, free_hub)

    attempt = buy(owner, paid, stripe)
    assert come_back(owner, attempt)["Location"] == "/accounts/login/"  # the purchase did not make it
    assert SESSION_KEY not in owner.session

    assert_shut_out(stranger, paid_hub)
    assert_owner_gets_in(owner, paid_hub)
    assert not is_logged_in(stranger)


def test_paid_then_paid_the_first_buyers_browser_loses_the_session(
    stripe: FakeStripe, paid: Offer, paid_hub: Hub
) -> None:
    starter_hub = _group("Starter Room")
    starter = _paid(starter_hub, "starter", "price_starter")
    stranger, owner = Client(), Client()
    first = buy(stranger, starter, stripe)
    come_back(stranger, first)
    assert is_logged_in(stranger)
    assert enters(stranger, starter_hub)

    second = buy(owner, paid, stripe)
    assert come_back(owner, second)["Location"] == "/accounts/login/"

    assert_shut_out(stranger, paid_hub)
    assert_owner_gets_in(owner, paid_hub)


def test_paid_then_paid_a_pending_automatic_login_is_not_used_after_a_later_purchase(
    stripe: FakeStripe, paid: Offer, paid_hub: Hub
) -> None:
    """The stranger pays first but comes back to the success page only after the owner paid."""
    starter = _paid(_group("Starter Room"), "starter", "price_starter")
    stranger, owner = Client(), Client()
    first = buy(stranger, starter, stripe)
    buy(owner, paid, stripe)

    assert come_back(stranger, first)["Location"] == "/accounts/login/"
    assert_shut_out(stranger, paid_hub)
    assert_owner_gets_in(owner, paid_hub)


def test_free_then_grant_the_stranger_loses_the_session(
    client: Client, owner: User, free_offer: Offer, paid_hub: Hub
) -> None:
    stranger, person = Client(), Client()
    claim(stranger, free_offer)
    assert is_logged_in(stranger)
    account = User.objects.get(email=VICTIM)

    client.force_login(owner)  # the creator grants the group from the Users page
    response = client.post(f"/dashboard/users/{account.pk}/", {"group": paid_hub.group.pk, "note": "Speaker"})
    assert response.status_code == 302

    assert_shut_out(stranger, paid_hub)
    with TestCase.captureOnCommitCallbacks(execute=True):
        person.post("/accounts/login-link/", {"email": VICTIM})
    assert_owner_gets_in(person, paid_hub)


def test_paid_then_free_nobody_is_logged_in_by_the_claim(
    stripe: FakeStripe, free_offer: Offer, free_hub: Hub, paid: Offer, paid_hub: Hub
) -> None:
    owner, stranger = Client(), Client()
    attempt = buy(owner, paid, stripe)
    come_back(owner, attempt)
    assert enters(owner, paid_hub)  # a new account made by this purchase: today's rule

    response = claim(stranger, free_offer)
    assert response.status_code == 200
    assert "Check your email" in response.content.decode()
    assert SESSION_KEY not in stranger.session
    assert_shut_out(stranger, paid_hub)
    assert not enters(stranger, free_hub)

    # The owner's own session was opened without proof too: it ends, and the link brings them back.
    assert not is_logged_in(owner)
    assert_owner_gets_in(owner, paid_hub)


def test_paid_then_free_the_pending_automatic_login_is_not_used_after_the_claim(
    stripe: FakeStripe, free_offer: Offer, paid: Offer, paid_hub: Hub
) -> None:
    owner, stranger = Client(), Client()
    attempt = buy(owner, paid, stripe)
    claim(stranger, free_offer)
    assert come_back(owner, attempt)["Location"] == "/accounts/login/"
    assert not is_logged_in(stranger)
    assert_owner_gets_in(owner, paid_hub)


def test_a_browser_logged_in_by_a_claim_that_claims_again_is_sent_to_the_email(
    free_offer: Offer, paid_hub: Hub
) -> None:
    """Even the browser's own one-click claim adds to an unproven account: its session ends."""
    second = Offer.objects.create(
        title="Second Taster", slug="second-taster", status=Offer.Status.PUBLISHED, pricing=Offer.Pricing.FREE
    )
    second.hub_groups.add(paid_hub.group)
    stranger = Client()
    claim(stranger, free_offer)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = stranger.post(f"/offers/{second.slug}/checkout/", {})
    assert response.status_code == 200
    assert "Check your email" in response.content.decode()
    assert_shut_out(stranger, paid_hub)


def test_a_proven_account_keeps_its_sessions_when_something_is_added(
    stripe: FakeStripe, free_offer: Offer, paid: Offer, paid_hub: Hub
) -> None:
    owner, other_device = Client(), Client()
    claim(Client(), free_offer)
    with TestCase.captureOnCommitCallbacks(execute=True):
        owner.post("/accounts/login-link/", {"email": VICTIM})
    owner_opens_the_emailed_link(owner)
    attempt = buy(other_device, paid, stripe)
    come_back(other_device, attempt)
    assert SESSION_KEY not in other_device.session  # a form never logs into a proven account
    assert enters(owner, paid_hub)


def test_a_grant_that_rolls_back_ends_no_session(free_offer: Offer, paid_hub: Hub) -> None:
    stranger = Client()
    claim(stranger, free_offer)
    account = User.objects.get(email=VICTIM)

    def grant_then_fail() -> None:
        with transaction.atomic():
            hub_services.access_grant_create(user=account, group=paid_hub.group, granted_by=None)
            raise RuntimeError("the grant fails later in its transaction")

    with pytest.raises(RuntimeError):
        grant_then_fail()
    assert is_logged_in(stranger)


def test_a_group_added_to_an_offer_reaches_its_buyers_without_ending_sessions(
    free_offer: Offer, free_hub: Hub, paid_hub: Hub
) -> None:
    """Not an attachment to the account: the creator changed what the offer gives everyone who
    holds it, which anybody may claim with an address of their own."""
    stranger = Client()
    claim(stranger, free_offer)
    with TestCase.captureOnCommitCallbacks(execute=True):
        offer_update(offer=free_offer, hub_groups=[free_hub.group, paid_hub.group])
    assert is_logged_in(stranger)
    assert enters(stranger, paid_hub)
