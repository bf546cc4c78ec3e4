"""A partner's commission, in a real browser: a member connects their Stripe account on the
sandbox's Connect page, joins the program on Become a Partner and copies their link; a buyer in
another browser follows it and pays on the sandbox's hosted checkout; once the hold is over the
payout job transfers the commission, and the partner's page shows it paid.

Webhooks reach the live server, processed on the ``celery_worker`` (a real worker on Redis in
CI's second pass); every click that makes Stripe send events is followed by waiting until they
are dealt with, since with SQLite the live server's threads share one database connection.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.utils import dateformat, timezone

from accounts.models import User
from affiliates.models import Commission, ReferralLink
from billing.models import StripeAccount, WebhookEvent
from billing.tasks import sync_offer_to_stripe
from tests.affiliates import commission_helpers as c
from tests.affiliates.conftest import resell_offer
from tests.billing import lifecycle_helpers as h

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _fill_card(page: Any, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill("Bea Buyer")


def _day(moment: Any) -> str:
    return dateformat.format(timezone.localtime(moment), "M j, Y")


def test_a_partner_shares_their_link_and_is_paid_the_commission_after_the_hold(
    page, new_page, log_in, owner: User, partner_user: User, stripe_sandbox, live_server, celery_worker
) -> None:
    # The creator's account is connected and sells a $25.00 offer with a 20% partner program.
    c.oauth("/dashboard/settings/integrations/stripe/connect/", owner, stripe_sandbox)
    offer = resell_offer(amount=2500, percent=20, slug="inner-circle", title="Inner Circle")
    offer.stripe_price.delete()  # made up by the factory: sync the real one to the sandbox
    sync_offer_to_stripe.apply(args=[offer.pk])

    # The member (their email proven) connects a new Stripe account from Become a Partner.
    log_in(page, partner_user)
    page.goto("/partners/")
    page.get_by_role("button", name="Connect Stripe").click()
    page.wait_for_url(f"{stripe_sandbox.url}/oauth/authorize?**")
    page.get_by_label("Create a new account").check()
    page.get_by_label("Business name").fill("Pat's Picks")
    page.get_by_label("Account email").fill(partner_user.email)
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_url("**/partners/")
    account = StripeAccount.objects.partner_of(partner_user.pk).get()
    assert account.payouts_enabled
    assert page.get_by_text(f"Your Stripe account {account.account_id} is connected.").is_visible()

    # They join the program and copy their link.
    page.get_by_role("button", name="Join this program").click()
    page.get_by_text("You joined the partner program of Inner Circle. Share your link below.").wait_for()
    link = ReferralLink.objects.get(partner__user=partner_user, offer=offer)
    shown = page.locator(f"#ref-link-{link.pk}").inner_text().strip()
    assert shown == f"{live_server.url}/offers/inner-circle/?ref={link.code}"
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == shown

    # Stripe's webhooks reach the site from now on: the setup's own events go out first.
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    h.settle(stripe_sandbox)

    # A buyer in a fresh browser follows the link and pays on Stripe's hosted page.
    buyer_page = new_page()
    buyer_page.goto(shown)
    buyer_page.wait_for_url("**/offers/inner-circle/checkout/")
    buyer_page.get_by_label("Your name").fill("Bea Buyer")
    buyer_page.get_by_label("Email address").fill(c.BUYER)
    with h.deliveries_held(stripe_sandbox, ms=2000):  # the checkout's writes go first
        buyer_page.get_by_role("button", name=re.compile(r"^Continue to payment")).click()
        buyer_page.wait_for_url(f"{stripe_sandbox.url}/**")
    assert buyer_page.get_by_text("$25.00").first.is_visible()

    def after_deliveries(route: Any) -> None:
        stripe_sandbox.wait_for_deliveries()
        for _ in range(200):
            if not WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).exists():
                break
            time.sleep(0.05)
        route.continue_()

    buyer_page.route("**/complete/", after_deliveries)
    _fill_card(buyer_page, "4242 4242 4242 4242")
    buyer_page.get_by_role("button", name="Pay", exact=True).click()
    buyer_page.get_by_text("Welcome! You now have access to Inner Circle.").wait_for(timeout=30_000)
    h.settle(stripe_sandbox)

    # The sale earned the partner the fee Stripe took, 20% of $25.00, held for 14 days.
    commission = Commission.objects.get()
    assert (commission.partner.user, commission.amount, commission.currency) == (partner_user, 500, "usd")
    assert commission.payment.application_fee_amount == 500
    page.reload()
    recent = page.get_by_role("table", name="Recent commissions")
    assert recent.get_by_text(f"Pending until {_day(commission.hold_until)}").is_visible()
    assert page.get_by_text(f"Next payout: {_day(commission.hold_until)}.").is_visible()
    world = c.World(stripe_sandbox, StripeAccount.objects.creator().get(), partner_user, offer, link)
    assert c.transfers(world) == []

    # The hold is over: the payout job transfers it to the partner's account.
    assert c.pay_due(world) == 1
    h.settle(stripe_sandbox)
    commission.refresh_from_db()
    [transfer] = c.transfers(world)
    assert (transfer["amount"], transfer["currency"], transfer["destination"]) == (500, "usd", account.account_id)
    assert commission.transfer_id == transfer["id"]

    page.reload()
    recent = page.get_by_role("table", name="Recent commissions")
    assert recent.get_by_role("cell", name="Paid", exact=True).is_visible()
    assert not recent.get_by_text("Pending until").count()
    per_link = page.get_by_role("table", name="Commissions per link")
    assert per_link.get_by_role("row", name="Inner Circle 1 1 $0.00 $5.00 $0.00").is_visible()
    assert page.get_by_text("No payout is due.").is_visible()
