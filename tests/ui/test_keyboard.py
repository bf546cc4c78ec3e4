"""Keyboard only: no clicks, only what page.keyboard presses (Tab, Shift+Tab, arrows, Space,
Enter, typing). A buyer pays for an offer on the sandbox's hosted Stripe page, and a creator
logs in and saves an offer in the editor. Every stop of the site's Tab order is visible and
shows where the focus is."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from accounts.models import User
from billing.models import WebhookEvent
from memberships.models import Entitlement, Offer
from tests import factories
from tests.billing.test_stripe_flows import _connect, _offer
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What a screen reader would call the focused element, and whether a sighted person sees it.
FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return {name: "", shown: true, ring: true};  // past the last stop
    const label = el.labels && el.labels.length ? el.labels[0].innerText : "";
    const name = (el.getAttribute("aria-label") || label || el.innerText || el.value || "").replace(/\\s+/g, " ");
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return {
        name: name.trim(),
        shown: box.width > 0 && box.height > 0,
        ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0,
    };
}"""


def _matches(name: str | re.Pattern[str], focused: str) -> bool:
    return bool(name.fullmatch(focused)) if isinstance(name, re.Pattern) else focused == name


def tab_to(page: Any, name: str | re.Pattern[str], *, site: str | None = None, limit: int = 80) -> None:
    """Press Tab until the focus is on ``name`` (a label, a button's or a link's text), unless it
    is there already (a field with autofocus).

    On the site's own pages (``site``, its address) every element Tab stops at on the way must be
    on screen and drawn with a focus ring."""
    if _matches(name, page.evaluate(FOCUSED)["name"]):
        return
    path = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        path.append(focused["name"])
        if site and page.url.startswith(site):
            assert focused["shown"], f"the focus went to an element that cannot be seen: {path}"
            assert focused["ring"], f"{focused['name']!r} has no visible focus ring"
        if _matches(name, focused["name"]):
            return
    raise AssertionError(f"Tab never reached {name!r}; the focus went through {path}")


def test_a_buyer_pays_for_a_membership_with_the_keyboard_only(
    page: Any, client: Any, owner: User, stripe_sandbox: Any, live_server: Any, celery_worker: Any
) -> None:
    _connect(client, owner, stripe_sandbox)
    offer = _offer(amount=2500)
    stripe_sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")

    def after_deliveries(route: Any) -> None:  # SQLite: the return waits until webhooks are handled
        stripe_sandbox.wait_for_deliveries()
        for _ in range(200):
            if not WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).exists():
                break
            time.sleep(0.05)
        route.continue_()

    page.route("**/complete/", after_deliveries)
    site = live_server.url
    page.goto(f"/offers/{offer.slug}/checkout/")
    tab_to(page, "Skip to content", site=site)
    tab_to(page, "Your name", site=site)
    page.keyboard.type("Bea Buyer")
    tab_to(page, "Email address", site=site)
    page.keyboard.type("bea@example.com")
    tab_to(page, re.compile(r"Continue to payment.*"), site=site)
    page.keyboard.press("Enter")

    page.wait_for_url(f"{stripe_sandbox.url}/**")
    for label, text in [
        ("Card number", "4242 4242 4242 4242"),
        ("Expiry", "12 / 34"),
        ("CVC", "123"),
        ("Name on card", "Bea Buyer"),
    ]:
        tab_to(page, label)
        page.keyboard.type(text)
    tab_to(page, "Pay")
    page.keyboard.press("Enter")

    page.wait_for_url("**/community/members/", timeout=30_000)
    assert page.get_by_text("Welcome! You now have access to Inner Circle.").is_visible()
    buyer = User.objects.get(email="bea@example.com")
    assert Entitlement.objects.get(user=buyer, offer=offer).status == Entitlement.Status.ACTIVE


def test_a_creator_saves_an_offer_with_the_keyboard_only(page: Any, live_server: Any, owner: User) -> None:
    morning = factories.group("Morning Yoga")
    evening = factories.group("Evening Yoga")
    offer = factories.offer("Draft Circle", groups=[morning], status=Offer.Status.DRAFT)
    site = live_server.url

    page.goto("/accounts/login/")
    tab_to(page, "Email address", site=site)
    page.keyboard.type(owner.email)
    tab_to(page, "Password", site=site)
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/")

    tab_to(page, "Digital Offers", site=site)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/offers/")
    tab_to(page, "Draft Circle", site=site)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/dashboard/offers/{offer.pk}/")

    tab_to(page, "Title", site=site)
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("Keyboard Circle")
    tab_to(page, "Free", site=site)  # the radio group's checked choice; arrows move within it
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    assert page.evaluate(FOCUSED)["name"] == "One-Time Payment"
    tab_to(page, re.compile(r"Price\b.*"), site=site)  # shown once the offer is paid
    page.keyboard.type("12.00")
    tab_to(page, "Evening Yoga", site=site)
    page.keyboard.press("Space")
    tab_to(page, "Save", site=site)
    page.keyboard.press("Enter")

    page.get_by_text("“Keyboard Circle” is saved.").wait_for()
    offer.refresh_from_db()
    assert (offer.title, offer.pricing, offer.price_amount) == ("Keyboard Circle", Offer.Pricing.ONE_TIME, 1200)
    assert set(offer.hub_groups.all()) == {morning, evening}
