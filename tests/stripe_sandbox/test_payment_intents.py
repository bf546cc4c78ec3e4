"""Charging a card on file (one-click purchases): PaymentIntents created and confirmed off-session."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
import stripe

from tests.stripe_sandbox.conftest import Creator
from tests.stripe_sandbox.control import StripeSandbox


def card_on_file(
    stripe_sandbox: StripeSandbox, creator: Creator, card: str = "4242424242424242", *, saved_for: str | None = None
) -> tuple[str, Any]:
    """A buyer who paid once: their customer id and saved card. A subscription saves the card;
    ``saved_for`` (``off_session`` or ``on_session``) buys a one-time price saving it so."""
    if saved_for:
        session = creator.session(
            creator.price(2000),
            customer_email="mia@example.com",
            customer_creation="always",
            payment_intent_data={"setup_future_usage": saved_for},
        )
    else:
        session = creator.session(creator.price(2000, interval="month"), customer_email="mia@example.com")
    assert stripe_sandbox.pay_checkout(session.id, card=card).paid
    customer = creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options).customer
    methods = creator.client.v1.payment_methods.list({"customer": customer, "type": "card"}, creator.options)
    return customer, methods.data[0]


def hosted_page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def charge_off_session(creator: Creator, customer: str, card: Any) -> Any:
    return creator.client.v1.payment_intents.create(
        {
            "amount": 900,
            "currency": "usd",
            "customer": customer,
            "payment_method": card.id,
            "confirm": True,
            "off_session": True,
        },
        creator.options,
    )


def test_a_customers_saved_cards_are_listed(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    customer, card = card_on_file(stripe_sandbox, creator)

    listed = creator.client.v1.customers.payment_methods.list(customer, options=creator.options)

    assert [pm.id for pm in listed.data] == [card.id]
    assert (card.card.last4, card.card.brand, card.customer) == ("4242", "visa", customer)


def test_a_card_on_file_is_charged_off_session(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    customer, card = card_on_file(stripe_sandbox, creator)

    intent = creator.client.v1.payment_intents.create(
        {
            "amount": 900,
            "currency": "usd",
            "customer": customer,
            "payment_method": card.id,
            "confirm": True,
            "off_session": True,
            "application_fee_amount": 90,
            "metadata": {"offer": "9"},
        },
        creator.options,
    )

    assert (intent.status, intent.amount_received) == ("succeeded", 900)
    charge = creator.client.v1.charges.retrieve(intent.latest_charge, options=creator.options)
    assert (charge.amount, charge.customer, charge.application_fee_amount) == (900, customer, 90)
    succeeded = creator.client.v1.events.list({"type": "payment_intent.succeeded"}, creator.options).data
    assert succeeded[0].data.object.metadata.to_dict() == {"offer": "9"}


def test_a_declined_off_session_charge_is_a_402_card_error_that_is_kept(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    customer, card = card_on_file(stripe_sandbox, creator, card="4000000000000341")

    with pytest.raises(stripe.CardError) as caught:
        creator.client.v1.payment_intents.create(
            {
                "amount": 900,
                "currency": "usd",
                "customer": customer,
                "payment_method": card.id,
                "confirm": True,
                "off_session": True,
            },
            creator.options,
        )

    error = caught.value
    assert error.http_status == 402
    assert (error.code, error.user_message) == ("card_declined", "Your card was declined.")
    assert error.error.decline_code == "generic_decline"
    intent = creator.client.v1.payment_intents.retrieve(error.error.payment_intent.id, options=creator.options)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "card_declined"
    failed = creator.client.v1.events.list({"type": "charge.failed"}, creator.options).data
    assert [event.data.object.id for event in failed] == [intent.latest_charge]


def test_a_payment_intent_can_be_made_then_confirmed(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    customer, card = card_on_file(stripe_sandbox, creator)

    made = creator.client.v1.payment_intents.create(
        {"amount": 900, "currency": "usd", "customer": customer, "payment_method": card.id}, creator.options
    )
    confirmed = creator.client.v1.payment_intents.confirm(made.id, {"off_session": True}, creator.options)

    assert made.status == "requires_confirmation"
    assert confirmed.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as again:
        creator.client.v1.payment_intents.confirm(made.id, options=creator.options)
    assert again.value.code == "payment_intent_unexpected_state"


def test_another_customers_card_cannot_be_charged(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    _, card = card_on_file(stripe_sandbox, creator)
    stranger = creator.client.v1.customers.create({"email": "otto@example.com"}, creator.options)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.client.v1.payment_intents.create(
            {"amount": 900, "currency": "usd", "customer": stranger.id, "payment_method": card.id, "confirm": True},
            creator.options,
        )

    assert caught.value.param == "payment_method"
    assert creator.client.v1.charges.list({"customer": stranger.id}, creator.options).data == []


def test_a_payment_below_the_minimum_is_refused(creator: Creator) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.client.v1.payment_intents.create({"amount": 49, "currency": "usd"}, creator.options)

    assert (caught.value.code, caught.value.param) == ("amount_too_small", "amount")


def test_a_subscription_is_started_on_a_card_on_file(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    customer, card = card_on_file(stripe_sandbox, creator)
    price = creator.price(1200, interval="month", name="Weight training")

    subscription = creator.client.v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": price.id}],
            "default_payment_method": card.id,
            "application_fee_percent": 10,
            "metadata": {"offer": "9"},
            "payment_behavior": "error_if_incomplete",
            "off_session": True,
        },
        creator.options,
    )

    assert subscription.status == "active"
    invoice = creator.client.v1.invoices.retrieve(
        subscription.latest_invoice, {"expand": ["payments"]}, options=creator.options
    )
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == ("paid", 1200, "subscription_create")
    intent = creator.client.v1.payment_intents.retrieve(
        invoice.payments.data[0].payment.payment_intent, options=creator.options
    )
    assert intent.application_fee_amount == 120
    assert creator.client.v1.events.list({"type": "invoice.paid"}, creator.options).data[0].data.object.id == invoice.id


def test_a_declined_subscription_start_is_incomplete_or_a_402(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    customer, card = card_on_file(stripe_sandbox, creator, card="4000000000000341")
    price = creator.price(1200, interval="month", name="Weight training")
    params = {
        "customer": customer,
        "items": [{"price": price.id}],
        "default_payment_method": card.id,
        "off_session": True,
    }

    incomplete = creator.client.v1.subscriptions.create(params, creator.options)
    with pytest.raises(stripe.CardError) as caught:
        creator.client.v1.subscriptions.create({**params, "payment_behavior": "error_if_incomplete"}, creator.options)

    assert incomplete.status == "incomplete"
    invoice = creator.client.v1.invoices.retrieve(incomplete.latest_invoice, options=creator.options)
    assert (invoice.status, invoice.amount_paid) == ("open", 0)
    assert caught.value.http_status == 402
    assert caught.value.code == "card_declined"


# --- Saving a card, and cards that ask the cardholder to authenticate ---------------------------
def test_a_one_time_checkout_saves_the_card_when_asked(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    session = creator.session(
        creator.price(1500),
        customer_email="mia@example.com",
        payment_intent_data={"setup_future_usage": "off_session"},
    )
    assert "charge your card for future payments" in hosted_page(session.url)

    assert stripe_sandbox.pay_checkout(session.id).paid

    paid = creator.client.v1.checkout.sessions.retrieve(session.id, {"expand": ["payment_intent"]}, creator.options)
    assert paid.payment_intent.setup_future_usage == "off_session"
    [card] = creator.client.v1.payment_methods.list({"customer": paid.customer}, creator.options).data
    assert (card.id, card.customer) == (paid.payment_intent.payment_method, paid.customer)
    attached = creator.client.v1.events.list({"type": "payment_method.attached"}, creator.options).data
    assert [event.data.object.id for event in attached] == [card.id]
    assert charge_off_session(creator, paid.customer, card).status == "succeeded"


def test_a_card_paid_with_but_not_saved_cannot_be_charged_again(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    session = creator.session(creator.price(1500), customer_email="mia@example.com", customer_creation="always")
    assert "charge your card for future payments" not in hosted_page(session.url)
    assert stripe_sandbox.pay_checkout(session.id).paid
    paid = creator.client.v1.checkout.sessions.retrieve(session.id, {"expand": ["payment_intent"]}, creator.options)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.client.v1.payment_intents.create(
            {"amount": 900, "currency": "usd", "payment_method": paid.payment_intent.payment_method, "confirm": True},
            creator.options,
        )

    assert "It may not be used again" in str(caught.value.user_message)
    assert caught.value.param == "payment_method"


def test_a_3155_card_saved_for_off_session_use_is_charged_without_the_cardholder(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    """Stripe's "authenticate unless set up": authenticated once at checkout, saved for later."""
    customer, card = card_on_file(stripe_sandbox, creator, card="4000002500003155", saved_for="off_session")

    assert charge_off_session(creator, customer, card).status == "succeeded"


@pytest.mark.parametrize(
    ("number", "saved_for"),
    [("4000002500003155", "on_session"), ("4000002760003184", "off_session"), ("4000002760003184", None)],
)
def test_a_card_that_needs_the_cardholder_fails_off_session_with_authentication_required(
    stripe_sandbox: StripeSandbox, creator: Creator, number: str, saved_for: str | None
) -> None:
    customer, card = card_on_file(stripe_sandbox, creator, card=number, saved_for=saved_for)

    with pytest.raises(stripe.CardError) as caught:
        charge_off_session(creator, customer, card)

    error = caught.value
    assert error.http_status == 402
    assert (error.code, error.error.decline_code) == ("authentication_required", "authentication_required")
    assert error.user_message == "Your card was declined. This transaction requires authentication."
    intent = creator.client.v1.payment_intents.retrieve(error.error.payment_intent.id, options=creator.options)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "authentication_required"
    charge = creator.client.v1.charges.retrieve(intent.latest_charge, options=creator.options)
    assert (charge.status, charge.failure_code) == ("failed", "authentication_required")


def test_a_subscription_started_off_session_on_a_3184_card_is_refused_with_authentication_required(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    customer, card = card_on_file(stripe_sandbox, creator, card="4000002760003184")
    price = creator.price(1200, interval="month", name="Weight training")

    with pytest.raises(stripe.CardError) as caught:
        creator.client.v1.subscriptions.create(
            {
                "customer": customer,
                "items": [{"price": price.id}],
                "default_payment_method": card.id,
                "off_session": True,
                "payment_behavior": "error_if_incomplete",
            },
            creator.options,
        )

    assert (caught.value.http_status, caught.value.code) == (402, "authentication_required")


def test_confirming_on_session_with_a_card_that_authenticates_asks_for_the_cardholder(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    customer, card = card_on_file(stripe_sandbox, creator, card="4000002500003155", saved_for="off_session")

    intent = creator.client.v1.payment_intents.create(
        {"amount": 900, "currency": "usd", "customer": customer, "payment_method": card.id, "confirm": True},
        creator.options,
    )

    assert intent.status == "requires_action"
    assert intent.next_action.type == "use_stripe_sdk"
    assert intent.latest_charge is None
    assert creator.client.v1.charges.list({"payment_intent": intent.id}, creator.options).data == []


def test_the_renewal_of_a_3184_card_needs_the_cardholder(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    session = creator.session(creator.price(2000, interval="month"), customer_email="mia@example.com")
    assert stripe_sandbox.pay_checkout(session.id, card="4000002760003184").paid
    subscription = creator.client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["subscription"]}, creator.options
    ).subscription

    stripe_sandbox.advance_clock(subscription["items"].data[0].current_period_end - stripe_sandbox.now() + 60)

    renewed = creator.client.v1.subscriptions.retrieve(subscription.id, options=creator.options)
    assert renewed.status == "past_due"
    required = creator.client.v1.events.list({"type": "invoice.payment_action_required"}, creator.options).data
    assert [event.data.object.id for event in required] == [renewed.latest_invoice]
