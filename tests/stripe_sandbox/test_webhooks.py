"""Webhook delivery: Stripe's signature, retries, and the switches that make it misbehave."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import stripe

from stripe_sandbox.server import SandboxServer
from tests.stripe_sandbox.conftest import Creator, WebhookReceiver
from tests.stripe_sandbox.control import StripeSandbox

SECRET = "whsec_sandbox_platform_secret"
CREATED = "customer.created"


@pytest.fixture
def seller(stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, creator: Creator) -> Creator:
    """The connected creator, once the events of connecting have been delivered and forgotten."""
    stripe_sandbox.wait_for_deliveries()
    webhook_receiver.received.clear()
    return creator


def test_every_delivery_verifies_with_the_sdks_own_check(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    customer = seller.client.v1.customers.create({"email": "mia@example.com"}, seller.options)
    stripe_sandbox.wait_for_deliveries(1, type=CREATED)

    delivery = webhook_receiver.received[-1]
    event = stripe.Webhook.construct_event(delivery.body.decode(), delivery.headers["Stripe-Signature"], SECRET)

    assert event.type == "customer.created"
    assert event.account == seller.account
    assert event.data.object.id == customer.id
    assert event.api_version == "2026-10-28.endive"
    assert delivery.headers["Content-Type"] == "application/json; charset=utf-8"


def test_a_tampered_or_wrongly_keyed_delivery_does_not_verify(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    seller.client.v1.customers.create({"email": "mia@example.com"}, seller.options)
    stripe_sandbox.wait_for_deliveries(1, type=CREATED)
    delivery = webhook_receiver.received[-1]
    header = delivery.headers["Stripe-Signature"]

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body.decode().replace("mia@", "eve@"), header, SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body.decode(), header, "whsec_other")


def test_platform_events_carry_no_account(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    stripe_sandbox.client().v1.customers.create({"email": "platform@example.com"})
    stripe_sandbox.wait_for_deliveries(1, type=CREATED)

    assert "account" not in webhook_receiver.events()[-1]


def test_a_failed_delivery_is_retried_until_it_succeeds(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    webhook_receiver.answers = [500, 503]

    seller.client.v1.customers.create({"email": "mia@example.com"}, seller.options)
    log = stripe_sandbox.wait_for_deliveries(3, type=CREATED)

    assert [(entry["attempt"], entry["status"], entry["result"]) for entry in log] == [
        (1, 500, "retrying"),
        (2, 503, "retrying"),
        (3, 200, "delivered"),
    ]
    assert len({event["id"] for event in webhook_receiver.events()}) == 1


def test_a_delivery_that_keeps_failing_gives_up_after_bounded_attempts(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    webhook_receiver.answers = [500] * 10
    stripe_sandbox.set_retry_delays([0.05, 0.05, 0.05, 0.05])

    seller.client.v1.customers.create({"email": "mia@example.com"}, seller.options)
    log = stripe_sandbox.wait_for_deliveries(5, type=CREATED, timeout=20)

    assert [entry["result"] for entry in log] == ["retrying"] * 4 + ["failed"]
    assert len(webhook_receiver.received) == 5


def test_an_unreachable_endpoint_is_retried_and_logged(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    stripe_sandbox.set_webhook_url("http://127.0.0.1:9/stripe/webhook/")
    stripe_sandbox.set_retry_delays([0.05, 0.05, 0.05, 0.05])

    creator.client.v1.customers.create({"email": "mia@example.com"}, creator.options)
    log = stripe_sandbox.wait_for_deliveries(5, type=CREATED, timeout=20)

    assert log[0]["status"] is None
    assert "Connection" in log[0]["error"] or "refused" in log[0]["error"]
    assert log[-1]["result"] == "failed"


def test_the_duplicate_switch_delivers_each_event_twice(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    stripe_sandbox.set_delivery(duplicate=True)

    seller.client.v1.customers.create({"email": "mia@example.com"}, seller.options)
    stripe_sandbox.wait_for_deliveries(2, type=CREATED)

    ids = [event["id"] for event in webhook_receiver.events()]
    assert len(ids) == 2
    assert ids[0] == ids[1]


def test_the_drop_switch_loses_the_next_events_but_keeps_them_listable(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    stripe_sandbox.set_delivery(drop=1)

    lost = seller.client.v1.customers.create({"email": "lost@example.com"}, seller.options)
    kept = seller.client.v1.customers.create({"email": "kept@example.com"}, seller.options)
    log = stripe_sandbox.wait_for_deliveries(2, type=CREATED)

    assert [entry["result"] for entry in log] == ["dropped", "delivered"]
    assert [event["data"]["object"]["id"] for event in webhook_receiver.events()] == [kept.id]
    listed = seller.client.v1.events.list({"type": "customer.created"}, seller.options)
    assert {event.data.object.id for event in listed.data} == {lost.id, kept.id}


def test_the_drop_switch_drops_every_copy_of_a_duplicated_event(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    stripe_sandbox.set_delivery(duplicate=True, drop=1)

    lost = seller.client.v1.customers.create({"email": "lost@example.com"}, seller.options)
    kept = seller.client.v1.customers.create({"email": "kept@example.com"}, seller.options)
    log = stripe_sandbox.wait_for_deliveries(4, type=CREATED)

    delivered = [event["data"]["object"]["id"] for event in webhook_receiver.events()]
    assert delivered == [kept.id, kept.id]
    assert sorted((entry["copy"], entry["result"]) for entry in log if entry["result"] == "dropped") == [
        (1, "dropped"),
        (2, "dropped"),
    ]
    assert stripe_sandbox.delivery_settings()["drop"] == 0
    listed = seller.client.v1.events.list({"type": "customer.created"}, seller.options)
    assert {event.data.object.id for event in listed.data} == {lost.id, kept.id}


def test_a_dropped_event_is_not_retried_when_the_endpoint_fails(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    webhook_receiver.answers = [500] * 10
    stripe_sandbox.set_retry_delays([0.05, 0.05])
    stripe_sandbox.set_delivery(drop=1)

    seller.client.v1.customers.create({"email": "lost@example.com"}, seller.options)
    log = stripe_sandbox.wait_for_deliveries(1, type=CREATED)

    assert [entry["result"] for entry in log] == ["dropped"]
    assert webhook_receiver.received == []


def test_deliveries_run_in_parallel_each_event_once_and_signed(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    stripe_sandbox.set_delivery(concurrency=8)
    webhook_receiver.delay = 0.05

    created = {seller.client.v1.customers.create({"email": f"b{n}@example.com"}, seller.options).id for n in range(40)}
    stripe_sandbox.wait_for_deliveries(40, type=CREATED, timeout=30)

    events = [
        stripe.Webhook.construct_event(item.body.decode(), item.headers["Stripe-Signature"], SECRET)
        for item in webhook_receiver.received
    ]
    assert sorted(event.data.object.id for event in events) == sorted(created)
    assert len({event.id for event in events}) == 40
    assert 1 < webhook_receiver.most_in_flight <= 8


def test_parallel_deliveries_with_duplicates_deliver_each_event_twice(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    stripe_sandbox.set_delivery(duplicate=True, concurrency=4)
    webhook_receiver.delay = 0.02

    for n in range(20):
        seller.client.v1.customers.create({"email": f"b{n}@example.com"}, seller.options)
    stripe_sandbox.wait_for_deliveries(40, type=CREATED, timeout=30)

    ids = [event["id"] for event in webhook_receiver.events()]
    assert len(ids) == 40
    assert all(ids.count(event_id) == 2 for event_id in ids)
    assert 1 < webhook_receiver.most_in_flight <= 4


def test_a_concurrency_of_one_delivers_one_at_a_time(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    stripe_sandbox.set_delivery(concurrency=1)
    webhook_receiver.delay = 0.02

    for n in range(10):
        seller.client.v1.customers.create({"email": f"b{n}@example.com"}, seller.options)
    stripe_sandbox.wait_for_deliveries(10, type=CREATED)

    assert webhook_receiver.most_in_flight == 1


def test_eight_deliveries_are_in_flight_at_once_unless_the_command_line_says(tmp_path: Path) -> None:
    default = SandboxServer(("127.0.0.1", 0), state_dir=tmp_path / "a", webhook_url="", webhook_secret=SECRET)
    chosen = SandboxServer(
        ("127.0.0.1", 0), state_dir=tmp_path / "b", webhook_url="", webhook_secret=SECRET, delivery_concurrency=2
    )
    try:
        assert default.store.state["delivery"]["concurrency"] == 8
        assert chosen.store.state["delivery"]["concurrency"] == 2
    finally:
        default.server_close()
        chosen.server_close()


def test_the_delivery_concurrency_is_checked(stripe_sandbox: StripeSandbox) -> None:
    with pytest.raises(AssertionError, match="concurrency"):
        stripe_sandbox.set_delivery(concurrency=0)


def test_the_delay_switch_holds_each_delivery_back(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator
) -> None:
    stripe_sandbox.set_delivery(delay_ms=600)

    started = time.monotonic()
    seller.client.v1.customers.create({"email": "mia@example.com"}, seller.options)
    time.sleep(0.3)
    early = len(webhook_receiver.received)
    stripe_sandbox.wait_for_deliveries(1, type=CREATED)

    assert early == 0
    assert time.monotonic() - started >= 0.6
    assert len(webhook_receiver.received) == 1


@pytest.mark.parametrize("concurrency", [1, 8])
def test_the_reorder_switch_delivers_events_due_together_newest_first(
    stripe_sandbox: StripeSandbox, webhook_receiver: WebhookReceiver, seller: Creator, concurrency: int
) -> None:
    session = seller.session(seller.price(1500))
    stripe_sandbox.wait_for_deliveries()
    webhook_receiver.received.clear()
    stripe_sandbox.set_delivery(reorder=True, concurrency=concurrency)

    stripe_sandbox.pay_checkout(session.id)
    stripe_sandbox.wait_for_deliveries()

    types = webhook_receiver.types()
    assert types[0] == "checkout.session.completed"
    assert types.index("payment_intent.succeeded") < types.index("payment_intent.created")
    created_order = [e.type for e in reversed(seller.client.v1.events.list({"limit": 100}, seller.options).data)]
    assert sorted(types) == sorted(created_order[-len(types) :])


def test_without_a_webhook_url_events_are_only_listed(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    creator.client.v1.customers.create({"email": "mia@example.com"}, creator.options)

    log = stripe_sandbox.wait_for_deliveries(1, type=CREATED)

    assert log[0]["result"] == "no_endpoint"
    assert creator.client.v1.events.list({"type": "customer.created"}, creator.options).data
