"""Connect OAuth against the sandbox: the authorize page, the code exchange, deauthorization."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
import stripe

from tests.stripe_sandbox.control import StripeSandbox, redirect_params

REDIRECT = "http://localhost:8000/dashboard/settings/integrations/stripe/return/"


def authorize_url(sandbox: StripeSandbox, state: str = "s3cr3t") -> str:
    return sandbox.client().oauth.authorize_url({"scope": "read_write", "redirect_uri": REDIRECT, "state": state})


def test_the_authorize_page_offers_existing_accounts_and_a_new_one(stripe_sandbox: StripeSandbox) -> None:
    account = stripe_sandbox.create_account("Existing studio")
    parts = urlsplit(authorize_url(stripe_sandbox))
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    html = response.read().decode()

    assert response.status == 200
    assert f"Existing studio ({account['id']})" in html
    assert "Create a new account" in html
    assert "still needs verification" in html
    assert ">Connect</button>" in html
    assert ">Deny</button>" in html


def test_connecting_returns_a_code_and_the_state_and_the_code_buys_a_token(stripe_sandbox: StripeSandbox) -> None:
    client = stripe_sandbox.client()

    redirect = stripe_sandbox.authorize_oauth(authorize_url(stripe_sandbox), business_name="Yoga with Olive")
    params = redirect_params(redirect)
    token = client.oauth.token({"grant_type": "authorization_code", "code": params["code"]})

    assert redirect.startswith(REDIRECT + "?")
    assert params["state"] == "s3cr3t"
    assert params["scope"] == "read_write"
    assert token["livemode"] is False
    assert token["scope"] == "read_write"
    assert token["stripe_user_id"].startswith("acct_")
    account = client.v1.accounts.retrieve(token["stripe_user_id"])
    assert account.business_profile.name == "Yoga with Olive"
    assert account.charges_enabled is True
    assert account.payouts_enabled is True
    own = client.v1.accounts.retrieve_current(options={"stripe_account": token["stripe_user_id"]})
    assert own.id == token["stripe_user_id"]
    authorized = client.v1.events.list({"type": "account.application.authorized"}, {"stripe_account": own.id})
    assert [event.data.object.id for event in authorized.data] == ["ca_sandbox_platform"]


def test_an_existing_account_can_be_chosen(stripe_sandbox: StripeSandbox) -> None:
    existing = stripe_sandbox.create_account("Existing studio")

    redirect = stripe_sandbox.authorize_oauth(authorize_url(stripe_sandbox), account=existing["id"])
    token = stripe_sandbox.client().oauth.token(
        {"grant_type": "authorization_code", "code": redirect_params(redirect)["code"]}
    )

    assert token["stripe_user_id"] == existing["id"]


def test_denying_redirects_with_access_denied(stripe_sandbox: StripeSandbox) -> None:
    redirect = stripe_sandbox.authorize_oauth(authorize_url(stripe_sandbox), deny=True)

    assert redirect_params(redirect) == {
        "error": "access_denied",
        "error_description": "The user denied your request",
        "state": "s3cr3t",
    }


def test_a_reused_code_is_refused_with_invalid_grant(stripe_sandbox: StripeSandbox) -> None:
    client = stripe_sandbox.client()
    code = redirect_params(stripe_sandbox.authorize_oauth(authorize_url(stripe_sandbox)))["code"]
    client.oauth.token({"grant_type": "authorization_code", "code": code})

    with pytest.raises(stripe.oauth_error.InvalidGrantError) as caught:
        client.oauth.token({"grant_type": "authorization_code", "code": code})

    assert "already been used" in str(caught.value.user_message)


def test_an_unknown_code_is_refused_with_invalid_grant(stripe_sandbox: StripeSandbox) -> None:
    with pytest.raises(stripe.oauth_error.InvalidGrantError) as caught:
        stripe_sandbox.client().oauth.token({"grant_type": "authorization_code", "code": "ac_forged"})

    assert caught.value.http_status == 400
    assert "does not exist" in str(caught.value.user_message)


def test_an_account_that_needs_verification_cannot_take_payments(stripe_sandbox: StripeSandbox) -> None:
    client = stripe_sandbox.client()
    redirect = stripe_sandbox.authorize_oauth(authorize_url(stripe_sandbox), needs_verification=True)
    account_id = client.oauth.token({"grant_type": "authorization_code", "code": redirect_params(redirect)["code"]})[
        "stripe_user_id"
    ]
    options = {"stripe_account": account_id}
    product = client.v1.products.create({"name": "Gold"}, options)
    price = client.v1.prices.create({"product": product.id, "unit_amount": 500, "currency": "usd"}, options)

    account = client.v1.accounts.retrieve(account_id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": "http://localhost:8000/ok/",
            },
            options,
        )

    assert account.charges_enabled is False
    assert "business_profile.url" in account.requirements.currently_due
    assert "needs verification" in str(caught.value.user_message)


def test_verifying_an_account_later_sends_account_updated(stripe_sandbox: StripeSandbox) -> None:
    client = stripe_sandbox.client()
    redirect = stripe_sandbox.authorize_oauth(authorize_url(stripe_sandbox), needs_verification=True)
    account_id = client.oauth.token({"grant_type": "authorization_code", "code": redirect_params(redirect)["code"]})[
        "stripe_user_id"
    ]

    stripe_sandbox.update_account(account_id, verified=True)

    assert client.v1.accounts.retrieve(account_id).charges_enabled is True
    events = client.v1.events.list({"type": "account.updated"}, {"stripe_account": account_id})
    assert events.data[0].data.previous_attributes.charges_enabled is False


def test_deauthorizing_revokes_access_and_sends_an_event(stripe_sandbox: StripeSandbox) -> None:
    client = stripe_sandbox.client()
    code = redirect_params(stripe_sandbox.authorize_oauth(authorize_url(stripe_sandbox)))["code"]
    token = client.oauth.token({"grant_type": "authorization_code", "code": code})
    account_id = token["stripe_user_id"]

    answer = client.oauth.deauthorize({"stripe_user_id": account_id})

    assert answer["stripe_user_id"] == account_id
    with pytest.raises(stripe.PermissionError):
        client.v1.customers.list(options={"stripe_account": account_id})
    with pytest.raises(stripe.AuthenticationError):
        stripe_sandbox.client(api_key=token["access_token"]).v1.customers.list()
    sent = stripe_sandbox.wait_for_deliveries(1, type="account.application.deauthorized")
    assert [entry["account"] for entry in sent] == [account_id]
    with pytest.raises(stripe.oauth_error.InvalidClientError):
        client.oauth.deauthorize({"stripe_user_id": account_id})


def test_the_access_token_acts_as_the_connected_account(stripe_sandbox: StripeSandbox) -> None:
    client = stripe_sandbox.client()
    code = redirect_params(stripe_sandbox.authorize_oauth(authorize_url(stripe_sandbox)))["code"]
    token = client.oauth.token({"grant_type": "authorization_code", "code": code})

    customer = stripe_sandbox.client(api_key=token["access_token"]).v1.customers.create({"email": "a@example.com"})

    found = client.v1.customers.retrieve(customer.id, options={"stripe_account": token["stripe_user_id"]})
    assert found.email == "a@example.com"
