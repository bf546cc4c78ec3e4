"""Settings > Integrations > Stripe: connecting, refreshing and disconnecting an account."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from billing import stripe_gateway as gateway
from billing.models import StripeAccount
from billing.selectors import stripe_connected
from tests import factories

pytestmark = pytest.mark.django_db

INTEGRATIONS = "/dashboard/settings/integrations/"


def _ready(account_id: str = "acct_1New", *, charges: bool = True) -> gateway.AccountStatus:
    return gateway.AccountStatus(
        account_id=account_id,
        livemode=False,
        charges_enabled=charges,
        payouts_enabled=charges,
        details_submitted=charges,
        display_name="Olive's Yoga",
        requirements_due=() if charges else ("external_account",),
    )


def _start(client) -> str:
    response = client.post("/dashboard/settings/integrations/stripe/connect/")
    assert response.status_code == 302
    query = parse_qs(urlparse(response["Location"]).query)
    return query["state"][0]


def test_the_page_offers_to_connect_when_nothing_is_connected(client, owner) -> None:
    client.force_login(owner)
    page = client.get(INTEGRATIONS).content.decode()
    assert "Stripe" in page
    assert ">Connect</button>" in page
    assert not stripe_connected()


def test_connect_sends_the_creator_to_stripe_with_a_state_bound_to_the_session(client, owner, settings) -> None:
    settings.STRIPE_API_BASE = None
    client.force_login(owner)
    response = client.post("/dashboard/settings/integrations/stripe/connect/")
    url = urlparse(response["Location"])
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://connect.stripe.com/oauth/authorize"
    assert query["client_id"] == [settings.STRIPE_CONNECT_CLIENT_ID]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == [settings.SITE_URL + "/dashboard/settings/integrations/stripe/return/"]
    assert query["state"][0] == client.session["billing_oauth_state"]


def test_a_successful_connection_shows_the_account(client, owner, monkeypatch) -> None:
    monkeypatch.setattr(gateway, "oauth_token", lambda *, code: "acct_1New" if code == "ac_good" else "")
    monkeypatch.setattr(gateway, "account_retrieve", lambda *, account_id: _ready(account_id))
    client.force_login(owner)
    state = _start(client)
    response = client.get(f"/dashboard/settings/integrations/stripe/return/?code=ac_good&state={state}", follow=True)
    page = response.content.decode()
    assert "Stripe account acct_1New is connected" in page
    assert "acct_1New" in page
    assert "Test" in page
    assert "Disconnect" in page
    account = StripeAccount.objects.get()
    assert account.connected_by == owner
    assert account.charges_enabled
    assert stripe_connected()


def test_an_account_that_needs_verification_is_connected_but_cannot_sell(client, owner, monkeypatch) -> None:
    monkeypatch.setattr(gateway, "oauth_token", lambda *, code: "acct_1Unverified")
    monkeypatch.setattr(gateway, "account_retrieve", lambda *, account_id: _ready(account_id, charges=False))
    client.force_login(owner)
    state = _start(client)
    page = client.get(f"/dashboard/settings/integrations/stripe/return/?code=x&state={state}", follow=True)
    text = page.content.decode()
    assert "needs more information" in text
    assert "complete the verification steps" in text
    assert not stripe_connected()


def test_a_refused_authorization_connects_nothing_and_says_what_to_do(client, owner) -> None:
    client.force_login(owner)
    state = _start(client)
    response = client.get(
        f"/dashboard/settings/integrations/stripe/return/?error=access_denied&error_description=denied&state={state}",
        follow=True,
    )
    text = response.content.decode()
    assert "You declined the connection in Stripe" in text
    assert "Click Connect" in text
    assert not StripeAccount.objects.exists()


def test_a_mismatched_state_connects_nothing(client, owner, monkeypatch) -> None:
    called: list[str] = []

    def exchange(*, code: str) -> str:
        called.append(code)
        return "acct_1"

    monkeypatch.setattr(gateway, "oauth_token", exchange)
    client.force_login(owner)
    _start(client)
    response = client.get("/dashboard/settings/integrations/stripe/return/?code=ac_x&state=forged", follow=True)
    assert "does not match a connection started here" in response.content.decode()
    assert called == []
    assert not StripeAccount.objects.exists()


def test_a_state_is_used_once(client, owner, monkeypatch) -> None:
    monkeypatch.setattr(gateway, "oauth_token", lambda *, code: "acct_1New")
    monkeypatch.setattr(gateway, "account_retrieve", lambda *, account_id: _ready(account_id))
    client.force_login(owner)
    state = _start(client)
    client.get(f"/dashboard/settings/integrations/stripe/return/?code=ac&state={state}")
    again = client.get(f"/dashboard/settings/integrations/stripe/return/?code=ac&state={state}", follow=True)
    assert "does not match a connection started here" in again.content.decode()
    assert StripeAccount.objects.count() == 1


def test_a_failed_token_exchange_is_explained(client, owner, monkeypatch) -> None:
    def refuse(*, code: str) -> str:
        raise gateway.StripeOAuthFailed("invalid_grant", code="invalid_grant")

    monkeypatch.setattr(gateway, "oauth_token", refuse)
    client.force_login(owner)
    state = _start(client)
    response = client.get(f"/dashboard/settings/integrations/stripe/return/?code=old&state={state}", follow=True)
    assert "Stripe refused to complete the connection" in response.content.decode()
    assert not StripeAccount.objects.exists()


def test_stripe_unreachable_during_the_exchange_is_explained(client, owner, settings) -> None:
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: the real SDK fails to connect
    client.force_login(owner)
    state = _start(client)
    response = client.get(f"/dashboard/settings/integrations/stripe/return/?code=ac&state={state}", follow=True)
    assert "We could not reach Stripe" in response.content.decode()
    assert not StripeAccount.objects.exists()


def test_disconnect_revokes_the_connection(client, owner, monkeypatch) -> None:
    factories.stripe_account()
    revoked = []
    monkeypatch.setattr(gateway, "oauth_deauthorize", lambda *, account_id: revoked.append(account_id))
    client.force_login(owner)
    response = client.post("/dashboard/settings/integrations/stripe/disconnect/", follow=True)
    assert "Stripe is disconnected" in response.content.decode()
    assert revoked == ["acct_1CreatorTest000"]
    account = StripeAccount.objects.get()
    assert account.disconnected_by == owner
    assert not stripe_connected()
    assert ">Connect</button>" in client.get(INTEGRATIONS).content.decode()


def test_disconnect_keeps_the_account_when_stripe_is_down(client, owner, settings) -> None:
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    factories.stripe_account()
    client.force_login(owner)
    response = client.post("/dashboard/settings/integrations/stripe/disconnect/", follow=True)
    assert "still connected" in response.content.decode()
    assert stripe_connected()


def test_members_cannot_connect_stripe(client, member) -> None:
    client.force_login(member)
    assert client.post("/dashboard/settings/integrations/stripe/connect/").status_code == 403
    assert client.get(INTEGRATIONS).status_code == 403


def test_the_integrations_page_runs_a_constant_number_of_queries(client, owner, django_assert_num_queries) -> None:
    account = factories.stripe_account()
    StripeAccount.objects.filter(pk=account.pk).update(connected_by=owner)
    client.force_login(owner)
    with django_assert_num_queries(2):  # user, the account with who connected it (the session is cached)
        page = client.get(INTEGRATIONS).content.decode()
    assert "acct_1CreatorTest000" in page
    assert "by owner@example.com" in page


def test_disconnecting_with_active_subscribers_asks_for_confirmation_first(client, owner, monkeypatch) -> None:
    from accounts.models import User
    from memberships.models import Entitlement

    factories.stripe_account()
    offer = factories.paid_offer(recurring=True)
    buyer = User.objects.create_user("subscriber@example.com")
    Entitlement.objects.create(user=buyer, offer=offer, source=Entitlement.Source.SUBSCRIPTION)
    revoked: list[str] = []
    monkeypatch.setattr(gateway, "oauth_deauthorize", lambda *, account_id: revoked.append(account_id))
    client.force_login(owner)
    response = client.post("/dashboard/settings/integrations/stripe/disconnect/")
    assert response.status_code == 409
    assert "1 member pays by subscription through this account" in response.content.decode()
    assert stripe_connected()
    assert revoked == []
    client.post("/dashboard/settings/integrations/stripe/disconnect/", {"confirm": "yes"})
    assert not stripe_connected()
    assert revoked == ["acct_1CreatorTest000"]
