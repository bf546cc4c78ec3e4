"""A one-click purchase in a real browser: a member who bought Inner Circle through Checkout
(which saved the card) logs in with the link of its confirmation email, meets the VIP group's
paywall, opens the popup, buys the upsell with Buy now, confirms on the next page and is in the
group at once. Webhooks reach the live server, processed on the ``celery_worker`` (a real worker
on Redis in CI's second pass); the click that charges the card runs with them held, since with
SQLite the live server's threads share one database connection."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import expect

from accounts.models import User
from billing.models import Payment, StripeAccount
from memberships.models import Entitlement
from tests.billing import lifecycle_helpers as h
from tests.billing.test_lifecycle_browser import _log_in_from_the_confirmation
from tests.billing.test_one_click import VIP_CONFIRMATION, VIP_PAGE, setting_up
from tests.billing.test_stripe_flows import _connect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def connected(client: Client, owner: User, stripe_sandbox: Any) -> StripeAccount:
    _connect(client, owner, stripe_sandbox)
    client.logout()
    return StripeAccount.objects.connected().get()


def test_a_member_buys_the_upsell_from_the_popup_in_one_click(
    page, client: Client, connected, stripe_sandbox, live_server, celery_worker
) -> None:
    setting_up(stripe_sandbox, live_server)
    buyer = h.buy(client, stripe_sandbox).buyer
    _log_in_from_the_confirmation(page, celery_worker)

    response = page.goto(VIP_PAGE)
    assert response is not None
    assert response.status == 403
    page.get_by_role("button", name="Join the VIP Room").click()
    popup = page.get_by_role("dialog", name="VIP Room")
    expect(popup).to_be_visible()
    expect(popup.get_by_text("$15.00")).to_be_visible()
    expect(popup.get_by_text("Monthly calls with the team.")).to_be_visible()
    popup.get_by_role("link", name="Buy now").click()

    page.wait_for_url("**/offers/vip-room/buy-now/?group=vip")
    expect(page.get_by_text("Your saved card, Visa •••• 4242")).to_be_visible()
    with h.deliveries_held(stripe_sandbox, ms=4000):
        page.get_by_role("button", name="Confirm and pay $15.00").click()
        page.wait_for_url(f"**{VIP_PAGE}")
        expect(page.get_by_text("You now have access to VIP Room.")).to_be_visible()
        expect(page.get_by_role("heading", name="VIP")).to_be_visible()
    assert not page.get_by_text("This hub group is for members only").count()

    h.settle(stripe_sandbox)
    [payment] = Payment.objects.filter(offer__slug="vip-room")
    assert (payment.user, payment.amount, payment.card_last4) == (buyer, 1500, "4242")
    assert Entitlement.objects.get(user=buyer, offer__slug="vip-room").status == Entitlement.Status.ACTIVE
    h.pause()
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, VIP_CONFIRMATION])
