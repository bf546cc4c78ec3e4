"""The test clock: renewals, failed renewals and their retries, period ends."""

from __future__ import annotations

from typing import Any

from tests.stripe_sandbox.conftest import Creator
from tests.stripe_sandbox.control import StripeSandbox

DAY = 24 * 3600


def subscribe(stripe_sandbox: StripeSandbox, creator: Creator, card: str = "4242424242424242") -> Any:
    session = creator.session(creator.price(2000, interval="month"), customer_email="mia@example.com")
    assert stripe_sandbox.pay_checkout(session.id, card=card).paid
    paid = creator.client.v1.checkout.sessions.retrieve(session.id, {"expand": ["subscription"]}, creator.options)
    return paid.subscription


def events(creator: Creator, type: str) -> list[Any]:
    return list(creator.client.v1.events.list({"type": type, "limit": 100}, creator.options).data)


def test_advancing_past_the_period_end_renews_the_subscription(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    subscription = subscribe(stripe_sandbox, creator)
    first_end = subscription["items"].data[0].current_period_end

    stripe_sandbox.advance_clock(first_end - stripe_sandbox.now() + 60)

    renewed = creator.client.v1.subscriptions.retrieve(subscription.id, options=creator.options)
    item = renewed["items"].data[0]
    assert renewed.status == "active"
    assert item.current_period_start == first_end
    assert item.current_period_end > first_end + 27 * DAY
    invoices = creator.client.v1.invoices.list({"subscription": subscription.id}, creator.options).data
    assert [(i.billing_reason, i.status, i.amount_paid) for i in invoices] == [
        ("subscription_cycle", "paid", 2000),
        ("subscription_create", "paid", 2000),
    ]
    assert renewed.latest_invoice == invoices[0].id
    paid = events(creator, "invoice.paid")
    assert paid[0].data.object.id == invoices[0].id
    assert paid[0].created == first_end
    change = events(creator, "customer.subscription.updated")[0]
    assert change.data.previous_attributes.latest_invoice == invoices[1].id
    assert change.data.previous_attributes["items"].data[0].current_period_end == first_end


def test_a_year_of_months_makes_twelve_renewals(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    subscription = subscribe(stripe_sandbox, creator)

    stripe_sandbox.advance_clock(365 * DAY + 60)

    invoices = creator.client.v1.invoices.list({"subscription": subscription.id, "limit": 100}, creator.options).data
    assert len(invoices) == 13
    assert {invoice.status for invoice in invoices} == {"paid"}


def test_a_0341_card_pays_at_checkout_then_fails_the_renewal(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    subscription = subscribe(stripe_sandbox, creator, card="4000000000000341")
    period_end = subscription["items"].data[0].current_period_end

    stripe_sandbox.advance_clock(period_end - stripe_sandbox.now() + 60)

    past_due = creator.client.v1.subscriptions.retrieve(subscription.id, options=creator.options)
    invoice = creator.client.v1.invoices.retrieve(past_due.latest_invoice, options=creator.options)
    assert past_due.status == "past_due"
    assert (invoice.status, invoice.attempt_count, invoice.amount_paid) == ("open", 1, 0)
    assert invoice.next_payment_attempt == period_end + 3 * DAY
    failed = events(creator, "invoice.payment_failed")
    assert [event.data.object.id for event in failed] == [invoice.id]
    updated = events(creator, "customer.subscription.updated")[0]
    assert updated.data.object.status == "past_due"
    assert updated.data.previous_attributes.status == "active"


def test_retries_of_a_failed_renewal_end_in_cancellation(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    subscription = subscribe(stripe_sandbox, creator, card="4000000000000341")
    period_end = subscription["items"].data[0].current_period_end

    stripe_sandbox.advance_clock(period_end - stripe_sandbox.now() + 8 * DAY)

    canceled = creator.client.v1.subscriptions.retrieve(subscription.id, options=creator.options)
    assert canceled.status == "canceled"
    assert canceled.ended_at == period_end + 7 * DAY
    assert canceled.cancellation_details.reason == "payment_failed"
    assert len(events(creator, "invoice.payment_failed")) == 4
    deleted = events(creator, "customer.subscription.deleted")
    assert [event.data.object.id for event in deleted] == [subscription.id]


def test_retries_can_end_in_unpaid_instead(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    stripe_sandbox.set_after_failed_retries("unpaid")
    subscription = subscribe(stripe_sandbox, creator, card="4000000000000341")
    period_end = subscription["items"].data[0].current_period_end

    stripe_sandbox.advance_clock(period_end - stripe_sandbox.now() + 8 * DAY)

    unpaid = creator.client.v1.subscriptions.retrieve(subscription.id, options=creator.options)
    assert unpaid.status == "unpaid"
    assert events(creator, "customer.subscription.deleted") == []


def test_cancel_at_period_end_ends_the_subscription_at_the_period_end(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    subscription = subscribe(stripe_sandbox, creator)
    period_end = subscription["items"].data[0].current_period_end

    updated = creator.client.v1.subscriptions.update(subscription.id, {"cancel_at_period_end": True}, creator.options)
    change = events(creator, "customer.subscription.updated")[0]
    stripe_sandbox.advance_clock(period_end - stripe_sandbox.now() - 60)
    still_active = creator.client.v1.subscriptions.retrieve(subscription.id, options=creator.options)
    stripe_sandbox.advance_clock(120)
    ended = creator.client.v1.subscriptions.retrieve(subscription.id, options=creator.options)

    assert (updated.cancel_at_period_end, updated.cancel_at) == (True, period_end)
    assert still_active.status == "active"
    assert (ended.status, ended.ended_at) == ("canceled", period_end)
    assert len(creator.client.v1.invoices.list({"subscription": subscription.id}, creator.options).data) == 1
    deleted = events(creator, "customer.subscription.deleted")
    assert deleted[0].created == period_end
    assert change.data.previous_attributes.cancel_at_period_end is False


def test_a_subscription_can_be_canceled_at_once_with_metadata_kept(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    subscription = subscribe(stripe_sandbox, creator)
    creator.client.v1.subscriptions.update(subscription.id, {"metadata": {"reason": "moved"}}, creator.options)

    canceled = creator.client.v1.subscriptions.cancel(subscription.id, options=creator.options)

    assert canceled.status == "canceled"
    assert canceled.metadata.to_dict() == {"reason": "moved"}
    assert events(creator, "customer.subscription.deleted")[0].data.object.id == subscription.id


def test_the_clock_never_goes_back(stripe_sandbox: StripeSandbox) -> None:
    before = stripe_sandbox.now()

    after = stripe_sandbox.advance_clock(DAY)

    assert after - before >= DAY
    assert stripe_sandbox.now() >= after
