"""A test purchase in a real browser, against the sandbox: the creator makes a test link for a
$0.50 draft, opens it in a private window (a browser context of its own), pays with 4242, and
watches the six steps of the checklist turn green without reloading the page; with the wrong
webhook signing secret, step 3 says so and what to fix.

Webhooks reach the live server and are processed on the ``celery_worker`` (a real worker on
Redis in CI's second pass). With SQLite the live server's threads share one database
connection, so the sandbox is pointed at the site only once the test's own writes are done.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from billing.models import Payment, StripeAccount, WebhookEvent, WebhookRefusal
from billing.tasks import sync_offer_to_stripe
from memberships.models import Entitlement, Offer
from tests import factories
from tests.billing.test_stripe_flows import _connect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STEPS = [
    "Checkout Session created",
    "Payment received",
    "Webhook received and its signature verified",
    "Access granted",
    "Confirmation email sent",
    "Funds recorded on your Stripe account",
]


@pytest.fixture
def draft(client: Client, owner: User, stripe_sandbox: Any) -> Offer:
    """A $0.50 draft with custom code, its price on the creator's connected sandbox account."""
    _connect(client, owner, stripe_sandbox, business_name="Olive's Yoga")
    client.logout()
    assert StripeAccount.objects.connected().get().charges_enabled
    group = factories.group("Inner Circle")
    offer = factories.offer(
        "Half Dollar Club",
        groups=[group],
        status=Offer.Status.DRAFT,
        pricing=Offer.Pricing.ONE_TIME,
        price_amount=50,
        currency="usd",
        custom_code='<p id="pixel">Pixel loaded</p>',
    )
    sync_offer_to_stripe.apply(args=[offer.pk])
    return offer


def _fill_card(page: Any, number: str = "4242 4242 4242 4242") -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill("Test Buyer")


def _make_test_link(page: Any, offer: Offer) -> str:
    """From the offer's editor: Test purchase, the suggested plus-address, the link."""
    page.goto(f"/dashboard/offers/{offer.pk}/")
    page.get_by_role("link", name="Test purchase").click()
    assert page.get_by_label("Test buyer's email").input_value() == "owner+test1@example.com"
    page.get_by_role("button", name="Make a test link").click()
    page.wait_for_url(re.compile(r"/dashboard/test-purchases/\d+/$"))
    assert page.get_by_text("Open this link in a private window").is_visible()
    link = page.locator("#test-link").inner_text().strip()
    assert "/checkout/test/" in link
    return link


def _step(page: Any, number: int) -> Any:
    return page.locator(f"#checklist-steps li[data-step='{number}']")


def _after_deliveries(route: Any, stripe_sandbox: Any) -> None:
    """Let a request through (if any) once Stripe's webhooks are delivered and processed."""
    stripe_sandbox.wait_for_deliveries()
    for _ in range(200):
        if not WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).exists():
            break
        time.sleep(0.05)
    if route is not None:
        route.continue_()


def _pay_in_a_private_window(new_page: Any, link: str, stripe_sandbox: Any) -> Any:
    buyer = new_page()
    # With SQLite the live server shares one connection: the login waits for the webhooks.
    buyer.route("**/complete/", lambda route: _after_deliveries(route, stripe_sandbox))
    buyer.goto(link)
    assert buyer.get_by_text("Test purchase: this is the checkout your buyers see").is_visible()
    assert buyer.get_by_role("heading", name="Half Dollar Club").is_visible()
    assert buyer.get_by_label("Email address").input_value() == "owner+test1@example.com"
    frame = buyer.frame_locator("iframe[data-custom-code]")
    frame.locator("#pixel").wait_for()  # the offer's custom code runs there, as for a buyer
    buyer.get_by_label("Your name").fill("Test Buyer")
    buyer.get_by_role("button", name=re.compile(r"^Continue to payment")).click()
    buyer.wait_for_url(f"{stripe_sandbox.url}/**")
    assert buyer.get_by_text("$0.50").first.is_visible()
    _fill_card(buyer)
    buyer.get_by_role("button", name="Pay", exact=True).click()
    return buyer


def test_a_creator_runs_a_test_purchase_and_sees_all_six_steps_turn_green(
    page, new_page, log_in, owner, draft, stripe_sandbox, live_server, celery_worker
) -> None:
    log_in(page, owner)
    link = _make_test_link(page, draft)
    assert [_step(page, n).locator("[data-part=title]").inner_text() for n in range(1, 7)] == STEPS
    assert page.locator("#checklist-steps").get_attribute("aria-live") == "polite"
    assert page.locator("#checklist-steps .badge").all_inner_texts() == ["Waiting"] * 6
    page.evaluate("window.notReloaded = true")

    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    buyer = _pay_in_a_private_window(new_page, link, stripe_sandbox)
    buyer.wait_for_url("**/community/inner-circle/", timeout=30_000)  # in, as a buyer
    assert buyer.get_by_text("owner+test1@example.com").is_visible()

    # The creator's page updates itself: every step turns green, the page never reloads.
    page.locator("#checklist-steps li.step-done").nth(5).wait_for(timeout=30_000)
    assert page.locator("#checklist-steps .badge").all_inner_texts() == ["Done"] * 6
    assert page.evaluate("window.notReloaded") is True
    assert "Stripe took $0.50 from the card ending 4242" in _step(page, 2).inner_text()
    assert "checkout.session.completed" in _step(page, 3).inner_text()
    funds = _step(page, 6).inner_text()
    assert "Charge $0.50 · Stripe's fee $0.31 · net $0.19" in funds
    assert page.get_by_text("Everything works").is_visible()

    # The email, as the test buyer got it.
    _step(page, 5).get_by_role("link", name="View the email").click()
    # The click starts the navigation; the email is read once its page has loaded.
    page.get_by_text("You're in: Half Dollar Club").wait_for()
    assert page.get_by_text("owner+test1@example.com").first.is_visible()
    page.go_back()

    # Refund and hide: out of the sales, access gone, the row kept as a test. (The browser is
    # sent on once the refund's webhook is handled: with SQLite the live server shares one connection.)
    def refund_then_wait(route: Any) -> None:
        answer = route.fetch(max_redirects=0)
        stripe_sandbox.wait_for_deliveries(1, type="charge.refunded")
        _after_deliveries(None, stripe_sandbox)
        route.fulfill(response=answer)

    page.route("**/close/", refund_then_wait)
    # The refund's events wait a moment, so that they are not handled while the request that
    # refunds is still running its task (in-process tasks of two threads would overlap).
    stripe_sandbox.set_delivery(delay_ms=1000)
    page.get_by_role("button", name="Refund and hide").click()
    page.get_by_text("The test purchase is hidden from your sales").wait_for()
    payment = Payment.objects.get()
    assert payment.is_test
    assert payment.hidden_at is not None
    tester = User.objects.get(email="owner+test1@example.com")
    assert Entitlement.objects.get(user=tester).status == Entitlement.Status.REFUNDED
    assert celery_worker.wait_for(1)  # the confirmation went out through the worker
    [refund] = stripe_sandbox.wait_for_deliveries(1, type="charge.refunded")
    assert refund["status"] == 200  # Stripe refunded the test payment, and told the site


def test_a_wrong_webhook_secret_fails_step_3_with_its_fix(
    page, new_page, log_in, owner, draft, stripe_sandbox, live_server, celery_worker, settings
) -> None:
    settings.STRIPE_WEBHOOK_SECRET = "whsec_not_the_endpoints_secret"  # the live server's
    log_in(page, owner)
    link = _make_test_link(page, draft)

    stripe_sandbox.set_retry_delays([0.2, 0.5])  # Stripe retries refused deliveries; here quickly
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    buyer = _pay_in_a_private_window(new_page, link, stripe_sandbox)
    buyer.wait_for_url("**/return/**")

    step = _step(page, 3)
    step.locator(".badge", has_text="Needs attention").wait_for(timeout=30_000)
    text = step.inner_text()
    assert "the signature does not match" in text
    assert "Stripe is sending, but the signature does not match" in text
    assert "STRIPE_WEBHOOK_SECRET" in text
    assert _step(page, 1).locator(".badge").inner_text() == "Done"
    _step(page, 2).locator(".badge", has_text="Done").wait_for()  # Stripe, asked, says it is paid
    assert page.get_by_text("Something needs your attention").is_visible()
    refused = stripe_sandbox.wait_for_deliveries(type="checkout.session.completed", timeout=30)
    assert {delivery["status"] for delivery in refused} == {400}  # each try, refused
    assert WebhookRefusal.objects.filter(reason=WebhookRefusal.Reason.MISMATCH).exists()
    assert not Payment.objects.exists()
