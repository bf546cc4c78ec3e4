"""Money after the sale: refunds, application fees, disputes, transfers (the billing portal is in
test_portal.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe

from tests.stripe_sandbox.conftest import Creator, WebhookReceiver
from tests.stripe_sandbox.control import StripeSandbox


def paid_charge(stripe_sandbox: StripeSandbox, creator: Creator, amount: int = 1000, fee: int | None = None) -> Any:
    extra: dict[str, Any] = {"payment_intent_data": {"application_fee_amount": fee}} if fee else {}
    session = creator.session(creator.price(amount), **extra)
    assert stripe_sandbox.pay_checkout(session.id).paid
    paid = creator.client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["payment_intent.latest_charge"]}, creator.options
    )
    return paid.payment_intent.latest_charge


def connected(stripe_sandbox: StripeSandbox, name: str) -> str:
    client = stripe_sandbox.client()
    url = client.oauth.authorize_url({"scope": "read_write", "redirect_uri": "http://localhost:8000/partners/return/"})
    redirect = stripe_sandbox.authorize_oauth(url, business_name=name)
    code = dict(part.split("=", 1) for part in urlsplit(redirect).query.split("&"))["code"]
    return str(client.oauth.token({"grant_type": "authorization_code", "code": code})["stripe_user_id"])


def test_a_partial_then_a_full_refund_of_a_charge(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    charge = paid_charge(stripe_sandbox, creator)

    partial = creator.client.v1.refunds.create({"charge": charge.id, "amount": 300}, creator.options)
    rest = creator.client.v1.refunds.create(
        {"payment_intent": charge.payment_intent, "reason": "requested_by_customer"}, creator.options
    )

    refunded = creator.client.v1.charges.retrieve(charge.id, options=creator.options)
    assert (partial.amount, partial.status, partial.charge) == (300, "succeeded", charge.id)
    assert (rest.amount, rest.reason) == (700, "requested_by_customer")
    assert (refunded.amount_refunded, refunded.refunded) == (1000, True)
    events = creator.client.v1.events.list({"type": "charge.refunded"}, creator.options).data
    assert [event.data.object.amount_refunded for event in events] == [1000, 300]
    assert events[-1].data.previous_attributes.amount_refunded == 0
    assert len(creator.client.v1.events.list({"type": "refund.created"}, creator.options).data) == 2


def test_refunding_more_than_is_left_is_refused(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    charge = paid_charge(stripe_sandbox, creator)
    creator.client.v1.refunds.create({"charge": charge.id, "amount": 600}, creator.options)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        creator.client.v1.refunds.create({"charge": charge.id, "amount": 500}, creator.options)
    creator.client.v1.refunds.create({"charge": charge.id}, creator.options)
    with pytest.raises(stripe.InvalidRequestError) as again:
        creator.client.v1.refunds.create({"charge": charge.id}, creator.options)

    assert too_much.value.param == "amount"
    assert "greater than unrefunded amount" in str(too_much.value.user_message)
    assert again.value.code == "charge_already_refunded"


def test_refunding_the_application_fee_refunds_the_fees_share(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    charge = paid_charge(stripe_sandbox, creator, amount=1000, fee=200)

    creator.client.v1.refunds.create(
        {"charge": charge.id, "amount": 250, "refund_application_fee": True}, creator.options
    )

    platform = stripe_sandbox.client()
    fee = platform.v1.application_fees.retrieve(charge.application_fee)
    assert (fee.amount, fee.amount_refunded, fee.refunded) == (200, 50, False)
    assert fee.refunds.data[0].amount == 50
    events = platform.v1.events.list({"type": "application_fee.refunded"}).data
    assert [event.data.object.id for event in events] == [fee.id]
    listed = platform.v1.application_fees.list({"charge": charge.id})
    assert [f.id for f in listed.data] == [fee.id]


def test_a_refund_without_the_flag_keeps_the_application_fee(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    charge = paid_charge(stripe_sandbox, creator, amount=1000, fee=200)

    creator.client.v1.refunds.create({"charge": charge.id}, creator.options)

    assert stripe_sandbox.client().v1.application_fees.retrieve(charge.application_fee).amount_refunded == 0


def test_a_dispute_opens_and_closes_with_stripes_events(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    charge = paid_charge(stripe_sandbox, creator)

    dispute = stripe_sandbox.create_dispute(charge.payment_intent)
    opened = creator.client.v1.charges.retrieve(charge.id, options=creator.options)
    stripe_sandbox.close_dispute(dispute["id"], status="lost")

    assert (dispute["charge"], dispute["amount"], dispute["status"]) == (charge.id, 1000, "needs_response")
    assert opened.disputed is True
    created = creator.client.v1.events.list({"type": "charge.dispute.created"}, creator.options).data
    closed = creator.client.v1.events.list({"type": "charge.dispute.closed"}, creator.options).data
    assert created[0].data.object.id == dispute["id"]
    assert created[0].account == creator.account
    assert (closed[0].data.object.status, closed[0].data.previous_attributes.status) == ("lost", "needs_response")
    assert creator.client.v1.disputes.retrieve(dispute["id"], options=creator.options).status == "lost"


def test_a_refund_by_payment_intent_is_delivered_as_refund_created_and_charge_refunded(
    stripe_sandbox: StripeSandbox, creator: Creator, webhook_receiver: WebhookReceiver
) -> None:
    charge = paid_charge(stripe_sandbox, creator, amount=2500)
    other = paid_charge(stripe_sandbox, creator, amount=1000)
    stripe_sandbox.wait_for_deliveries()
    webhook_receiver.received.clear()

    refund = creator.client.v1.refunds.create(
        {
            "payment_intent": charge.payment_intent,
            "amount": 1000,
            "reason": "requested_by_customer",
            "metadata": {"payment": "42"},
        },
        creator.options,
    )
    creator.client.v1.refunds.create({"charge": other.id}, creator.options)

    stripe_sandbox.wait_for_deliveries()
    delivered = {
        (event["type"], event["data"]["object"]["id"]): event["data"]["object"] for event in webhook_receiver.events()
    }
    refunded = delivered[("charge.refunded", charge.id)]
    created = delivered[("refund.created", refund.id)]
    assert sorted(kind for kind, _ in delivered) == [
        "charge.refunded",
        "charge.refunded",
        "refund.created",
        "refund.created",
    ]
    assert (refunded["amount_refunded"], refunded["refunded"]) == (1000, False)
    assert refunded["payment_method_details"]["card"]["last4"] == "4242"
    assert (created["charge"], created["amount"], created["metadata"]) == (charge.id, 1000, {"payment": "42"})
    assert created["reason"] == "requested_by_customer"
    listed = creator.client.v1.refunds.list({"payment_intent": charge.payment_intent}, creator.options)
    assert [item.id for item in listed.data] == [refund.id]


def test_a_won_dispute_is_read_back_and_listed_by_charge_or_payment_intent(
    stripe_sandbox: StripeSandbox, creator: Creator, webhook_receiver: WebhookReceiver
) -> None:
    charge = paid_charge(stripe_sandbox, creator)
    other = paid_charge(stripe_sandbox, creator)
    dispute = stripe_sandbox.create_dispute(charge.id)
    stripe_sandbox.create_dispute(other.payment_intent)

    opened = creator.client.v1.disputes.retrieve(dispute["id"], options=creator.options)
    stripe_sandbox.close_dispute(dispute["id"], status="won")
    won = creator.client.v1.disputes.retrieve(dispute["id"], options=creator.options)

    assert opened.status == "needs_response"
    assert won.status == "won"
    by_charge = creator.client.v1.disputes.list({"charge": charge.id}, creator.options)
    by_intent = creator.client.v1.disputes.list({"payment_intent": charge.payment_intent}, creator.options)
    assert [item.id for item in by_charge.data] == [item.id for item in by_intent.data] == [dispute["id"]]
    assert len(creator.client.v1.disputes.list(options=creator.options).data) == 2
    stripe_sandbox.wait_for_deliveries()
    about = [
        (event["type"], event["data"]["object"]["status"])
        for event in webhook_receiver.events()
        if event["data"]["object"]["id"] == dispute["id"]
    ]
    assert ("charge.dispute.created", "needs_response") in about
    assert ("charge.dispute.closed", "won") in about


def test_disputes_of_another_account_are_not_listed(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    charge = paid_charge(stripe_sandbox, creator)
    stripe_sandbox.create_dispute(charge.id)
    other = connected(stripe_sandbox, "Partner Pat")

    assert creator.client.v1.disputes.list(options={"stripe_account": other}).data == []
    with pytest.raises(stripe.InvalidRequestError) as caught:
        creator.client.v1.disputes.list({"colour": "red"}, creator.options)
    assert caught.value.param == "colour"


def test_a_subscription_invoices_charge_is_found_through_its_invoice_payment(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    session = creator.session(creator.price(2000, interval="month"))
    assert stripe_sandbox.pay_checkout(session.id, card="4000000000000341").paid
    paid = creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options)

    payments = creator.client.v1.invoice_payments.list({"invoice": paid.invoice}, creator.options)
    intent = creator.client.v1.payment_intents.retrieve(
        payments.data[0].payment.payment_intent, {"expand": ["latest_charge"]}, creator.options
    )

    assert payments.data[0].status == "paid"
    assert intent.latest_charge.amount == 2000
    assert intent.latest_charge.payment_method_details.card.last4 == "0341"
    assert creator.client.v1.refunds.create({"charge": intent.latest_charge.id}, creator.options).amount == 2000


def test_transfers_go_to_connected_accounts_and_can_be_reversed(stripe_sandbox: StripeSandbox) -> None:
    partner = connected(stripe_sandbox, "Partner Pat")
    platform = stripe_sandbox.client()

    transfer = platform.v1.transfers.create(
        {"amount": 300, "currency": "usd", "destination": partner, "metadata": {"commission": "9"}}
    )
    reversal = platform.v1.transfers.reversals.create(transfer.id, {"amount": 100})
    rest = platform.v1.transfers.reversals.create(transfer.id)

    reversed_transfer = platform.v1.transfers.retrieve(transfer.id)
    assert (transfer.destination, transfer.amount, transfer.metadata.to_dict()) == (partner, 300, {"commission": "9"})
    assert (reversal.amount, rest.amount) == (100, 200)
    assert (reversed_transfer.amount_reversed, reversed_transfer.reversed) == (300, True)
    assert [t.id for t in platform.v1.transfers.list({"destination": partner}).data] == [transfer.id]
    types = [event.type for event in platform.v1.events.list().data]
    assert types.count("transfer.reversed") == 2
    assert "transfer.created" in types
    with pytest.raises(stripe.InvalidRequestError):
        platform.v1.transfers.reversals.create(transfer.id)


def test_a_transfer_to_an_account_that_is_not_connected_is_refused(stripe_sandbox: StripeSandbox) -> None:
    stranger = stripe_sandbox.create_account("Stranger")

    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_sandbox.client().v1.transfers.create({"amount": 300, "currency": "usd", "destination": stranger["id"]})

    assert caught.value.param == "destination"


def test_the_refuse_switch_fails_every_transfer_until_it_is_off(stripe_sandbox: StripeSandbox) -> None:
    partner = connected(stripe_sandbox, "Partner Pat")
    platform = stripe_sandbox.client()
    stripe_sandbox.refuse_transfers()
    try:
        with pytest.raises(stripe.InvalidRequestError) as caught:
            platform.v1.transfers.create({"amount": 300, "currency": "usd", "destination": partner})
        assert caught.value.code == "balance_insufficient"
        assert platform.v1.transfers.list().data == []
    finally:
        stripe_sandbox.refuse_transfers(False)
    assert platform.v1.transfers.create({"amount": 300, "currency": "usd", "destination": partner}).amount == 300


def test_an_account_whose_payouts_are_disabled_cannot_receive_transfers(stripe_sandbox: StripeSandbox) -> None:
    partner = connected(stripe_sandbox, "Partner Pat")
    stripe_sandbox.update_account(partner, payouts_enabled=False)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_sandbox.client().v1.transfers.create({"amount": 300, "currency": "usd", "destination": partner})
    assert "capabilities" in str(caught.value)
    stripe_sandbox.update_account(partner, payouts_enabled=True)
    assert stripe_sandbox.client().v1.transfers.create({"amount": 1, "currency": "usd", "destination": partner})


def test_a_subscriptions_fee_percent_can_be_changed_for_its_next_invoices(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    session = creator.session(creator.price(2500, interval="month"), subscription_data={"application_fee_percent": 30})
    assert stripe_sandbox.pay_checkout(session.id).paid
    subscription_id = creator.client.v1.checkout.sessions.retrieve(session.id, None, creator.options).subscription
    updated = creator.client.v1.subscriptions.update(subscription_id, {"application_fee_percent": 0}, creator.options)
    assert updated.application_fee_percent == 0
    with pytest.raises(stripe.InvalidRequestError):  # not on the platform's own account
        stripe_sandbox.client().v1.subscriptions.update(subscription_id, {"application_fee_percent": 0})


@pytest.mark.parametrize(("amount", "fee"), [(50, 31), (1000, 59), (2500, 103)])
def test_a_card_charge_pays_stripes_standard_fee_out_of_the_accounts_balance(
    stripe_sandbox: StripeSandbox, creator: Creator, amount: int, fee: int
) -> None:
    """2.9% + 30¢ for a USD card, rounded to the cent: what the creator's balance gets is the net."""
    charge = paid_charge(stripe_sandbox, creator, amount)

    txn = creator.client.v1.balance_transactions.retrieve(charge.balance_transaction, options=creator.options)
    assert (txn.amount, txn.fee, txn.net, txn.currency) == (amount, fee, amount - fee, "usd")
    assert [(item.type, item.amount, item.description) for item in txn.fee_details] == [
        ("stripe_fee", fee, "Stripe processing fees")
    ]
    expanded = creator.client.v1.charges.retrieve(charge.id, {"expand": ["balance_transaction"]}, creator.options)
    assert expanded.balance_transaction.net == amount - fee


def test_an_application_fee_is_taken_from_the_balance_beside_stripes_fee(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    charge = paid_charge(stripe_sandbox, creator, 1000, fee=200)

    txn = creator.client.v1.balance_transactions.retrieve(charge.balance_transaction, options=creator.options)
    assert (txn.fee, txn.net) == (259, 741)
    fees = sorted((item.type, item.amount) for item in txn.fee_details)
    assert fees == [("application_fee", 200), ("stripe_fee", 59)]


@pytest.mark.parametrize(
    ("amount", "currency", "fee"),
    [(1000, "usd", 59), (1000, "eur", 40), (1000, "gbp", 35), (1000, "aud", 47), (1000, "sgd", 84), (1000, "jpy", 36)],
)
def test_the_standard_card_fee_in_each_currency(amount: int, currency: str, fee: int) -> None:
    from stripe_sandbox.engine import card_fee

    assert card_fee(amount, currency) == fee
    assert card_fee(amount, currency.upper()) == fee
    assert card_fee(10, "usd") == 10  # never more than the charge
