"""Checkout Sessions and the hosted payment page."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
import stripe

from tests.stripe_sandbox.conftest import Creator
from tests.stripe_sandbox.control import StripeSandbox


def get_page(url: str) -> tuple[int, str]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    connection.request("GET", parts.path)
    response = connection.getresponse()
    return response.status, response.read().decode()


def event_types(creator: Creator) -> list[str]:
    events = creator.client.v1.events.list({"limit": 100}, creator.options)
    return [event.type for event in reversed(events.data)]


def test_a_session_is_created_with_what_the_platform_asked(creator: Creator) -> None:
    price = creator.price(1500)

    session = creator.session(
        price,
        customer_email="mia@example.com",
        client_reference_id="attempt-42",
        metadata={"offer": "7"},
        payment_intent_data={"application_fee_amount": 150, "metadata": {"offer": "7"}},
    )

    assert session.id.startswith("cs_test_")
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert (session.amount_total, session.currency) == (1500, "usd")
    assert session.client_reference_id == "attempt-42"
    assert session.customer_email == "mia@example.com"
    assert session.url.endswith(f"/c/pay/{session.id}")
    assert session.expires_at - session.created == 24 * 3600
    items = creator.client.v1.checkout.sessions.line_items.list(session.id, options=creator.options)
    assert [(item.price.id, item.quantity, item.amount_total) for item in items.data] == [(price.id, 1, 1500)]
    assert items.data[0].description == "Gold membership"


def test_the_hosted_page_shows_the_offer_and_the_prefilled_email(creator: Creator) -> None:
    session = creator.session(creator.price(2000, interval="month"), customer_email="mia@example.com")

    status, html = get_page(session.url)

    assert status == 200
    assert "Yoga with Olive" in html
    assert "Gold membership" in html
    assert "$20.00" in html
    assert "per month" in html
    assert 'value="mia@example.com"' in html
    for label in ("Email", "Card number", "Expiry", "CVC", "Name on card"):
        assert f">{label}</label>" in html
    assert ">Subscribe</button>" in html
    assert 'href="http://localhost:8000/checkout/cancel/"' in html


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        (
            {"mode": "payment", "line_items": [{"price": "price_missing", "quantity": 1}]},
            "line_items[0][price]",
            "No such price",
        ),
        (
            {"mode": "payment", "line_items": [{"price": "RECURRING", "quantity": 1}]},
            "line_items[0][price]",
            "recurring",
        ),
        ({"mode": "subscription", "line_items": [{"price": "CHEAP", "quantity": 1}]}, "line_items", "recurring price"),
        (
            {
                "mode": "payment",
                "line_items": [{"price": "CHEAP", "quantity": 1}],
                "customer": "cus_x",
                "customer_email": "a@example.com",
            },
            "customer_email",
            "only specify one",
        ),
        ({"mode": "payment", "line_items": [{"price": "CHEAP"}]}, "line_items[0][quantity]", "Missing required param"),
    ],
)
def test_a_bad_session_is_refused_naming_the_parameter(
    creator: Creator, params: dict, param: str, message: str
) -> None:
    prices = {"RECURRING": creator.price(500, interval="month").id, "CHEAP": creator.price(500).id}
    for line in params["line_items"]:
        line["price"] = prices.get(line["price"], line["price"])

    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.client.v1.checkout.sessions.create({"success_url": "http://localhost/ok/", **params}, creator.options)

    assert caught.value.param == param
    assert message in str(caught.value.user_message)


def test_a_subscription_session_takes_recurring_prices_of_one_interval(creator: Creator) -> None:
    monthly = creator.price(500, interval="month")
    yearly = creator.price(5000, interval="year")
    one_time = creator.price(500)

    for other in (yearly, one_time):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            creator.client.v1.checkout.sessions.create(
                {
                    "mode": "subscription",
                    "line_items": [{"price": monthly.id, "quantity": 1}, {"price": other.id, "quantity": 1}],
                    "success_url": "http://localhost/ok/",
                },
                creator.options,
            )
        assert caught.value.param == "line_items"


def test_a_session_below_stripes_minimum_is_refused(creator: Creator) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.session(creator.price(49))

    assert "at least $0.50" in str(caught.value.user_message)


def test_an_archived_price_cannot_be_sold(creator: Creator) -> None:
    price = creator.price(500)
    creator.client.v1.prices.update(price.id, {"active": False}, creator.options)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.session(price)

    assert "inactive" in str(caught.value.user_message)


def test_paying_a_one_time_session_completes_it(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    session = creator.session(
        creator.price(1500),
        client_reference_id="attempt-42",
        payment_intent_data={"application_fee_amount": 150, "metadata": {"offer": "7"}},
    )

    result = stripe_sandbox.pay_checkout(session.id, email="mia@example.com", name="Mia Member")

    assert result.paid
    assert result.redirect_url == f"http://localhost:8000/checkout/success/?session_id={session.id}"
    paid = creator.client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["payment_intent.latest_charge", "customer"]}, creator.options
    )
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert paid.customer_details.email == "mia@example.com"
    assert paid.customer_details.name == "Mia Member"
    assert paid.customer.email == "mia@example.com"
    intent = paid.payment_intent
    assert (intent.status, intent.amount_received, intent.application_fee_amount) == ("succeeded", 1500, 150)
    assert intent.metadata.to_dict() == {"offer": "7"}
    charge = intent.latest_charge
    assert (charge.status, charge.paid, charge.amount) == ("succeeded", True, 1500)
    assert charge.payment_method_details.card.last4 == "4242"
    assert charge.billing_details.email == "mia@example.com"
    fee = stripe_sandbox.client().v1.application_fees.retrieve(charge.application_fee)
    assert (fee.amount, fee.account, fee.charge) == (150, creator.account, charge.id)
    types = event_types(creator)
    # Not asked to save the card, Stripe does not attach it to the customer.
    assert types[-5:] == [
        "customer.created",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    assert intent.setup_future_usage is None
    assert creator.client.v1.payment_methods.list({"customer": paid.customer.id}, creator.options).data == []
    completed = creator.client.v1.events.list({"type": "checkout.session.completed"}, creator.options).data[0]
    assert completed.data.object.client_reference_id == "attempt-42"
    by_intent = creator.client.v1.checkout.sessions.list({"payment_intent": intent.id}, creator.options)
    assert [s.id for s in by_intent.data] == [session.id]
    intents = creator.client.v1.payment_intents.list({"customer": paid.customer.id}, creator.options)
    assert [i.id for i in intents.data] == [intent.id]
    platform_events = stripe_sandbox.client().v1.events.list({"type": "application_fee.created"})
    assert [event.data.object.id for event in platform_events.data] == [fee.id]


def test_paying_a_subscription_session_starts_the_subscription(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    price = creator.price(2000, interval="month")
    session = creator.session(
        price,
        customer_email="mia@example.com",
        subscription_data={"application_fee_percent": 10, "metadata": {"offer": "7"}},
    )

    assert stripe_sandbox.pay_checkout(session.id, email="ignored@example.com").paid

    paid = creator.client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["subscription", "invoice.payments"]}, creator.options
    )
    subscription, invoice = paid.subscription, paid.invoice
    assert paid.payment_status == "paid"
    assert paid.customer_details.email == "mia@example.com"
    assert subscription.status == "active"
    assert subscription.metadata.to_dict() == {"offer": "7"}
    assert subscription.application_fee_percent == 10
    item = subscription["items"].data[0]
    assert item.price.id == price.id
    assert item.current_period_end - item.current_period_start >= 28 * 24 * 3600
    assert subscription.latest_invoice == invoice.id
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == ("paid", 2000, "subscription_create")
    assert invoice.parent.subscription_details.subscription == subscription.id
    assert invoice.lines.data[0].pricing.price_details.price == price.id
    payment_intent = invoice.payments.data[0].payment.payment_intent
    intent = creator.client.v1.payment_intents.retrieve(payment_intent, options=creator.options)
    assert (intent.status, intent.application_fee_amount) == ("succeeded", 200)
    listed = creator.client.v1.invoices.list({"subscription": subscription.id}, creator.options)
    assert [i.id for i in listed.data] == [invoice.id]
    payments = creator.client.v1.invoice_payments.list({"invoice": invoice.id}, creator.options)
    assert [(p.status, p.amount_paid) for p in payments.data] == [("paid", 2000)]
    sessions = creator.client.v1.checkout.sessions.list({"subscription": subscription.id}, creator.options)
    assert [s.id for s in sessions.data] == [session.id]
    types = event_types(creator)
    for expected in (
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        "checkout.session.completed",
    ):
        assert expected in types
    assert types.index("invoice.paid") < types.index("checkout.session.completed")


def test_a_declined_card_shows_stripes_message_and_keeps_the_session_open(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    session = creator.session(creator.price(1500))

    result = stripe_sandbox.pay_checkout(session.id, card="4000 0000 0000 0002", email="mia@example.com")

    assert result.status == 402
    assert result.error == "Your card was declined."
    assert 'value="mia@example.com"' in result.html
    assert 'value="4000 0000 0000 0002"' in result.html
    still_open = creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options)
    assert (still_open.status, still_open.payment_status) == ("open", "unpaid")
    failed = creator.client.v1.events.list({"type": "payment_intent.payment_failed"}, creator.options).data
    assert failed[0].data.object.last_payment_error.code == "card_declined"
    assert failed[0].data.object.last_payment_error.decline_code == "generic_decline"
    assert creator.client.v1.events.list({"type": "checkout.session.completed"}, creator.options).data == []
    assert creator.client.v1.customers.list({}, creator.options).data == []

    assert stripe_sandbox.pay_checkout(session.id).paid
    paid = creator.client.v1.checkout.sessions.retrieve(session.id, {"expand": ["payment_intent"]}, creator.options)
    assert paid.payment_intent.id == failed[0].data.object.id
    assert paid.payment_intent.status == "succeeded"


@pytest.mark.parametrize(
    ("field", "values", "message"),
    [
        ("card_number", {"card": "4242 4242 4242 4241"}, "Your card number is invalid."),
        ("card_number", {"card": "4242"}, "Your card number is incomplete."),
        ("expiry", {"expiry": "13 / 30"}, "Your card's expiration date is invalid."),
        ("expiry", {"expiry": "01 / 20"}, "Your card's expiration year is in the past."),
        ("cvc", {"cvc": "1"}, "Your card's security code is incomplete."),
        ("email", {"email": "not-an-email"}, "Your email address is invalid."),
        ("name", {"name": " "}, "Enter the name on your card."),
    ],
)
def test_bad_card_details_are_explained_next_to_the_field(
    stripe_sandbox: StripeSandbox, creator: Creator, field: str, values: dict, message: str
) -> None:
    session = creator.session(creator.price(1500))

    result = stripe_sandbox.pay_checkout(session.id, **values)

    assert result.status == 400
    assert f'<div class="error" id="{field}-error" role="alert">{message}' in result.html.replace("&#x27;", "'")
    assert 'value="Jenny Rosen"' in result.html or field == "name"
    assert creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options).status == "open"


def test_a_test_mode_session_refuses_a_real_card_number(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    session = creator.session(creator.price(1500))

    result = stripe_sandbox.pay_checkout(session.id, card="4111 1111 1111 1111")

    assert result.status == 402
    assert result.error is not None
    assert "non test card" in result.error


def test_a_paid_session_cannot_be_paid_again(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    session = creator.session(creator.price(1500))
    stripe_sandbox.pay_checkout(session.id)

    again = stripe_sandbox.pay_checkout(session.id)

    assert again.status == 410
    assert "already been paid" in again.html
    assert len(creator.client.v1.charges.list({}, creator.options).data) == 1


def test_an_expired_session_cannot_be_paid(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    session = creator.session(creator.price(1500))

    expired = creator.client.v1.checkout.sessions.expire(session.id, options=creator.options)
    result = stripe_sandbox.pay_checkout(session.id)

    assert expired.status == "expired"
    assert result.status == 410
    assert "expired" in result.html
    assert creator.client.v1.events.list({"type": "checkout.session.expired"}, creator.options).data
    with pytest.raises(stripe.InvalidRequestError):
        creator.client.v1.checkout.sessions.expire(session.id, options=creator.options)


def test_a_session_expires_by_itself_after_its_expiry_time(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    session = creator.session(creator.price(1500), expires_at=stripe_sandbox.now() + 3600)

    stripe_sandbox.advance_clock(3601)

    assert creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options).status == "expired"
    events = creator.client.v1.events.list({"type": "checkout.session.expired"}, creator.options).data
    assert events[0].created == session.expires_at


def test_a_session_for_an_existing_customer_charges_that_customer(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    customer = creator.client.v1.customers.create({"email": "mia@example.com", "name": "Mia"}, creator.options)
    session = creator.session(creator.price(1500), customer=customer.id)

    stripe_sandbox.pay_checkout(session.id)

    paid = creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options)
    assert paid.customer == customer.id
    assert paid.customer_details.email == "mia@example.com"
    assert len(creator.client.v1.customers.list({}, creator.options).data) == 1
