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
