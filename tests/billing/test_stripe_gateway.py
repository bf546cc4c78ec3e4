"""The gateway's own rules: no Stripe call inside an open transaction, typed answers."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import transaction

from billing import stripe_gateway as gateway

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_answers(monkeypatch: pytest.MonkeyPatch) -> mock.MagicMock:
    fake = mock.MagicMock()
    fake.v1.prices.retrieve.return_value.to_dict.return_value = {
        "id": "price_1",
        "active": True,
        "unit_amount": 900,
        "currency": "EUR",
        "recurring": {"interval": "month", "interval_count": 3},
    }
    monkeypatch.setattr(gateway, "client", lambda: fake)
    return fake


def test_a_call_inside_a_transaction_is_refused_before_it_reaches_stripe(stripe_answers) -> None:
    with pytest.raises(gateway.StripeCalledInTransaction), transaction.atomic():
        gateway.price_retrieve(account_id="acct_1", price_id="price_1")
    stripe_answers.v1.prices.retrieve.assert_not_called()


def test_a_call_inside_a_savepoint_of_a_transaction_is_refused_too(stripe_answers) -> None:
    with pytest.raises(gateway.StripeCalledInTransaction), transaction.atomic(), transaction.atomic():
        gateway.price_retrieve(account_id="acct_1", price_id="price_1")


def test_outside_a_transaction_the_call_goes_through_and_answers_a_typed_value(stripe_answers) -> None:
    # Only the test case's own wrapping block is open here, and it does not count.
    price = gateway.price_retrieve(account_id="acct_1", price_id="price_1")
    assert price == gateway.Price(price_id="price_1", active=True, amount=900, currency="eur", recurring=("month", 3))


def test_the_check_can_be_switched_off(stripe_answers, settings) -> None:
    settings.STRIPE_REFUSE_CALLS_IN_TRANSACTIONS = False
    with transaction.atomic():
        assert gateway.price_retrieve(account_id="acct_1", price_id="price_1").price_id == "price_1"


def test_an_invoice_names_its_subscription_and_its_latest_period_end() -> None:
    invoice = gateway.Invoice.from_stripe(
        {
            "id": "in_1",
            "status": "paid",
            "amount_paid": 500,
            "currency": "usd",
            "customer": {"id": "cus_1"},
            "billing_reason": "subscription_cycle",
            "parent": {"subscription_details": {"subscription": "sub_1"}},
            "lines": {"data": [{"period": {"end": 100}}, {"period": {"end": 200}}]},
        }
    )
    paid = invoice.paid()
    assert (paid.stripe_object_id, paid.kind, paid.subscription_id, paid.customer_id) == (
        "in_1",
        "invoice",
        "sub_1",
        "cus_1",
    )
    assert paid.period_end is not None
    assert paid.period_end.timestamp() == 200
    assert paid.is_renewal
