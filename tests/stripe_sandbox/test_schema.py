"""What Stripe's own schemas for the pinned API version say, and the sandbox must do the same:
parameters refused with Stripe's error codes, fields present only when Stripe sends them,
every expandable path Stripe accepts, and API keys Stripe would not know refused."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.stripe_sandbox.conftest import Creator, WebhookReceiver
from tests.stripe_sandbox.control import StripeSandbox

DAY = 24 * 60 * 60


def _refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    assert caught.value.http_status == 400
    body = caught.value.json_body
    assert isinstance(body, dict)
    error: dict[str, Any] = body["error"]
    return error


def _paid_subscription(stripe_sandbox: StripeSandbox, creator: Creator) -> Any:
    session = creator.session(creator.price(2000, interval="month"))
    assert stripe_sandbox.pay_checkout(session.id).paid
    return creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options)


# --- The clock ------------------------------------------------------------------------------
def test_advancing_the_clock_past_thirty_days_keeps_events_not_yet_delivered(
    stripe_sandbox: StripeSandbox, creator: Creator, webhook_receiver: WebhookReceiver
) -> None:
    stripe_sandbox.set_delivery(delay_ms=500)
    customer = creator.client.v1.customers.create({"email": "mia@example.com"}, creator.options)

    stripe_sandbox.advance_clock(31 * DAY)

    stripe_sandbox.wait_for_deliveries(type="customer.created", count=1)
    delivered = [event for event in webhook_receiver.events() if event["type"] == "customer.created"]
    assert [event["data"]["object"]["id"] for event in delivered] == [customer.id]


# --- Parameters ------------------------------------------------------------------------------
def test_an_unknown_key_in_a_line_item_is_refused(creator: Creator) -> None:
    price = creator.price()

    error = _refusal(lambda: creator.session(price, line_items=[{"price": price.id, "quantity": 1, "colour": "red"}]))

    assert error["param"] == "line_items[0][colour]"
    assert error["code"] == "parameter_unknown"
    assert error["message"] == "Received unknown parameter: line_items[0][colour]"


def test_an_unknown_key_in_recurring_is_refused(creator: Creator) -> None:
    product = creator.client.v1.products.create({"name": "Gold"}, creator.options)
    params = {"product": product.id, "unit_amount": 500, "currency": "usd"}

    error = _refusal(
        lambda: creator.client.v1.prices.create(
            {**params, "recurring": {"interval": "month", "every": "2"}}, creator.options
        )
    )

    assert (error["param"], error["code"]) == ("recurring[every]", "parameter_unknown")


def test_customer_creation_is_refused_in_subscription_mode(creator: Creator) -> None:
    price = creator.price(interval="month")

    error = _refusal(lambda: creator.session(price, customer_creation="always"))

    assert error["param"] == "customer_creation"


def test_a_price_takes_product_or_product_data_but_not_both(creator: Creator) -> None:
    product = creator.client.v1.products.create({"name": "Gold"}, creator.options)
    params = {"product": product.id, "product_data": {"name": "Silver"}, "unit_amount": 500, "currency": "usd"}

    error = _refusal(lambda: creator.client.v1.prices.create(params, creator.options))

    assert error["code"] == "parameters_exclusive"
    assert error["message"] == "You may only specify one of these parameters: product, product_data."


def test_events_are_listed_by_type_or_types_but_not_both(creator: Creator) -> None:
    params = {"type": "customer.created", "types": ["customer.updated"]}

    error = _refusal(lambda: creator.client.v1.events.list(params, creator.options))

    assert error["code"] == "parameters_exclusive"


def test_parameter_errors_carry_stripes_codes(creator: Creator) -> None:
    customers = creator.client.v1.customers
    products = creator.client.v1.products

    unknown = _refusal(lambda: customers.create({"colour": "red"}, creator.options))
    missing = _refusal(lambda: products.create({}, creator.options))
    empty = _refusal(lambda: products.create({"name": ""}, creator.options))
    not_integer = _refusal(lambda: customers.list({"limit": "many"}, creator.options))

    assert (unknown["code"], unknown["param"]) == ("parameter_unknown", "colour")
    assert (missing["code"], missing["param"]) == ("parameter_missing", "name")
    assert (empty["code"], empty["param"]) == ("parameter_invalid_empty", "name")
    assert (not_integer["code"], not_integer["param"]) == ("parameter_invalid_integer", "limit")


# --- Shapes ------------------------------------------------------------------------------------
def test_a_session_is_a_hosted_page(creator: Creator) -> None:
    price = creator.price()

    session = creator.session(price)
    explicit = creator.session(price, ui_mode="hosted_page")
    error = _refusal(lambda: creator.session(price, ui_mode="hosted"))

    assert (session.ui_mode, explicit.ui_mode) == ("hosted_page", "hosted_page")
    assert error["param"] == "ui_mode"


def test_an_invoice_names_its_subscription_only_through_its_parent(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    session = _paid_subscription(stripe_sandbox, creator)

    invoice = creator.client.v1.invoices.retrieve(session.invoice, options=creator.options)
    listed = creator.client.v1.invoices.list({"subscription": session.subscription}, creator.options)

    assert "subscription" not in invoice
    assert invoice.parent.subscription_details.subscription == session.subscription
    assert [item.id for item in listed.data] == [invoice.id]


def test_an_invoices_payments_come_only_when_expanded(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    session = _paid_subscription(stripe_sandbox, creator)
    invoices = creator.client.v1.invoices

    plain = invoices.retrieve(session.invoice, options=creator.options)
    expanded = invoices.retrieve(session.invoice, {"expand": ["payments"]}, creator.options)
    events = creator.client.v1.events.list({"type": "invoice.paid"}, creator.options)

    assert "payments" not in plain
    assert [payment.status for payment in expanded.payments.data] == ["paid"]
    assert expanded.payments.data[0].payment.payment_intent.startswith("pi_")
    assert "payments" not in events.data[0].data.object


def test_a_disputes_evidence_details_say_how_it_was_submitted(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    session = creator.session(creator.price(2500))
    assert stripe_sandbox.pay_checkout(session.id).paid
    paid = creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options)
    opened = stripe_sandbox.create_dispute(paid.payment_intent)

    dispute = creator.client.v1.disputes.retrieve(opened["id"], options=creator.options)

    assert dispute.evidence_details.submission_method == "not_submitted"


# --- expand[] ----------------------------------------------------------------------------------
def test_a_session_expands_its_total_details_breakdown_and_line_item_discounts(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    session = creator.session(creator.price(2500))
    expand = ["total_details.breakdown", "line_items.data.discounts", "line_items.data.taxes"]

    retrieved = creator.client.v1.checkout.sessions.retrieve(session.id, {"expand": expand}, creator.options)
    plain = creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options)

    assert retrieved.total_details.breakdown.to_dict() == {"discounts": [], "taxes": []}
    assert [(item.discounts, item.taxes) for item in retrieved.line_items.data] == [([], [])]
    assert "breakdown" not in plain.total_details
    assert "line_items" not in plain


def test_a_path_stripe_does_not_expand_is_refused(creator: Creator) -> None:
    session = creator.session(creator.price(2500))

    error = _refusal(
        lambda: creator.client.v1.checkout.sessions.retrieve(session.id, {"expand": ["mode"]}, creator.options)
    )

    assert error["param"] == "expand"


def test_every_expandable_field_of_the_sdk_is_expandable_in_the_sandbox() -> None:
    from stripe_sandbox.expansion import EXPANDABLE
    from tests.stripe_sandbox.sdk_schema import SERVED, expandable_paths

    missing = {
        f"{kind}: {path}" for kind, resource in SERVED.items() for path in expandable_paths(resource) - EXPANDABLE[kind]
    }

    assert not missing


def test_expanding_any_field_of_a_paid_subscription_session_is_answered(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    from stripe_sandbox.expansion import EXPANDABLE

    session = _paid_subscription(stripe_sandbox, creator)
    sessions = creator.client.v1.checkout.sessions
    invoices = creator.client.v1.invoices

    for path in sorted(EXPANDABLE["checkout.session"]):
        sessions.retrieve(session.id, {"expand": [path]}, creator.options)
    for path in sorted(EXPANDABLE["invoice"]):
        invoices.retrieve(session.invoice, {"expand": [path]}, creator.options)
    deep = sessions.retrieve(
        session.id, {"expand": ["invoice.parent.subscription_details.subscription.latest_invoice"]}, creator.options
    )

    assert deep.invoice.parent.subscription_details.subscription.latest_invoice.id == session.invoice


# --- API keys ----------------------------------------------------------------------------------
def test_an_unknown_secret_key_is_refused(stripe_sandbox: StripeSandbox) -> None:
    client = stripe_sandbox.client(api_key="sk_test_someone_elses_key")

    with pytest.raises(stripe.AuthenticationError) as caught:
        client.v1.customers.list()

    assert caught.value.http_status == 401
    assert "Invalid API Key provided: sk_test_****_key" in str(caught.value.user_message)
    assert stripe_sandbox.client().v1.customers.list().data == []
