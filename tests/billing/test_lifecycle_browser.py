"""A membership's end, in a real browser: a buyer cancels from My memberships on Stripe's billing
page and keeps access until the period ends, when moving the sandbox's clock past it removes
the access; a creator refunds a one-time purchase from the buyer's page on the Users screen and
the buyer loses access.

Purchases go through the sandbox's API (the browser's checkout has its own test); the buyer
logs in with the link in the confirmation email. Webhooks reach the live server, processed on
the ``celery_worker`` (a real worker on Redis in CI's second pass); every click that makes
Stripe send events is followed by waiting until they are dealt with, since with SQLite the
live server's threads share one database connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.utils import dateformat, timezone

from accounts.models import User
from billing.models import StripeAccount
from memberships.models import Entitlement
from tests.billing import lifecycle_helpers as h
from tests.billing.test_stripe_flows import _connect
from tests.conftest import body_text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOGIN_LINK = re.compile(r"https?://\S+?(/accounts/login-link/[^/\s]+/)")


@pytest.fixture
def connected(client: Client, owner: User, stripe_sandbox: Any) -> StripeAccount:
    _connect(client, owner, stripe_sandbox)
    client.logout()
    return StripeAccount.objects.connected().get()


def _day(moment: datetime) -> str:
    """A date as the pages show it."""
    return dateformat.format(timezone.localtime(moment), "M j, Y")


def _log_in_from_the_confirmation(page: Any, celery_worker: Any) -> None:
    """The buyer opens the login link of the purchase's confirmation email and logs in."""
    [confirmation] = [m for m in celery_worker.wait_for(1) if m["Subject"] == h.CONFIRMATION]
    found = LOGIN_LINK.search(body_text(confirmation))
    assert found, "the confirmation email has no login link"
    page.goto(found.group(1))  # the path: the real worker builds links from its own SITE_URL
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login-link/" not in urlsplit(url).path)
    assert page.get_by_text(h.BUYER).is_visible()


def _shows_the_group(page: Any) -> None:
    response = page.goto(h.GROUP_PAGE)
    assert response.status == 200
    assert page.get_by_role("heading", name="Members").is_visible()
    assert page.get_by_text(h.BUYER).is_visible()  # logged in
    assert not page.get_by_text("This hub group is for members only").count()


def _shows_the_paywall(page: Any) -> None:
    response = page.goto(h.GROUP_PAGE)
    assert response.status == 403
    assert page.get_by_text("This hub group is for members only").is_visible()
    assert page.get_by_text(h.BUYER).is_visible()  # logged in: not a paywall for a stranger
    assert page.get_by_role("button", name="Log out").is_visible()


def _membership(page: Any) -> Any:
    return page.get_by_role("region", name=h.TITLE)


def _logged_in_as(browser_page: Callable[[], Any], live_server: Any, user: User) -> Any:
    """A fresh browser holding a session made now (under a moved clock, a session of its own
    time: a jump past two weeks outlives the earlier one)."""
    user.refresh_from_db()
    client = Client()
    client.force_login(user)
    page = browser_page()
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return page


def test_a_buyer_cancels_from_my_memberships_and_keeps_access_until_the_period_ends(
    client: Client, connected, page, new_page, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer(recurring=True)
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    h.settle(stripe_sandbox)  # the setup's own events go out before the purchase writes
    purchase = h.buy(client, stripe_sandbox)
    _, period_end = h.period(stripe_sandbox, purchase.subscription_id)

    # From the member home to My memberships, and on to Stripe's billing page.
    _log_in_from_the_confirmation(page, celery_worker)
    page.get_by_role("link", name="Home", exact=True).click()
    page.get_by_role("link", name="Open My memberships").click()
    page.wait_for_url("**/account/memberships/")
    membership = _membership(page)
    assert membership.get_by_text("Active", exact=True).is_visible()
    assert membership.get_by_text(f"Renews on {_day(period_end)}").is_visible()
    with h.deliveries_held(stripe_sandbox):  # the first visit makes the account's portal configuration
        membership.get_by_role("link", name="Cancel", exact=True).click()
        page.wait_for_url(f"{stripe_sandbox.url}/p/session/**")
    h.settle(stripe_sandbox)

    # Cancel at the period's end on Stripe's page, then back to My memberships.
    assert page.get_by_text(h.BUYER).is_visible()
    page.get_by_role("button", name="Cancel plan").click()
    assert (
        page.get_by_role("status").filter(has_text="Your plan will be canceled at the end of the period.").is_visible()
    )
    h.settle(stripe_sandbox)
    page.get_by_role("link", name=re.compile(r"^← Return to")).click()
    page.wait_for_url("**/account/memberships/")
    assert purchase.refresh().cancel_at_period_end
    membership = _membership(page)
    assert membership.get_by_text("Active", exact=True).is_visible()
    assert membership.get_by_text(f"Ends on {_day(period_end)}").is_visible()  # Stripe's date
    assert not membership.get_by_text("Renews on").count()
    assert not membership.get_by_role("link", name="Cancel", exact=True).count()
    assert membership.get_by_text("Set to cancel at the end of the period").is_visible()
    _shows_the_group(page)

    # Stripe ends the subscription at the period's end; the buyer looks a day later.
    h.advance_past_period_end(stripe_sandbox, purchase.subscription_id)
    ended = h.subscription(stripe_sandbox, purchase.subscription_id)
    assert ended["status"] == "canceled"
    assert purchase.refresh().status == Entitlement.Status.CANCELED
    later = datetime.fromtimestamp(stripe_sandbox.now(), tz=UTC) + timedelta(days=1)
    assert later > timezone.now() + timedelta(days=14)  # the first login's session has expired
    with h.reading_at(later):
        future = _logged_in_as(new_page, live_server, purchase.buyer)
        _shows_the_paywall(future)
        future.get_by_role("link", name="My memberships", exact=True).click()
        future.wait_for_url("**/account/memberships/")
        membership = _membership(future)
        assert membership.get_by_text("Canceled", exact=True).is_visible()
        assert membership.get_by_text(f"Ended on {_day(h.moment(ended['ended_at']))}").is_visible()
        assert membership.get_by_role("link", name="Resubscribe").is_visible()
        assert not membership.get_by_role("link", name="Cancel", exact=True).count()
        assert not membership.get_by_role("link", name="Update card").count()
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.ENDED])


def test_a_creator_refunds_a_one_time_purchase_and_the_buyer_loses_access(
    client: Client, connected, owner: User, page, new_page, log_in, stripe_sandbox, live_server, celery_worker
) -> None:
    h.offer()
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    h.settle(stripe_sandbox)  # the setup's own events go out before the purchase writes
    purchase = h.buy(client, stripe_sandbox)
    buyer_page = new_page()
    _log_in_from_the_confirmation(buyer_page, celery_worker)
    _shows_the_group(buyer_page)

    # The creator finds the buyer on the Users screen and refunds the payment in full.
    log_in(page, owner)
    page.get_by_label("Dashboard").get_by_role("link", name="Users").click()
    page.get_by_role("link", name=h.BUYER).click()
    page.get_by_role("link", name=re.compile(r"^Refund the payment of")).click()
    page.get_by_role("heading", name="Refund a payment").wait_for()
    assert page.get_by_label("Amount to refund").input_value() == "25.00"
    assert page.get_by_text("Refunding in full revokes access to Inner Circle").is_visible()
    with h.deliveries_held(stripe_sandbox):  # the refund reaches Stripe as the form is answered
        page.get_by_role("button", name="Refund", exact=True).click()
        page.get_by_text("Refund of $25.00 requested for Inner Circle.").wait_for()
    h.settle(stripe_sandbox)

    assert purchase.refresh().status == Entitlement.Status.REFUNDED
    page.reload()
    memberships = page.get_by_role("region", name="Memberships")
    assert memberships.get_by_role("heading", name="Inner Circle Refunded").is_visible()
    assert memberships.get_by_role("row", name=re.compile(r"One-time payment \$25\.00 .* \$25\.00")).is_visible()
    assert memberships.get_by_text("Payment refunded in full ($25.00): access revoked").is_visible()
    assert not memberships.get_by_role("link", name=re.compile(r"^Refund the payment of")).count()

    # The buyer, still logged in, is shut out and reads why on My memberships.
    _shows_the_paywall(buyer_page)
    buyer_page.get_by_role("link", name="My memberships", exact=True).click()
    buyer_page.wait_for_url("**/account/memberships/")
    membership = _membership(buyer_page)
    assert membership.get_by_text("Refunded", exact=True).is_visible()
    assert membership.get_by_text("Refunded $25.00").is_visible()
    assert h.subjects(celery_worker) == sorted([h.CONFIRMATION, h.ENDED])
