"""Money after the sale: refunds, application fees, disputes, transfers (the billing portal is in
test_portal.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe

from tests.stripe_sandbox.conftest import Creator
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
