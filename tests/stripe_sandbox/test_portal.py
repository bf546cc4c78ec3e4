"""The billing portal: configurations on a connected account, and the hosted page that follows them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest
import stripe

from tests.stripe_sandbox.conftest import Creator
from tests.stripe_sandbox.control import StripeSandbox

DAY = 24 * 60 * 60
EVERYTHING: dict[str, Any] = {
    "business_profile": {"headline": "Yoga with Olive: your membership"},
    "features": {
        "payment_method_update": {"enabled": True},
        "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
        "invoice_history": {"enabled": True},
    },
    "default_return_url": "http://localhost:8000/account/memberships/",
}


def configure(creator: Creator, **params: Any) -> Any:
    return creator.client.v1.billing_portal.configurations.create({**EVERYTHING, **params}, creator.options)


def subscribed(stripe_sandbox: StripeSandbox, creator: Creator, card: str = "4242424242424242") -> Any:
    session = creator.session(creator.price(2000, interval="month"), customer_email="mia@example.com")
    assert stripe_sandbox.pay_checkout(session.id, card=card).paid
    return creator.client.v1.checkout.sessions.retrieve(session.id, options=creator.options)


def portal_url(creator: Creator, customer: str, **params: Any) -> str:
    session = creator.client.v1.billing_portal.sessions.create({"customer": customer, **params}, creator.options)
    return str(session.url)


def refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    body = caught.value.json_body
    assert isinstance(body, dict)
    error: dict[str, Any] = {"status": caught.value.http_status, **body["error"]}
    return error


# --- Configurations --------------------------------------------------------------------------
def test_an_account_without_a_configuration_cannot_open_a_portal_session(creator: Creator) -> None:
    customer = creator.client.v1.customers.create({"email": "mia@example.com"}, creator.options)

    error = refusal(
        lambda: creator.client.v1.billing_portal.sessions.create({"customer": customer.id}, creator.options)
    )

    assert creator.client.v1.billing_portal.configurations.list(options=creator.options).data == []
    assert (error["status"], error["type"]) == (400, "invalid_request_error")
    assert error["message"] == (
        "You can't create a portal session in test mode until you save your customer portal settings in test mode "
        "at https://dashboard.stripe.com/test/settings/billing/portal."
    )


def test_the_first_configuration_is_the_default_and_sessions_use_it(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    customer = creator.client.v1.customers.create({"email": "mia@example.com"}, creator.options)
    configurations = creator.client.v1.billing_portal.configurations

    first = configure(creator, metadata={"platform": "memberships"})
    second = configure(creator, features={"invoice_history": {"enabled": True}})
    plain = creator.client.v1.billing_portal.sessions.create({"customer": customer.id}, creator.options)
    chosen = creator.client.v1.billing_portal.sessions.create(
        {"customer": customer.id, "configuration": second.id, "return_url": "http://localhost:8000/back/"},
        creator.options,
    )
    expanded = creator.client.v1.billing_portal.sessions.create(
        {"customer": customer.id, "expand": ["configuration"]}, creator.options
    )

    assert (first.is_default, second.is_default) == (True, False)
    assert first.object == "billing_portal.configuration"
    assert first.active is True
    assert first.application == stripe_sandbox.client_id  # made by the platform's Connect application
    assert first.business_profile.headline == "Yoga with Olive: your membership"
    assert first.features.subscription_cancel.mode == "at_period_end"
    assert first.features.payment_method_update.enabled is True
    assert first.features.customer_update.enabled is False
    assert first.default_return_url == "http://localhost:8000/account/memberships/"
    assert first.metadata.to_dict() == {"platform": "memberships"}
    assert (second.features.invoice_history.enabled, second.features.subscription_cancel.enabled) == (True, False)
    assert [c.id for c in configurations.list({"is_default": True}, creator.options).data] == [first.id]
    assert [c.id for c in configurations.list({"is_default": False}, creator.options).data] == [second.id]
    assert [c.id for c in configurations.list(options=creator.options).data] == [second.id, first.id]
    assert (plain.configuration, plain.return_url) == (first.id, "http://localhost:8000/account/memberships/")
    assert (chosen.configuration, chosen.return_url) == (second.id, "http://localhost:8000/back/")
    assert expanded.configuration.id == first.id


def test_a_configuration_is_retrieved_updated_and_deactivated(creator: Creator) -> None:
    configurations = creator.client.v1.billing_portal.configurations
    default = configure(creator)
    other = configure(creator)
    customer = creator.client.v1.customers.create({"email": "mia@example.com"}, creator.options)

    updated = configurations.update(
        default.id,
        {
            "features": {"subscription_cancel": {"mode": "immediately"}},
            "business_profile": {"headline": "Olive's studio"},
            "metadata": {"version": "2"},
        },
        creator.options,
    )
    configurations.update(other.id, {"active": False}, creator.options)
    retrieved = configurations.retrieve(default.id, options=creator.options)
    refused = refusal(lambda: configurations.update(default.id, {"active": False}, creator.options))
    inactive = refusal(
        lambda: creator.client.v1.billing_portal.sessions.create(
            {"customer": customer.id, "configuration": other.id}, creator.options
        )
    )
    missing = refusal(lambda: configurations.retrieve("bpc_1Nothing", options=creator.options))

    assert updated.features.subscription_cancel.to_dict() == {
        **default.features.subscription_cancel.to_dict(),
        "mode": "immediately",
    }
    assert updated.features.payment_method_update.enabled is True  # untouched features stay
    assert retrieved.business_profile.headline == "Olive's studio"
    assert retrieved.metadata.to_dict() == {"version": "2"}
    assert retrieved.updated >= default.updated
    assert [c.id for c in configurations.list({"active": False}, creator.options).data] == [other.id]
    assert refused["param"] == "active"
    assert inactive["param"] == "configuration"
    assert (missing["status"], missing["code"]) == (404, "resource_missing")
    types = [event.type for event in creator.client.v1.events.list(options=creator.options).data]
    assert types.count("billing_portal.configuration.created") == 2
    assert types.count("billing_portal.configuration.updated") == 2  # not the refused one


def test_configurations_are_paged_like_every_list(creator: Creator) -> None:
    made = [configure(creator).id for _ in range(3)]

    page = creator.client.v1.billing_portal.configurations.list({"limit": 2}, creator.options)
    rest = creator.client.v1.billing_portal.configurations.list(
        {"limit": 2, "starting_after": page.data[-1].id}, creator.options
    )

    assert ([c.id for c in page.data], page.has_more) == ([made[2], made[1]], True)
    assert ([c.id for c in rest.data], rest.has_more) == ([made[0]], False)


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"features": {"invoice_history": {"enabled": True}}, "colour": "red"}, "colour", "parameter_unknown"),
        ({"features": {"invoice_history": {"enabled": True, "pdf": True}}}, "features[invoice_history][pdf]", None),
        ({"features": {"teleport": {"enabled": True}}}, "features[teleport]", "parameter_unknown"),
        (
            {"features": {"subscription_cancel": {"enabled": True, "mode": "later"}}},
            "features[subscription_cancel][mode]",
            None,
        ),
        (
            {"features": {"subscription_cancel": {"mode": "immediately"}}},
            "features[subscription_cancel][enabled]",
            "parameter_missing",
        ),
        ({"business_profile": {"headline": "Hi"}}, "features", "parameter_missing"),
        (
            {"features": {"invoice_history": {"enabled": True}}, "business_profile": {"logo": "x"}},
            "business_profile[logo]",
            None,
        ),
        (
            {"features": {"invoice_history": {"enabled": True}}, "default_return_url": "localhost"},
            "default_return_url",
            None,
        ),
        ({"features": {"subscription_update": {"enabled": True}}}, "features[subscription_update][enabled]", None),
        ({"features": {"invoice_history": {"enabled": True}}, "active": False}, "active", "parameter_unknown"),
    ],
)
def test_configuration_parameters_are_checked_as_stripe_checks_them(
    creator: Creator, params: dict[str, Any], param: str, code: str | None
) -> None:
    error = refusal(lambda: creator.client.v1.billing_portal.configurations.create(params, creator.options))

    assert (error["status"], error["param"]) == (400, param)
    if code:
        assert error["code"] == code
    assert creator.client.v1.billing_portal.configurations.list(options=creator.options).data == []


def test_a_session_names_an_existing_configuration_of_its_account(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    customer = creator.client.v1.customers.create({"email": "mia@example.com"}, creator.options)
    elsewhere = stripe_sandbox.client().v1.billing_portal.configurations.create(
        {"features": {"invoice_history": {"enabled": True}}}
    )

    error = refusal(
        lambda: creator.client.v1.billing_portal.sessions.create(
            {"customer": customer.id, "configuration": elsewhere.id}, creator.options
        )
    )

    assert elsewhere.application is None  # the platform's own
    assert (error["status"], error["param"], error["message"]) == (
        404,
        "configuration",
        f"No such configuration: '{elsewhere.id}'",
    )


# --- The hosted page -------------------------------------------------------------------------
def test_the_portal_cancels_at_period_end_and_renews(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    configure(creator)
    paid = subscribed(stripe_sandbox, creator)
    url = portal_url(creator, paid.customer, return_url="http://localhost:8000/account/")

    page = stripe_sandbox.portal_page(url)
    canceled = stripe_sandbox.portal_action(url, "cancel", paid.subscription)
    ending = creator.client.v1.subscriptions.retrieve(paid.subscription, options=creator.options)
    renewed = stripe_sandbox.portal_action(url, "renew", paid.subscription)
    kept = creator.client.v1.subscriptions.retrieve(paid.subscription, options=creator.options)

    assert page.status == 200
    assert "$20.00 per month" in page.html
    assert "Yoga with Olive: your membership" in page.html
    assert '<a href="http://localhost:8000/account/">← Return to Yoga with Olive</a>' in page.html
    assert "Cancel plan</button>" in page.html
    assert "Update card</button>" in page.html
    assert canceled.notice == "Your plan will be canceled at the end of the period."
    assert "Renew plan</button>" in canceled.html
    assert "Cancel plan</button>" not in canceled.html
    assert (ending.status, ending.cancel_at_period_end) == ("active", True)
    assert renewed.notice == "Your plan was renewed."
    assert (kept.status, kept.cancel_at_period_end, kept.cancel_at) == ("active", False, None)


def test_the_portal_cancels_at_once_when_its_configuration_says_immediately(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    configure(creator, features={"subscription_cancel": {"enabled": True, "mode": "immediately"}})
    paid = subscribed(stripe_sandbox, creator)
    url = portal_url(creator, paid.customer)

    page = stripe_sandbox.portal_page(url)
    answer = stripe_sandbox.portal_action(url, "cancel", paid.subscription)

    subscription = creator.client.v1.subscriptions.retrieve(paid.subscription, options=creator.options)
    assert "Cancel plan now</button>" in page.html
    assert answer.notice == "Your plan was canceled."
    assert "No subscriptions." in answer.html
    assert (subscription.status, subscription.cancellation_details.reason) == ("canceled", "cancellation_requested")
    deleted = creator.client.v1.events.list({"type": "customer.subscription.deleted"}, creator.options).data
    assert [event.data.object.id for event in deleted] == [paid.subscription]


def test_the_portal_offers_only_what_its_configuration_enables(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    configure(creator, features={"invoice_history": {"enabled": False}}, default_return_url="")
    paid = subscribed(stripe_sandbox, creator)
    url = portal_url(creator, paid.customer)

    page = stripe_sandbox.portal_page(url)
    cancel = stripe_sandbox.portal_action(url, "cancel", paid.subscription)
    card = stripe_sandbox.portal_action(url, "card", card="5555555555554444")

    assert page.status == 200
    assert "Return to" not in page.html
    for absent in ("Cancel plan", "Update card", "Invoice history", 'name="card_number"'):
        assert absent not in page.html
    assert "Visa •••• 4242, expires 12/2034" in page.html  # the card on file is still shown
    assert (cancel.status, cancel.error) == (400, "This change is not available in this portal.")
    assert (card.status, card.error) == (400, "This change is not available in this portal.")
    subscription = creator.client.v1.subscriptions.retrieve(paid.subscription, options=creator.options)
    assert subscription.cancel_at_period_end is False
    assert len(creator.client.v1.payment_methods.list({"customer": paid.customer}, creator.options).data) == 1


def test_the_portal_refuses_another_customers_subscription(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    configure(creator)
    mine = subscribed(stripe_sandbox, creator)
    theirs = subscribed(stripe_sandbox, creator)

    answer = stripe_sandbox.portal_action(portal_url(creator, mine.customer), "cancel", theirs.subscription)

    assert answer.status == 400
    subscription = creator.client.v1.subscriptions.retrieve(theirs.subscription, options=creator.options)
    assert subscription.cancel_at_period_end is False


def test_the_portal_lists_invoices_with_their_date_amount_and_status(
    stripe_sandbox: StripeSandbox, creator: Creator
) -> None:
    configure(creator)
    paid = subscribed(stripe_sandbox, creator)
    invoice = creator.client.v1.invoices.retrieve(paid.invoice, options=creator.options)
    stripe_sandbox.advance_clock(31 * DAY)
    renewal = creator.client.v1.invoices.list({"subscription": paid.subscription}, creator.options).data[0]
    creator.client.v1.refunds.create({"payment_intent": _intent(creator, invoice.id)}, creator.options)

    page = stripe_sandbox.portal_page(portal_url(creator, paid.customer))

    assert "<h1>Invoice history</h1>" in page.html
    assert invoice_rows(page.html) == [
        (renewal.id, day(renewal.created), "$20.00", "Paid"),
        (invoice.id, day(invoice.created), "$20.00", "Refunded"),
    ]


def invoice_rows(html: str) -> list[tuple[str, ...]]:
    pattern = r'<tr data-invoice="([^"]+)"><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>'
    return [tuple(unescape(part) for part in row) for row in re.findall(pattern, html)]


def day(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return f"{moment:%b} {moment.day}, {moment.year}"


def _intent(creator: Creator, invoice_id: str) -> str:
    payments = creator.client.v1.invoice_payments.list({"invoice": invoice_id}, creator.options)
    return str(payments.data[0].payment.payment_intent)


def test_a_new_card_in_the_portal_pays_a_failed_renewal(stripe_sandbox: StripeSandbox, creator: Creator) -> None:
    configure(creator)
    paid = subscribed(stripe_sandbox, creator, card="4000000000000341")
    subscription = creator.client.v1.subscriptions.retrieve(paid.subscription, options=creator.options)
    stripe_sandbox.advance_clock(subscription["items"].data[0].current_period_end - stripe_sandbox.now() + 60)
    assert creator.client.v1.subscriptions.retrieve(paid.subscription, options=creator.options).status == "past_due"
    url = portal_url(creator, paid.customer)

    declined = stripe_sandbox.portal_action(url, "card", card="4000 0000 0000 0002")
    invalid = stripe_sandbox.portal_action(url, "card", card="4242 4242 4242 4241")
    updated = stripe_sandbox.portal_action(url, "card", card="4242 4242 4242 4242", name="Mia")

    assert (declined.status, declined.error) == (400, "Your card was declined.")
    assert (invalid.status, invalid.error) == (400, "Your card number is invalid.")
    assert (updated.status, updated.notice) == (200, "Your card was updated.")
    assert "Visa •••• 4242" in updated.html
    recovered = creator.client.v1.subscriptions.retrieve(paid.subscription, options=creator.options)
    invoice = creator.client.v1.invoices.retrieve(recovered.latest_invoice, options=creator.options)
    assert recovered.status == "active"
    assert (invoice.status, invoice.billing_reason) == ("paid", "subscription_cycle")
    charge = creator.client.v1.payment_intents.retrieve(
        _intent(creator, invoice.id), {"expand": ["latest_charge"]}, creator.options
    ).latest_charge
    assert charge.payment_method_details.card.last4 == "4242"
    stripe_sandbox.advance_clock(40 * DAY)
    renewed = creator.client.v1.invoices.list({"subscription": recovered.id, "status": "paid"}, creator.options)
    assert len(renewed.data) == 3


def test_an_unknown_portal_session_is_an_expired_link(stripe_sandbox: StripeSandbox) -> None:
    page = stripe_sandbox.portal_page(f"{stripe_sandbox.url}/p/session/bps_1Nothing")

    assert page.status == 404
    assert "This link has expired." in page.html
