"""The hosted checkout page in a real browser."""

from __future__ import annotations

from typing import Any

import pytest

from tests.stripe_sandbox.conftest import Creator
from tests.stripe_sandbox.control import StripeSandbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fill_card(page: Any, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_label("Name on card").fill("Mia Member")


def test_a_buyer_pays_on_the_hosted_page_and_returns_to_the_site(
    page: Any, live_server: Any, stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    session = creator.session(
        creator.price(50, interval="month"),
        customer_email="mia@example.com",
        success_url=f"{live_server.url}/healthz?session_id={{CHECKOUT_SESSION_ID}}",
    )

    page.goto(session.url)
    assert page.get_by_text("$0.50").is_visible()
    assert page.get_by_label("Email").input_value() == "mia@example.com"
    fill_card(page, "4242 4242 4242 4242")
    page.get_by_role("button", name="Subscribe").click()

    page.wait_for_url(f"**/healthz?session_id={session.id}")
    paid = creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options)
    assert paid.payment_status == "paid"


def test_a_declined_card_is_told_so_on_the_hosted_page(
    page: Any, stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    session = creator.session(creator.price(1500))

    page.goto(session.url)
    page.get_by_label("Email").fill("mia@example.com")
    fill_card(page, "4000 0000 0000 0002")
    page.get_by_role("button", name="Pay").click()

    page.get_by_role("alert").filter(has_text="Your card was declined.").wait_for()  # once the answer loads
    assert page.get_by_label("Email").input_value() == "mia@example.com"
    assert creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options).status == "open"
