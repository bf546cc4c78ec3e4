"""The whole paid path in a real browser: a creator connects Stripe and publishes a $0.50
recurring membership; a buyer is declined once, then pays on the sandbox's hosted page and
lands in the community, logged in."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from accounts.models import User
from billing.models import StripeAccount, WebhookEvent
from hubs.models import HubGroup
from hubs.selectors import accessible_group_ids
from memberships.models import Entitlement, Offer
from tests import factories
from tests.conftest import body_text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _fill_card(page: Any, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill("Bea Buyer")


def test_a_creator_sells_a_recurring_membership_and_a_buyer_pays_with_a_card(
    page, new_page, log_in, owner: User, stripe_sandbox, live_server, celery_worker, settings, tmp_path
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    group = HubGroup.objects.create(name="Inner Circle", slug="inner-circle", permission="private")

    # The creator connects Stripe from Settings > Integrations.
    log_in(page, owner)
    page.get_by_label("Dashboard").get_by_role("link", name="Integrations").click()
    page.get_by_role("button", name="Connect").click()
    page.wait_for_url(f"{stripe_sandbox.url}/oauth/authorize?**")
    page.get_by_label("Create a new account").check()
    page.get_by_label("Business name").fill("Olive's Yoga")
    page.get_by_label("Account email").fill("olive@example.com")
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_url("**/dashboard/settings/integrations/")
    account = StripeAccount.objects.connected().get()
    assert page.get_by_text(f"Stripe account {account.account_id} is connected").is_visible()
    assert page.get_by_role("button", name="Disconnect").is_visible()

    # A $0.50 monthly membership, published.
    page.get_by_label("Dashboard").get_by_role("link", name="Digital Offers").click()
    page.get_by_role("link", name="New offer").click()
    page.get_by_role("link", name=re.compile(r"^Membership")).click()
    page.get_by_label("Title").fill("Half Dollar Club")
    page.get_by_label("Recurring Payment").check()
    page.locator("#id_price").fill("0.50")
    page.get_by_label("Billing interval").select_option("month")
    page.get_by_label("Inner Circle").check()
    page.set_input_files(
        "#id_thumbnail",
        files=[{"name": "thumb.png", "mimeType": "image/png", "buffer": factories.image_bytes(size=(800, 800))}],
    )
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("“Half Dollar Club” is saved as a draft.").wait_for()
    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_text("“Half Dollar Club” is published.").wait_for()
    offer = Offer.objects.get(title="Half Dollar Club")
    assert (offer.price_amount, offer.currency, offer.interval) == (50, "usd", "month")

    # A buyer in a fresh browser goes to checkout and on to Stripe's hosted page.
    buyer_page = new_page()
    buyer_page.goto(f"/offers/{offer.slug}/checkout/")
    buyer_page.get_by_label("Your name").fill("Bea Buyer")
    buyer_page.get_by_label("Email address").fill("bea@example.com")
    buyer_page.get_by_role("button", name=re.compile(r"^Continue to payment")).click()
    buyer_page.wait_for_url(f"{stripe_sandbox.url}/**")
    assert buyer_page.get_by_text("$0.50").first.is_visible()
    assert buyer_page.get_by_label("Email").input_value() == "bea@example.com"

    # A card that is declined says so, in Stripe's words, and grants nothing.
    _fill_card(buyer_page, "4000 0000 0000 0002")
    buyer_page.get_by_role("button", name="Subscribe").click()
    # The click submits the form; the answer is read once its page has loaded.
    buyer_page.get_by_role("alert").filter(has_text="Your card was declined.").wait_for()
    assert not Entitlement.objects.exists()

    # Stripe's webhooks reach the site from now on. With SQLite the live server's threads
    # share one connection, so the return's login waits until the deliveries are handled.
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")

    def after_deliveries(route: Any) -> None:
        stripe_sandbox.wait_for_deliveries()
        for _ in range(200):
            if not WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).exists():
                break
            time.sleep(0.05)
        route.continue_()

    buyer_page.route("**/complete/", after_deliveries)
    _fill_card(buyer_page, "4242 4242 4242 4242")
    buyer_page.get_by_role("button", name="Subscribe").click()

    # Back on the site: the page waits for the payment, then the buyer is in.
    buyer_page.wait_for_url("**/community/inner-circle/", timeout=30_000)
    assert buyer_page.get_by_text("Welcome! You now have access to Half Dollar Club.").is_visible()
    assert buyer_page.get_by_text("bea@example.com").is_visible()  # logged in

    buyer = User.objects.get(email="bea@example.com")
    entitlement = Entitlement.objects.get(user=buyer, offer=offer)
    assert entitlement.status == Entitlement.Status.ACTIVE
    assert entitlement.access_until is not None
    assert group.pk in accessible_group_ids(user=buyer)
    [message] = celery_worker.wait_for(1)
    assert message["To"] == "bea@example.com"
    assert "Half Dollar Club" in message["Subject"]
    text = body_text(message)
    assert "Bea Buyer" in text
    assert "/accounts/login-link/" in text  # a login link, so the buyer can come back and set a password
