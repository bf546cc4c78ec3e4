"""Paid checkout: starting a Checkout Session, the return page and the purchase destination."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, OfferStripePrice
from billing.services.fulfilment import checkout_attempt_fulfil
from memberships.models import Entitlement, Offer
from tests import factories
from tests.billing.helpers import FakeStripe

pytestmark = pytest.mark.django_db

PAY = "/offers/inner-circle/checkout/pay/"


class Sessions:
    """Records the Checkout Sessions the platform asks Stripe for."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create(self, *, account_id: str, params: dict[str, Any], idempotency_key: str) -> Any:
        self.created.append({"account_id": account_id, "params": params, "idempotency_key": idempotency_key})
        return gateway.CheckoutSessionCreated(session_id=f"cs_test_{len(self.created)}", url="https://pay.test/s")


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> Sessions:
    recorder = Sessions()
    monkeypatch.setattr(gateway, "checkout_session_create", recorder.create)
    monkeypatch.setattr(
        gateway,
        "price_retrieve",
        lambda *, account_id, price_id: gateway.Price.from_stripe(
            {
                "id": price_id,
                "active": True,
                "unit_amount": Offer.objects.get(stripe_price__price_id=price_id).price_amount,
                "currency": "usd",
                "recurring": Offer.objects.get(stripe_price__price_id=price_id).stripe_recurring,
            }
        ),
    )
    return recorder


def _pay(client: Client, email: str = "bea@example.com", **extra: str) -> Any:
    return client.post(PAY, {"email": email, "full_name": "Bea Buyer", **extra})


def test_paying_creates_a_checkout_session_from_the_stored_price(client, sessions) -> None:
    factories.stripe_account()
    offer = factories.paid_offer(amount=5000)
    response = _pay(client, price_amount="1")  # whatever the browser sends, the stored price is used

    assert response.status_code == 302
    assert response["Location"] == "https://pay.test/s"
    attempt = CheckoutAttempt.objects.get()
    assert (attempt.amount, attempt.currency, attempt.pricing) == (5000, "usd", Offer.Pricing.ONE_TIME)
    assert attempt.email == "bea@example.com"
    assert attempt.status == CheckoutAttempt.Status.OPEN
    assert attempt.stripe_session_id == "cs_test_1"
    [call] = sessions.created
    params = call["params"]
    assert call["account_id"] == "acct_1CreatorTest000"
    assert call["idempotency_key"] == f"checkout-{attempt.pk}"
    assert params["mode"] == "payment"
    assert params["line_items"] == [{"price": offer.stripe_price.price_id, "quantity": 1}]
    assert params["client_reference_id"] == str(attempt.pk)
    assert params["customer_email"] == "bea@example.com"
    assert params["success_url"].endswith(f"/checkout/{attempt.pk}/return/?session_id={{CHECKOUT_SESSION_ID}}")
    assert params["cancel_url"].endswith(f"/checkout/{attempt.pk}/cancel/")
    assert response.cookies["billing_browser"]["httponly"]


def test_a_recurring_offer_opens_a_subscription_checkout(client, sessions) -> None:
    factories.stripe_account()
    factories.paid_offer(recurring=True)
    _pay(client)
    params = sessions.created[0]["params"]
    attempt = CheckoutAttempt.objects.get()
    assert params["mode"] == "subscription"
    assert params["subscription_data"]["metadata"]["checkout_attempt"] == str(attempt.pk)
    assert attempt.interval == Offer.Interval.MONTH


def test_a_bad_email_is_shown_next_to_the_field_and_keeps_the_name(client, sessions) -> None:
    factories.stripe_account()
    factories.paid_offer()
    response = client.post(PAY, {"email": "not-an-email", "full_name": "Bea Buyer"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Enter a valid email address." in page
    assert 'value="Bea Buyer"' in page
    assert 'value="not-an-email"' in page
    assert not CheckoutAttempt.objects.exists()
    assert sessions.created == []


def test_a_buyer_who_already_has_access_is_told_so_instead_of_paying_twice(client, sessions, member) -> None:
    factories.stripe_account()
    offer = factories.paid_offer()
    Entitlement.objects.create(user=member, offer=offer, source=Entitlement.Source.PURCHASE)
    response = _pay(client, email="Member@Example.com")
    assert response.status_code == 200
    assert "already has access to Inner Circle" in response.content.decode()
    assert sessions.created == []
    assert not CheckoutAttempt.objects.exists()


def test_an_ended_entitlement_does_not_stop_buying_again(client, sessions, member) -> None:
    factories.stripe_account()
    offer = factories.paid_offer()
    Entitlement.objects.create(
        user=member, offer=offer, source=Entitlement.Source.PURCHASE, status=Entitlement.Status.REFUNDED
    )
    assert _pay(client, email=member.email).status_code == 302


def test_without_a_connected_account_the_buyer_gets_a_clear_page(client) -> None:
    factories.paid_offer()
    response = _pay(client)
    assert response.status_code == 503
    page = response.content.decode()
    assert "payments are not set up" in page
    assert "Nothing was charged" in page
    assert 'value="bea@example.com"' in page


def test_stripe_down_at_session_creation_gives_a_clear_page_and_loses_nothing(client, settings) -> None:
    """Through the real SDK: nothing listens on the configured Stripe address."""
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    factories.stripe_account()
    factories.paid_offer()
    response = _pay(client)
    assert response.status_code == 503
    page = response.content.decode()
    assert "We could not reach Stripe" in page
    assert "Nothing was charged" in page
    assert 'value="bea@example.com"' in page
    assert 'value="Bea Buyer"' in page
    assert "Try again" in page


def test_a_draft_offer_cannot_be_bought(client, sessions) -> None:
    factories.stripe_account()
    offer = factories.paid_offer()
    Offer.objects.filter(pk=offer.pk).update(status=Offer.Status.DRAFT)
    assert _pay(client).status_code == 404


# --- Back from Stripe ----------------------------------------------------------------------
def _fulfil(attempt: CheckoutAttempt, fake: FakeStripe) -> None:
    session = fake.paid_session(attempt)
    checkout_attempt_fulfil(
        attempt_id=attempt.pk,
        paid=gateway.PaidObject(
            stripe_object_id=session["payment_intent"], kind="one_time", amount=attempt.amount, currency="usd"
        ),
    )


def test_the_return_page_waits_and_the_status_endpoint_reports_fulfilment(client, sessions, monkeypatch) -> None:
    factories.stripe_account()
    factories.paid_offer()
    _pay(client)
    attempt = CheckoutAttempt.objects.get()
    page = client.get(f"/checkout/{attempt.pk}/return/?session_id=cs_test_1")
    assert page.status_code == 200
    assert "Confirming your payment" in page.content.decode()
    assert client.get(f"/checkout/{attempt.pk}/status/").json() == {"status": "open", "done": False}

    _fulfil(attempt, FakeStripe(monkeypatch))
    assert client.get(f"/checkout/{attempt.pk}/status/").json() == {"status": "paid", "done": True}


def test_the_buyer_is_logged_in_only_in_the_browser_that_paid(client, sessions, monkeypatch) -> None:
    factories.stripe_account()
    factories.paid_offer(groups=())  # no group of its own to land in: the buyer lands at home
    _pay(client)
    attempt = CheckoutAttempt.objects.get()
    _fulfil(attempt, FakeStripe(monkeypatch))

    other = Client()
    response = other.get(f"/checkout/{attempt.pk}/complete/")
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in other.session

    response = client.get(f"/checkout/{attempt.pk}/complete/")
    assert response["Location"] == "/home/"
    attempt.refresh_from_db()
    assert client.session["_auth_user_id"] == str(attempt.user_id)
    assert attempt.login_used_at is not None


def test_the_automatic_login_works_once(client, sessions, monkeypatch) -> None:
    factories.stripe_account()
    factories.paid_offer()
    _pay(client)
    attempt = CheckoutAttempt.objects.get()
    _fulfil(attempt, FakeStripe(monkeypatch))
    client.get(f"/checkout/{attempt.pk}/complete/")
    client.post("/accounts/logout/")
    response = client.get(f"/checkout/{attempt.pk}/complete/")
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def test_paying_with_an_existing_accounts_email_does_not_log_into_it(client, sessions, monkeypatch, owner) -> None:
    factories.stripe_account()
    factories.paid_offer()
    _pay(client, email=owner.email)
    attempt = CheckoutAttempt.objects.get()
    _fulfil(attempt, FakeStripe(monkeypatch))
    response = client.get(f"/checkout/{attempt.pk}/complete/", follow=True)
    assert "_auth_user_id" not in client.session
    assert "we emailed a login link" in response.content.decode()


def test_the_custom_destination_wins_over_the_login(client, sessions, monkeypatch) -> None:
    factories.stripe_account()
    factories.paid_offer(redirect_enabled=True, redirect_url="https://creator.example/thanks")
    _pay(client)
    attempt = CheckoutAttempt.objects.get()
    _fulfil(attempt, FakeStripe(monkeypatch))
    response = client.get(f"/checkout/{attempt.pk}/complete/")
    assert response["Location"] == "https://creator.example/thanks"


def test_complete_before_fulfilment_goes_back_to_waiting(client, sessions) -> None:
    factories.stripe_account()
    factories.paid_offer()
    _pay(client)
    attempt = CheckoutAttempt.objects.get()
    response = client.get(f"/checkout/{attempt.pk}/complete/")
    assert response["Location"] == f"/checkout/{attempt.pk}/return/"


def test_cancel_returns_to_the_checkout_page_with_a_message(client, sessions) -> None:
    factories.stripe_account()
    factories.paid_offer()
    _pay(client)
    attempt = CheckoutAttempt.objects.get()
    response = client.get(f"/checkout/{attempt.pk}/cancel/")
    assert response["Location"] == "/offers/inner-circle/checkout/"
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["Checkout was canceled and nothing was charged. You can try again whenever you like."]


def _field_value(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]* name="{name}"[^>]*>', page)
    assert match, f"no {name} field"
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


def test_stripes_back_link_keeps_what_the_buyer_typed(client, sessions) -> None:
    factories.stripe_account()
    factories.paid_offer()
    client.post(PAY, {"email": "bea@example.com", "full_name": "Bea Buyer"})
    attempt = CheckoutAttempt.objects.get()
    page = client.get(f"/checkout/{attempt.pk}/cancel/", follow=True).content.decode()
    assert "Checkout was canceled and nothing was charged." in page
    assert (_field_value(page, "full_name"), _field_value(page, "email")) == ("Bea Buyer", "bea@example.com")
    # Still there on a reload, and what was typed can be changed and sent again.
    page = client.get("/offers/inner-circle/checkout/").content.decode()
    assert _field_value(page, "email") == "bea@example.com"
    assert _pay(client, email="bea.b@example.com").status_code == 302
    assert CheckoutAttempt.objects.latest("created_at").email == "bea.b@example.com"


def test_the_back_link_in_another_browser_shows_an_empty_form(client, sessions) -> None:
    factories.stripe_account()
    factories.paid_offer()
    client.post(PAY, {"email": "bea@example.com", "full_name": "Bea Buyer"})
    attempt = CheckoutAttempt.objects.get()
    stranger = Client()
    page = stranger.get(f"/checkout/{attempt.pk}/cancel/", follow=True).content.decode()
    assert "Checkout was canceled" in page
    assert (_field_value(page, "full_name"), _field_value(page, "email")) == ("", "")
    assert "bea@example.com" not in page
    # Nor does the buyer's own return fill in the page anyone else is served from the cache.
    client.get(f"/checkout/{attempt.pk}/cancel/", follow=True)
    assert "bea@example.com" not in Client().get("/offers/inner-circle/checkout/").content.decode()


def test_the_back_link_of_a_paid_attempt_fills_nothing_in(client, sessions) -> None:
    factories.stripe_account()
    factories.paid_offer()
    client.post(PAY, {"email": "bea@example.com", "full_name": "Bea Buyer"})
    attempt = CheckoutAttempt.objects.get()
    CheckoutAttempt.objects.filter(pk=attempt.pk).update(status=CheckoutAttempt.Status.PAID)
    page = client.get(f"/checkout/{attempt.pk}/cancel/", follow=True).content.decode()
    assert _field_value(page, "email") == ""


def test_what_was_typed_for_one_offer_is_not_put_into_another(client, sessions) -> None:
    factories.stripe_account()
    factories.paid_offer()
    other = factories.paid_offer(title="Other Club")
    OfferStripePrice.objects.filter(offer=other).update(price_id="price_other")
    client.post(PAY, {"email": "bea@example.com", "full_name": "Bea Buyer"})
    attempt = CheckoutAttempt.objects.get()
    client.get(f"/checkout/{attempt.pk}/cancel/")
    page = client.get(f"/offers/{other.slug}/checkout/").content.decode()
    assert _field_value(page, "email") == ""


@pytest.mark.parametrize("free", [False, True])
def test_a_logged_in_buyer_who_has_the_offer_is_told_before_filling_anything_in(member, free: bool) -> None:
    factories.stripe_account()
    lounge = factories.group("Lounge")
    offer = factories.offer(groups=[lounge]) if free else factories.paid_offer(groups=[lounge])
    Entitlement.objects.create(user=member, offer=offer, source=Entitlement.Source.PURCHASE)
    client = Client()
    client.force_login(member)
    response = client.get(f"/offers/{offer.slug}/checkout/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "<h1>You already have access</h1>" in page
    assert '<a class="button primary" href="/community/lounge/">Go to the community</a>' in page
    assert 'name="email"' not in page
    assert "Continue to payment" not in page
    assert "Join for free" not in page


def test_a_logged_in_buyer_whose_membership_ended_can_buy_again(member) -> None:
    factories.stripe_account()
    offer = factories.paid_offer()
    Entitlement.objects.create(
        user=member, offer=offer, source=Entitlement.Source.PURCHASE, status=Entitlement.Status.REFUNDED
    )
    client = Client()
    client.force_login(member)
    page = client.get(f"/offers/{offer.slug}/checkout/").content.decode()
    assert "You already have access" not in page
    assert _field_value(page, "email") == member.email


# --- Sales ---------------------------------------------------------------------------------
def test_the_sales_page_lists_payments_in_a_constant_number_of_queries(
    client, owner, monkeypatch, django_assert_num_queries
) -> None:
    factories.stripe_account()
    offer = factories.paid_offer(amount=1250)
    fake = FakeStripe(monkeypatch)
    for index in range(5):
        attempt = CheckoutAttempt.objects.create(
            offer=offer,
            stripe_account_id="acct_1CreatorTest000",
            stripe_price_id="price_test",
            amount=1250,
            currency="usd",
            pricing=offer.pricing,
            email=f"buyer{index}@example.com",
            full_name=f"Buyer {index}",
            browser_key="x",
        )
        _fulfil(attempt, fake)
    client.force_login(owner)
    # The user; the figures per period, per offer and of test purchases; the payments with buyers
    # and offers; the test purchases apart; the offer filter's choices (the session is cached).
    with django_assert_num_queries(7):
        response = client.get("/dashboard/sales/")
    page = response.content.decode()
    assert page.count("$12.50") == 5
    assert "buyer4@example.com" in page
    assert "Inner Circle" in page


def test_the_return_page_shows_the_buyers_email_only_to_their_browser(client, sessions) -> None:
    factories.stripe_account()
    factories.paid_offer()
    _pay(client)
    attempt = CheckoutAttempt.objects.get()
    assert "bea@example.com" in client.get(f"/checkout/{attempt.pk}/return/").content.decode()
    assert "bea@example.com" not in Client().get(f"/checkout/{attempt.pk}/return/").content.decode()


def test_no_automatic_login_into_an_account_its_owner_has_since_used(client, sessions, monkeypatch) -> None:
    """Someone paying with a stranger's unused address must not enter the account once the
    address's owner has logged in with the emailed link."""
    from django.utils import timezone

    from accounts.models import User

    factories.stripe_account()
    factories.paid_offer()
    _pay(client, email="stranger@example.com")
    attempt = CheckoutAttempt.objects.get()
    _fulfil(attempt, FakeStripe(monkeypatch))
    User.objects.filter(email="stranger@example.com").update(last_login=timezone.now())  # the owner logged in
    response = client.get(f"/checkout/{attempt.pk}/complete/")
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


def test_no_automatic_login_long_after_paying(client, sessions, monkeypatch) -> None:
    from datetime import timedelta

    factories.stripe_account()
    factories.paid_offer()
    _pay(client)
    attempt = CheckoutAttempt.objects.get()
    _fulfil(attempt, FakeStripe(monkeypatch))
    attempt.refresh_from_db()
    CheckoutAttempt.objects.filter(pk=attempt.pk).update(paid_at=attempt.paid_at - timedelta(days=2))
    client.get(f"/checkout/{attempt.pk}/complete/")
    assert "_auth_user_id" not in client.session


def test_another_browser_is_not_shown_the_buyers_email(client, sessions, monkeypatch) -> None:
    factories.stripe_account()
    factories.paid_offer()
    _pay(client, email="private@example.com")
    attempt = CheckoutAttempt.objects.get()
    _fulfil(attempt, FakeStripe(monkeypatch))
    response = Client().get(f"/checkout/{attempt.pk}/complete/", follow=True)
    body = response.content.decode()
    assert "we emailed a login link" in body
    assert "private@example.com" not in body


def test_starting_checkouts_is_rate_limited(client, sessions, settings) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "checkout_start": {"ip": 100, "email": 2, "window": 3600}}
    factories.stripe_account()
    factories.paid_offer()
    statuses = [_pay(client, email="flood@example.com").status_code for _ in range(3)]
    assert statuses[:2] == [302, 302]
    assert statuses[2] == 429
    assert CheckoutAttempt.objects.count() == 2


def test_an_email_stripe_refuses_is_a_field_error_with_the_form_kept(client, sessions, monkeypatch) -> None:
    factories.stripe_account()
    factories.paid_offer()

    def refuse(**kwargs: Any) -> Any:
        raise gateway.StripeGatewayError("Invalid email address: bea@localhost", code="email_invalid")

    monkeypatch.setattr(gateway, "checkout_session_create", refuse)
    response = _pay(client, email="bea@localhost.example")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Stripe does not accept this email address" in body
    assert 'value="bea@localhost.example"' in body
