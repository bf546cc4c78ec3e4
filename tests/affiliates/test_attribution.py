"""A referred checkout: the attribution recorded at the start, and the Checkout Session carrying
the link's code and the commission as the application fee, through the offline sandbox."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from accounts.models import User
from affiliates.models import Attribution, Partner, ReferralLink
from affiliates.services import application_fee_amount
from billing.models import CheckoutAttempt, StripeAccount
from billing.tasks import sync_offer_to_stripe
from memberships.models import Offer
from tests.affiliates.conftest import resell_offer

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _oauth(client: Client, start_url: str, user: User, sandbox: Any, **authorize: Any) -> None:
    client.force_login(user)
    start = client.post(start_url)
    client.get(_path(sandbox.authorize_oauth(start["Location"], **authorize)), follow=True)
    client.logout()


@pytest.fixture
def world(owner, partner_user, stripe_sandbox) -> dict[str, Any]:
    """The creator's account and the partner's, both connected through the sandbox; a resell
    offer synced to the creator's account; the partner's link to it."""
    client = Client()
    _oauth(client, "/dashboard/settings/integrations/stripe/connect/", owner, stripe_sandbox)
    _oauth(client, "/partners/stripe/connect/", partner_user, stripe_sandbox, email="pat@example.com")
    return {"creator": StripeAccount.objects.creator().get(), "sandbox": stripe_sandbox}


def _offer(*, recurring: bool = False, amount: int = 2500, percent: int = 20, slug: str = "inner-circle") -> Offer:
    offer = resell_offer(recurring=recurring, amount=amount, percent=percent, slug=slug, title=slug.title())
    offer.stripe_price.delete()  # made up by the factory: sync the real one to the sandbox
    sync_offer_to_stripe.apply(args=[offer.pk])
    offer.refresh_from_db()
    assert offer.stripe_price.price_id.startswith("price_")
    return offer


def _join(partner_user: User, offer: Offer) -> ReferralLink:
    client = Client()
    client.force_login(partner_user)
    assert client.post(f"/partners/offers/{offer.pk}/join/").status_code == 302
    return ReferralLink.objects.get(partner__user=partner_user, offer=offer)


def _buy(buyer: Client, offer: Offer, email: str = "bea@example.com") -> CheckoutAttempt:
    response = buyer.post(f"/offers/{offer.slug}/checkout/pay/", {"email": email, "full_name": "Bea Buyer"})
    assert response.status_code == 302, response.content.decode()[:2000]
    return CheckoutAttempt.objects.filter(email__iexact=email).latest("created_at")


def _session(world: dict[str, Any], attempt: CheckoutAttempt) -> Any:
    return (
        world["sandbox"]
        .client()
        .v1.checkout.sessions.retrieve(
            attempt.stripe_session_id, options={"stripe_account": world["creator"].account_id}
        )
    )


def test_a_referred_one_time_sale_carries_the_fee_and_the_code(world, partner_user) -> None:
    offer = _offer(amount=1999, percent=15)
    link = _join(partner_user, offer)
    buyer = Client()
    buyer.get(f"/offers/{offer.slug}/?ref={link.code}")
    attempt = _buy(buyer, offer)
    attribution = Attribution.objects.get(attempt=attempt)
    assert attribution.link == link
    assert attribution.commission_percent == 15
    session = _session(world, attempt)
    assert session.metadata["referral"] == link.code
    assert world["sandbox"].pay_checkout(attempt.stripe_session_id, email="bea@example.com").paid
    session = _session(world, attempt)
    intent = (
        world["sandbox"]
        .client()
        .v1.payment_intents.retrieve(session.payment_intent, options={"stripe_account": world["creator"].account_id})
    )
    # 15% of 19.99 is 2.9985: 3.00, rounded half up to the cent.
    assert intent.application_fee_amount == 300
    assert intent.metadata["referral"] == link.code


def test_a_referred_subscription_carries_the_fee_percent(world, partner_user) -> None:
    offer = _offer(recurring=True, amount=2500, percent=30)
    link = _join(partner_user, offer)
    buyer = Client()
    buyer.get(f"/offers/{offer.slug}/?ref={link.code}")
    attempt = _buy(buyer, offer)
    assert world["sandbox"].pay_checkout(attempt.stripe_session_id, email="bea@example.com").paid
    session = _session(world, attempt)
    assert session.metadata["referral"] == link.code
    subscription = (
        world["sandbox"]
        .client()
        .v1.subscriptions.retrieve(session.subscription, options={"stripe_account": world["creator"].account_id})
    )
    assert subscription.application_fee_percent == 30
    assert subscription.metadata["referral"] == link.code


def test_a_checkout_without_a_referral_has_no_fee(world, partner_user) -> None:
    offer = _offer()
    attempt = _buy(Client(), offer)
    assert not Attribution.objects.exists()
    assert "referral" not in _session(world, attempt).metadata
    assert world["sandbox"].pay_checkout(attempt.stripe_session_id).paid
    session = _session(world, attempt)
    intent = (
        world["sandbox"]
        .client()
        .v1.payment_intents.retrieve(session.payment_intent, options={"stripe_account": world["creator"].account_id})
    )
    assert intent.application_fee_amount is None


def test_the_partner_buying_through_their_own_link_earns_nothing(world, partner_user) -> None:
    offer = _offer()
    link = _join(partner_user, offer)
    own = Client()
    own.force_login(partner_user)
    own.get(f"/offers/{offer.slug}/?ref={link.code}")
    attempt = _buy(own, offer, email="someone-else@example.com")  # logged in as the partner
    assert not Attribution.objects.filter(attempt=attempt).exists()
    stranger = Client()
    stranger.get(f"/offers/{offer.slug}/?ref={link.code}")
    attempt = _buy(stranger, offer, email="PAT@example.com")  # the partner's address, logged out
    assert not Attribution.objects.filter(attempt=attempt).exists()
    assert "referral" not in _session(world, attempt).metadata


@pytest.mark.parametrize("status", [Partner.Status.PAUSED, Partner.Status.REMOVED])
def test_pausing_or_removing_a_partner_stops_attribution_at_once(world, partner_user, owner, status) -> None:
    offer = _offer()
    link = _join(partner_user, offer)
    buyer = Client()
    buyer.get(f"/offers/{offer.slug}/?ref={link.code}")  # the cookie is set before the creator acts
    creator = Client()
    creator.force_login(owner)
    action = {"paused": "pause", "removed": "remove"}[status]
    creator.post(f"/dashboard/affiliates/partners/{link.partner_id}/status/", {"action": action, "confirm": "yes"})
    assert Partner.objects.get(pk=link.partner_id).status == status
    attempt = _buy(buyer, offer)
    assert not Attribution.objects.exists()
    assert "referral" not in _session(world, attempt).metadata


def test_a_link_for_another_offer_does_not_attribute(world, partner_user) -> None:
    first, second = _offer(slug="first"), _offer(slug="second")
    link = _join(partner_user, first)
    buyer = Client()
    buyer.get(f"/offers/{first.slug}/?ref={link.code}")
    attempt = _buy(buyer, second)
    assert not Attribution.objects.filter(attempt=attempt).exists()


def test_resell_rights_turned_off_stop_attribution(world, partner_user) -> None:
    offer = _offer()
    link = _join(partner_user, offer)
    buyer = Client()
    buyer.get(f"/offers/{offer.slug}/?ref={link.code}")
    Offer.objects.filter(pk=offer.pk).update(resell_enabled=False, resell_commission_percent=None)
    _buy(buyer, offer)
    assert not Attribution.objects.exists()


def test_a_partner_whose_stripe_account_is_disconnected_attributes_nothing_new(world, partner_user) -> None:
    offer = _offer()
    link = _join(partner_user, offer)
    buyer = Client()
    buyer.get(f"/offers/{offer.slug}/?ref={link.code}")
    StripeAccount.objects.partner_of(partner_user.pk).update(disconnected_at="2026-01-01T00:00:00Z")
    _buy(buyer, offer)
    assert not Attribution.objects.exists()


def test_the_percent_is_fixed_at_the_sale(world, partner_user) -> None:
    offer = _offer(percent=20)
    link = _join(partner_user, offer)
    buyer = Client()
    buyer.get(f"/offers/{offer.slug}/?ref={link.code}")
    attempt = _buy(buyer, offer)
    Offer.objects.filter(pk=offer.pk).update(resell_commission_percent=50)
    assert Attribution.objects.get(attempt=attempt).commission_percent == 20


@pytest.mark.parametrize(
    ("amount", "percent", "fee"),
    [
        (1999, 15, 300),  # 299.85
        (1990, 15, 299),  # 298.5: half up
        (1010, 5, 51),  # 50.5: half up
        (1009, 5, 50),  # 50.45
        (50, 1, 1),  # 0.5: half up
        (149, 1, 1),  # 1.49
        (5000, 20, 1000),  # exact
        (9999, 90, 8999),  # 8999.1
    ],
)
def test_the_one_time_fee_rounds_half_up_to_the_cent(amount, percent, fee) -> None:
    assert application_fee_amount(amount=amount, percent=percent) == fee
