"""The sandbox speaks Stripe's API: authentication, idempotency, errors, catalogue, events."""

from __future__ import annotations

import pytest
import stripe

from tests.stripe_sandbox.conftest import Creator
from tests.stripe_sandbox.control import StripeSandbox


def test_it_refuses_a_request_without_an_api_key(stripe_sandbox: StripeSandbox) -> None:
    client = stripe_sandbox.client(api_key=" ")

    with pytest.raises(stripe.AuthenticationError) as caught:
        client.v1.customers.list()

    assert caught.value.http_status == 401
    assert "You did not provide an API key" in str(caught.value.user_message)


def test_it_refuses_a_key_that_is_not_a_test_secret_key(stripe_sandbox: StripeSandbox) -> None:
    client = stripe_sandbox.client(api_key="pk_test_publishable")

    with pytest.raises(stripe.AuthenticationError) as caught:
        client.v1.customers.list()

    assert caught.value.http_status == 401
    assert "Invalid API Key provided" in str(caught.value.user_message)


def test_it_refuses_an_account_that_is_not_connected(stripe_sandbox: StripeSandbox) -> None:
    account = stripe_sandbox.create_account()

    with pytest.raises(stripe.PermissionError) as caught:
        stripe_sandbox.client().v1.customers.list(options={"stripe_account": account["id"]})

    assert caught.value.http_status == 403
    assert caught.value.http_body is not None
    assert "account_invalid" in str(caught.value.http_body)


def test_the_same_idempotency_key_replays_the_first_answer(creator: Creator) -> None:
    options = {**creator.options, "idempotency_key": "attempt-1"}

    first = creator.client.v1.customers.create({"email": "buyer@example.com"}, options)
    second = creator.client.v1.customers.create({"email": "buyer@example.com"}, options)

    assert second.id == first.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    listed = creator.client.v1.customers.list({"email": "buyer@example.com"}, creator.options)
    assert [customer.id for customer in listed.data] == [first.id]


def test_the_same_idempotency_key_with_other_parameters_is_an_idempotency_error(creator: Creator) -> None:
    options = {**creator.options, "idempotency_key": "attempt-2"}
    creator.client.v1.customers.create({"email": "buyer@example.com"}, options)

    with pytest.raises(stripe.IdempotencyError) as caught:
        creator.client.v1.customers.create({"email": "other@example.com"}, options)

    assert caught.value.http_status == 400
    assert "attempt-2" in str(caught.value.user_message)


def test_idempotency_keys_are_kept_apart_per_account(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    on_creator = creator.client.v1.customers.create(
        {"email": "a@example.com"}, {**creator.options, "idempotency_key": "shared"}
    )
    on_platform = creator.client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "shared"})

    assert on_platform.id != on_creator.id


def test_a_missing_parameter_names_the_parameter(creator: Creator) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.client.v1.prices.create({"currency": "usd", "unit_amount": 500}, creator.options)

    assert caught.value.http_status == 400
    assert caught.value.param == "product"
    assert caught.value.user_message == "Missing required param: product."


def test_an_unknown_parameter_is_refused(creator: Creator) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.client.v1.customers.create({"emial": "typo@example.com"}, creator.options)

    assert caught.value.param == "emial"
    assert caught.value.user_message == "Received unknown parameter: emial"


def test_an_unknown_object_is_404_resource_missing(creator: Creator) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.client.v1.customers.retrieve("cus_missing", options=creator.options)

    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"
    assert caught.value.user_message == "No such customer: 'cus_missing'"


def test_objects_of_one_account_are_invisible_to_another(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    customer = creator.client.v1.customers.create({"email": "buyer@example.com"}, creator.options)

    with pytest.raises(stripe.InvalidRequestError):
        stripe_sandbox.client().v1.customers.retrieve(customer.id)


def test_products_and_prices_go_through_their_lifecycle(creator: Creator) -> None:
    client, options = creator.client, creator.options
    product = client.v1.products.create({"name": "Gold", "metadata": {"offer": "7"}}, options)
    monthly = client.v1.prices.create(
        {
            "product": product.id,
            "unit_amount": 1500,
            "currency": "usd",
            "recurring": {"interval": "month", "interval_count": 3},
        },
        options,
    )

    renamed = client.v1.products.update(
        product.id, {"name": "Gold plus", "images": ["http://localhost/media/thumb.png"]}, options
    )
    archived = client.v1.prices.update(monthly.id, {"active": False}, options)
    cheaper = client.v1.prices.create({"product": product.id, "unit_amount": 900, "currency": "usd"}, options)

    assert monthly.type == "recurring"
    assert (monthly.recurring.interval, monthly.recurring.interval_count) == ("month", 3)
    assert renamed.name == "Gold plus"
    assert renamed.images == ["http://localhost/media/thumb.png"]
    assert renamed.metadata.to_dict() == {"offer": "7"}
    assert client.v1.products.retrieve(product.id, options=options).name == "Gold plus"
    assert archived.active is False
    assert cheaper.type == "one_time"
    assert cheaper.recurring is None
    active = client.v1.prices.list({"product": product.id, "active": True}, options)
    assert [price.id for price in active.data] == [cheaper.id]
    everything = client.v1.prices.list({"product": product.id}, options)
    assert [price.id for price in everything.data] == [cheaper.id, monthly.id]


def test_a_price_interval_must_be_one_stripe_knows(creator: Creator) -> None:
    product = creator.client.v1.products.create({"name": "Gold"}, creator.options)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.client.v1.prices.create(
            {"product": product.id, "unit_amount": 500, "currency": "usd", "recurring": {"interval": "fortnight"}},
            creator.options,
        )

    assert caught.value.param == "recurring[interval]"


def test_customers_are_created_updated_and_listed_by_email(creator: Creator) -> None:
    client, options = creator.client, creator.options
    customer = client.v1.customers.create({"email": "mia@example.com", "name": "Mia"}, options)
    client.v1.customers.create({"email": "otto@example.com"}, options)

    updated = client.v1.customers.update(customer.id, {"name": "Mia Member", "metadata": {"user": "3"}}, options)
    found = client.v1.customers.list({"email": "mia@example.com"}, options)

    assert updated.name == "Mia Member"
    assert updated.metadata.to_dict() == {"user": "3"}
    assert [c.id for c in found.data] == [customer.id]
    assert client.v1.customers.retrieve(customer.id, options=options).email == "mia@example.com"


def test_lists_page_with_limit_and_starting_after(creator: Creator) -> None:
    made = [creator.client.v1.customers.create({"name": f"c{i}"}, creator.options).id for i in range(3)]

    first = creator.client.v1.customers.list({"limit": 2}, creator.options)
    rest = creator.client.v1.customers.list({"limit": 2, "starting_after": first.data[-1].id}, creator.options)

    assert [c.id for c in first.data] == [made[2], made[1]]
    assert first.has_more is True
    assert [c.id for c in rest.data] == [made[0]]
    assert rest.has_more is False


def test_events_are_listed_by_type_and_time_and_paged(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    client, options = creator.client, creator.options
    first = client.v1.customers.create({"email": "a@example.com"}, options)
    stripe_sandbox.advance_clock(3600)
    later = stripe_sandbox.now()
    second = client.v1.customers.create({"email": "b@example.com"}, options)
    client.v1.products.create({"name": "Gold"}, options)

    created = client.v1.events.list({"type": "customer.created"}, options)
    recent = client.v1.events.list({"created": {"gte": later}}, options)
    wildcard = client.v1.events.list({"type": "customer.*"}, options)
    paged = client.v1.events.list({"type": "customer.created", "starting_after": created.data[0].id}, options)

    assert [event.data.object.id for event in created.data] == [second.id, first.id]
    assert all(event.account == creator.account for event in created.data)
    assert {event.type for event in recent.data} == {"customer.created", "product.created"}
    assert len(recent.data) == 2
    assert len(wildcard.data) == 2
    assert [event.data.object.id for event in paged.data] == [first.id]
    retrieved = client.v1.events.retrieve(created.data[0].id, options=options)
    assert retrieved.type == "customer.created"


def test_events_are_listed_for_at_most_twenty_types_at_once(creator: Creator) -> None:
    types = [f"customer.type_{n}" for n in range(21)]
    with pytest.raises(stripe.InvalidRequestError, match="at most 20"):
        creator.client.v1.events.list({"types": types}, creator.options)
    assert creator.client.v1.events.list({"types": types[:20]}, creator.options).data == []


def test_events_are_kept_for_thirty_days(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    creator.client.v1.customers.create({"email": "a@example.com"}, creator.options)
    event = creator.client.v1.events.list({"type": "customer.created"}, creator.options).data[0]

    stripe_sandbox.advance_clock(29 * 24 * 3600)
    assert creator.client.v1.events.retrieve(event.id, options=creator.options).id == event.id
    stripe_sandbox.advance_clock(2 * 24 * 3600)

    with pytest.raises(stripe.InvalidRequestError):
        creator.client.v1.events.retrieve(event.id, options=creator.options)
    assert creator.client.v1.events.list({"type": "customer.created"}, creator.options).data == []


def test_objects_take_the_shape_of_stripes_examples(creator: Creator) -> None:
    price = creator.price(500, interval="month")
    raw = price.to_dict()

    assert raw["object"] == "price"
    assert raw["livemode"] is False
    assert raw["billing_scheme"] == "per_unit"
    assert str(raw["unit_amount_decimal"]) == "500"
    assert raw["recurring"]["usage_type"] == "licensed"


def test_an_unknown_url_is_answered_as_stripe_answers_it(stripe_sandbox: StripeSandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_sandbox.client().raw_request("get", "/v1/teleporters")

    assert caught.value.http_status == 404
    assert "Unrecognized request URL (GET: /v1/teleporters)" in str(caught.value.user_message)


def test_the_index_page_lists_accounts_cards_and_deliveries(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    creator.client.v1.customers.create({"email": "mia@example.com"}, creator.options)
    stripe_sandbox.wait_for_deliveries(1)

    status, _, html = stripe_sandbox._http("GET", "/")

    assert status == 200
    assert "Yoga with Olive" in html
    assert "4242 4242 4242 4242" in html
    assert "customer.created" in html


def test_a_nested_parameter_must_be_a_hash(creator: Creator) -> None:
    price = creator.price(500)

    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": "http://localhost/ok/",
                "payment_intent_data": "fee please",
            },
            creator.options,
        )

    assert caught.value.param == "payment_intent_data"


def test_a_price_can_create_its_product_inline(creator: Creator) -> None:
    price = creator.client.v1.prices.create(
        {"product_data": {"name": "Silver", "metadata": {"offer": "8"}}, "unit_amount": 700, "currency": "USD"},
        creator.options,
    )

    product = creator.client.v1.products.retrieve(price.product, options=creator.options)
    assert (product.name, product.active, product.metadata.to_dict()) == ("Silver", True, {"offer": "8"})
    assert price.currency == "usd"
