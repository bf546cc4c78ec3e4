"""The checkout page of an offer without a landing page, in a real browser: what the offer is,
what it includes and its terms; Stripe's Back link returning with what the buyer typed (only in
their browser); and a buyer who has the offer already, told so before filling anything in."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import User
from billing.tasks import sync_offer_to_stripe
from memberships.models import Entitlement, Offer
from tests import factories
from tests.billing.test_stripe_flows import _connect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def offer(client: Client, owner: User, stripe_sandbox) -> Offer:
    """A $29 monthly membership on the creator's account connected in the sandbox, selling a
    private group and a hidden one."""
    _connect(client, owner, stripe_sandbox)
    client.logout()
    members = factories.group("Members")
    members.description = "The weekly threads and the live sessions."
    members.save()
    made = factories.offer(
        title="Yoga Club",
        groups=[members, factories.group("Staff Room", permission="hidden")],
        pricing=Offer.Pricing.RECURRING,
        price_amount=2900,
        interval=Offer.Interval.MONTH,
        description="Morning classes for every level.",
    )
    sync_offer_to_stripe.apply(args=[made.pk])
    return made


def test_the_checkout_page_says_what_the_buyer_gets_and_back_from_stripe_keeps_their_details(
    page, new_page, offer: Offer, stripe_sandbox
) -> None:
    page.goto(f"/offers/{offer.slug}/")
    page.wait_for_url(f"**/offers/{offer.slug}/checkout/")
    assert page.get_by_role("heading", name="Yoga Club").is_visible()
    assert page.get_by_text("Morning classes for every level.").is_visible()
    assert page.get_by_role("heading", name="What's included").is_visible()
    assert page.get_by_text("Members", exact=True).is_visible()
    assert page.get_by_text("The weekly threads and the live sessions.").is_visible()
    assert page.get_by_text("Staff Room").count() == 0
    assert page.get_by_text("$29.00 every month, cancel any time").is_visible()

    page.get_by_label("Your name").fill("Bea Buyer")
    page.get_by_label("Email address").fill("bea@example.com")
    page.get_by_role("button", name=re.compile(r"^Continue to payment")).click()
    page.wait_for_url(f"{stripe_sandbox.url}/**")
    back = page.get_by_role("link", name=re.compile(r"Back to"))
    cancel_url = back.get_attribute("href")
    assert cancel_url
    back.click()

    page.wait_for_url(f"**/offers/{offer.slug}/checkout/")
    assert page.get_by_text("Checkout was canceled and nothing was charged.").is_visible()
    assert page.get_by_label("Your name").input_value() == "Bea Buyer"
    assert page.get_by_label("Email address").input_value() == "bea@example.com"

    # The same link opened in another browser shows an empty form.
    stranger = new_page()
    stranger.goto(cancel_url)
    stranger.wait_for_url(f"**/offers/{offer.slug}/checkout/")
    assert stranger.get_by_label("Your name").input_value() == ""
    assert stranger.get_by_label("Email address").input_value() == ""


def test_a_logged_in_buyer_with_access_is_shown_the_way_in_instead_of_the_form(
    page, log_in, member: User, offer: Offer
) -> None:
    Entitlement.objects.create(user=member, offer=offer, source=Entitlement.Source.SUBSCRIPTION)
    log_in(page, member)
    page.goto(f"/offers/{offer.slug}/")
    assert page.get_by_role("heading", name="You already have access").is_visible()
    assert page.get_by_label("Email address").count() == 0
    page.get_by_role("link", name="Go to the community").click()
    page.wait_for_url("**/community/members/")
