"""Billing's panels on lower layers' pages (``core.composition``), registered in ``BillingConfig.ready``."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse

from accounts.models import User
from billing import selectors
from core.composition import Panel
from hubs.models import HubGroup
from memberships.models import Offer


def getting_started(*, request: HttpRequest) -> Panel:
    """The dashboard Overview's first step: paid offers need a connected Stripe account."""
    return Panel("billing/panels/getting_started.html", {"done": selectors.stripe_connected()})


def getting_started_test_purchase(*, request: HttpRequest) -> Panel:
    """The Overview's last step: a test purchase, done once one has been paid."""
    return Panel("billing/panels/getting_started_test_purchase.html", {"done": selectors.checkout_test_paid()})


def offer_test_purchase(*, request: HttpRequest, offer: Offer) -> Panel | None:
    """The offer editor's *Test purchase* button, on every paid offer, drafts included (a free
    offer takes no payment to test)."""
    if offer.is_free:
        return None
    return Panel("billing/panels/offer_test_purchase.html", {"offer": offer})


def user_memberships(*, request: HttpRequest, person: User) -> Panel | None:
    """A user's page's "Memberships": each one's status, payments and history, with the
    creator's Refund and Cancel buttons."""
    memberships = selectors.memberships_for(user=person)
    if not memberships:
        return None
    return Panel("billing/panels/user_memberships.html", {"memberships": memberships})


def member_home_memberships(*, request: HttpRequest) -> Panel:
    """The member home's link to *My memberships* (receipts, card, cancelling)."""
    return Panel("billing/panels/member_home_memberships.html")


def paywall_buy_now(request: HttpRequest, offer: Offer, group: HubGroup) -> str | None:
    """A popup upsell's *Buy now* for a member who paid here before (``memberships.hooks``):
    the one-click page, which asks Stripe for their saved card."""
    user = request.user
    if offer.is_free or not isinstance(user, User) or not selectors.card_on_file_likely(user=user):
        return None
    return reverse("billing:one_click", kwargs={"slug": offer.slug}) + "?" + urlencode({"group": group.slug})
