"""A partner's own Stripe account: Connect OAuth through the offline sandbox, a state bound to
the member and the purpose, disconnection, and the webhooks about partner accounts."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from accounts.models import User
from billing import stripe_gateway as gateway
from billing.models import StripeAccount, WebhookEvent
from billing.selectors import stripe_account_current, stripe_connected
from tests.affiliates.conftest import PARTNER_ACCOUNT, partner_account
from tests.billing.helpers import event, post_event
from tests.factories import ACCOUNT_ID

pytestmark = pytest.mark.django_db

PARTNERS = "/partners/"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _start(client: Client) -> str:
    start = client.post("/partners/stripe/connect/")
    assert start.status_code == 302
    return str(start["Location"])


def _connect(client: Client, user: User, sandbox: Any, **authorize: Any) -> Any:
    client.force_login(user)
    back = sandbox.authorize_oauth(_start(client), **authorize)
    assert urlsplit(back).path == "/partners/stripe/return/"
    return client.get(_path(back), follow=True)


def test_a_member_connects_their_own_stripe_account_through_the_sandbox(client, partner_user, stripe_sandbox) -> None:
    page = _connect(client, partner_user, stripe_sandbox, business_name="Pat's Shop").content.decode()
    account = StripeAccount.objects.get()
    assert "Your Stripe account" in page
    assert f"Your Stripe account {account.account_id} is connected." in page
    assert account.purpose == StripeAccount.Purpose.PARTNER
    assert account.owner == partner_user
    assert account.connected_by == partner_user
    # It is not the creator's: nothing can be sold on it.
    assert stripe_account_current() is None
    assert not stripe_connected()


def test_a_creator_account_and_partner_accounts_live_side_by_side(
    client, owner, partner_user, outsider, stripe_sandbox
) -> None:
    _connect(client, partner_user, stripe_sandbox)
    _connect(client, outsider, stripe_sandbox, email="otto@example.com")
    client.force_login(owner)
    start = client.post("/dashboard/settings/integrations/stripe/connect/")
    client.get(_path(stripe_sandbox.authorize_oauth(start["Location"])), follow=True)
    creator = stripe_account_current()
    assert creator is not None
    assert creator.owner is None
    assert StripeAccount.objects.partner_of(partner_user.pk).count() == 1
    assert StripeAccount.objects.partner_of(outsider.pk).count() == 1
    assert StripeAccount.objects.connected().count() == 3


def test_reconnecting_replaces_the_partners_own_account_only(client, partner_user, outsider, stripe_sandbox) -> None:
    _connect(client, outsider, stripe_sandbox)
    _connect(client, partner_user, stripe_sandbox)
    first = StripeAccount.objects.partner_of(partner_user.pk).get()
    _connect(client, partner_user, stripe_sandbox)
    second = StripeAccount.objects.partner_of(partner_user.pk).get()
    assert second.account_id != first.account_id
    first.refresh_from_db()
    assert first.disconnected_at is not None
    assert StripeAccount.objects.partner_of(outsider.pk).count() == 1


def test_a_state_started_by_another_member_connects_nothing(client, partner_user, outsider, stripe_sandbox) -> None:
    """The state is bound to the member who started: a session whose state names someone else
    (another person logged in since, a forged session) connects nothing for anyone."""
    client.force_login(partner_user)
    back = stripe_sandbox.authorize_oauth(_start(client))
    session = client.session
    session["affiliates_oauth_state"] = {**session["affiliates_oauth_state"], "user": outsider.pk}
    session.save()
    page = client.get(_path(back), follow=True).content.decode()
    assert "does not match a connection you started here" in page
    assert not StripeAccount.objects.exists()


def test_a_state_from_another_browser_connects_nothing(partner_user, outsider, stripe_sandbox) -> None:
    first, second = Client(), Client()
    first.force_login(partner_user)
    back = stripe_sandbox.authorize_oauth(_start(first))
    second.force_login(outsider)
    _start(second)  # the outsider has a state of their own, which is not this one
    page = second.get(_path(back), follow=True).content.decode()
    assert "does not match" in page
    assert not StripeAccount.objects.exists()


def test_a_partners_state_cannot_connect_the_creators_account(client, owner, partner_user, stripe_sandbox) -> None:
    client.force_login(partner_user)
    authorize = _start(client)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    # The creator's return page is staff only, and has a state of its own.
    assert client.get(f"/dashboard/settings/integrations/stripe/return/?code=x&state={state}").status_code == 403
    client.force_login(owner)
    page = client.get(f"/dashboard/settings/integrations/stripe/return/?code=x&state={state}", follow=True)
    assert "does not match a connection started here" in page.content.decode()
    assert not StripeAccount.objects.exists()


def test_staff_cannot_connect_a_partner_account(client, owner) -> None:
    client.force_login(owner)
    assert client.post("/partners/stripe/connect/").status_code == 403
    assert client.get("/partners/stripe/return/?code=x&state=y").status_code == 403


def test_an_account_connected_as_the_creators_cannot_be_connected_as_a_partners(
    client, partner_user, stripe_account, monkeypatch
) -> None:
    monkeypatch.setattr(gateway, "oauth_token", lambda *, code: ACCOUNT_ID)
    monkeypatch.setattr(
        gateway,
        "account_retrieve",
        lambda *, account_id: gateway.AccountStatus(
            account_id=account_id,
            livemode=False,
            charges_enabled=True,
            payouts_enabled=True,
            details_submitted=True,
            display_name="Creator",
            requirements_due=(),
        ),
    )
    client.force_login(partner_user)
    state = parse_qs(urlsplit(_start(client)).query)["state"][0]
    page = client.get(f"/partners/stripe/return/?code=ac_1&state={state}", follow=True).content.decode()
    assert "already connected here by someone else" in page
    assert StripeAccount.objects.connected().get() == stripe_account


def test_a_partner_disconnects_their_account_on_stripe_too(client, partner_user, stripe_sandbox) -> None:
    _connect(client, partner_user, stripe_sandbox)
    account = StripeAccount.objects.get()
    page = client.post("/partners/stripe/disconnect/", follow=True).content.decode()
    assert "Your Stripe account is disconnected." in page
    account.refresh_from_db()
    assert account.disconnected_at is not None
    assert account.disconnected_by == partner_user
    assert gateway.account_access_revoked(account_id=account.account_id)


def test_the_declined_authorization_connects_nothing(client, partner_user, stripe_sandbox) -> None:
    page = _connect(client, partner_user, stripe_sandbox, deny=True).content.decode()
    assert "You declined the connection in Stripe" in page
    assert not StripeAccount.objects.exists()


# --- The database's rules --------------------------------------------------------------------
def test_one_connected_creator_account_is_still_the_rule(stripe_account) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        StripeAccount.objects.create(account_id="acct_2Creator")


def test_one_connected_partner_account_per_member(partner_user, outsider) -> None:
    partner_account(partner_user)
    partner_account(outsider, "acct_1Other")  # another member may have theirs
    with pytest.raises(IntegrityError), transaction.atomic():
        partner_account(partner_user, "acct_2Partner")


def test_a_partner_account_needs_an_owner_and_the_creators_has_none(partner_user) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        StripeAccount.objects.create(purpose=StripeAccount.Purpose.PARTNER, account_id="acct_nobody")
    with pytest.raises(IntegrityError), transaction.atomic():
        StripeAccount.objects.create(account_id="acct_owned", owner=partner_user)


# --- Webhooks about partner accounts ---------------------------------------------------------
def _status(account_id: str, *, payouts: bool) -> gateway.AccountStatus:
    return gateway.AccountStatus(
        account_id=account_id,
        livemode=False,
        charges_enabled=payouts,
        payouts_enabled=payouts,
        details_submitted=True,
        display_name="Pat's Shop",
        requirements_due=(),
    )


def test_account_updated_refreshes_a_partners_account(client, partner_user, monkeypatch) -> None:
    account = partner_account(partner_user)
    StripeAccount.objects.filter(pk=account.pk).update(payouts_enabled=False)
    monkeypatch.setattr(gateway, "account_retrieve", lambda *, account_id: _status(account_id, payouts=True))
    post_event(client, event("account.updated", {"id": PARTNER_ACCOUNT, "object": "account"}, account=PARTNER_ACCOUNT))
    account.refresh_from_db()
    assert account.payouts_enabled
    assert account.display_name == "Pat's Shop"
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED


def test_a_confirmed_deauthorization_disconnects_a_partners_account(client, partner_user, monkeypatch) -> None:
    partner_account(partner_user)
    monkeypatch.setattr(gateway, "account_access_revoked", lambda *, account_id: account_id == PARTNER_ACCOUNT)
    post_event(
        client,
        event(
            "account.application.deauthorized", {"id": "ca_platform", "object": "application"}, account=PARTNER_ACCOUNT
        ),
    )
    assert not StripeAccount.objects.partner_of(partner_user.pk).exists()
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED


def test_a_forged_deauthorization_of_a_partners_account_disconnects_nothing(client, partner_user, monkeypatch) -> None:
    partner_account(partner_user)
    monkeypatch.setattr(gateway, "account_access_revoked", lambda *, account_id: False)
    post_event(
        client,
        event(
            "account.application.deauthorized", {"id": "ca_platform", "object": "application"}, account=PARTNER_ACCOUNT
        ),
    )
    assert StripeAccount.objects.partner_of(partner_user.pk).exists()
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.FLAGGED


@pytest.mark.parametrize(
    "type_", ["checkout.session.completed", "invoice.paid", "charge.refunded", "customer.subscription.updated"]
)
def test_payment_events_on_a_partners_account_are_ignored(client, partner_user, stripe_account, type_) -> None:
    """Nothing is sold on a partner's account: its payments, refunds and subscriptions are not
    this platform's business, whatever an event says."""
    partner_account(partner_user)
    post_event(client, event(type_, {"id": "obj_1", "object": "x"}, account=PARTNER_ACCOUNT))
    stored = WebhookEvent.objects.get()
    assert stored.status == WebhookEvent.Status.IGNORED
