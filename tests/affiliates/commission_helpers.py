"""Shared by the commission tests: a creator and a partner connected through the sandbox, a
resell offer, a buyer who follows the partner's link and pays on the hosted checkout, every
webhook processed on the live server (by CI's real worker in its second pass), and the
partner's payout once the hold is over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import time_machine
from django.test import Client

from accounts.models import User
from affiliates import commissions
from affiliates.models import Commission, ReferralLink
from billing.models import CheckoutAttempt, Payment, StripeAccount
from billing.tasks import sync_offer_to_stripe
from memberships.models import Offer
from tests.affiliates.conftest import resell_offer
from tests.billing import lifecycle_helpers as h
from tests.billing.test_stripe_flows import _paid, _wait

BUYER = "bea@example.com"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def oauth(start_url: str, user: User, sandbox: Any, **authorize: Any) -> None:
    client = Client()
    client.force_login(user)
    start = client.post(start_url)
    assert start.status_code == 302, start.content.decode()[:500]
    client.get(_path(sandbox.authorize_oauth(start["Location"], **authorize)), follow=True)


@dataclass
class World:
    sandbox: Any
    creator: StripeAccount
    partner_user: User
    offer: Offer
    link: ReferralLink

    @property
    def partner_account(self) -> StripeAccount:
        return StripeAccount.objects.partner_of(self.partner_user.pk).get()


def world(
    *,
    owner: User,
    partner_user: User,
    sandbox: Any,
    live_server: Any,
    recurring: bool = False,
    amount: int = 2500,
    percent: int = 20,
) -> World:
    """Both accounts connected, the resell offer synced, the partner joined; then the sandbox's
    webhooks go to the live server (with SQLite it shares the test's connection, so only once
    the setup is written)."""
    oauth("/dashboard/settings/integrations/stripe/connect/", owner, sandbox)
    oauth("/partners/stripe/connect/", partner_user, sandbox, email=partner_user.email)
    offer = resell_offer(recurring=recurring, amount=amount, percent=percent, slug="inner-circle", title="Inner Circle")
    offer.stripe_price.delete()  # made up by the factory: sync the real one to the sandbox
    sync_offer_to_stripe.apply(args=[offer.pk])
    offer.refresh_from_db()
    client = Client()
    client.force_login(partner_user)
    assert client.post(f"/partners/offers/{offer.pk}/join/").status_code == 302
    link = ReferralLink.objects.get(partner__user=partner_user, offer=offer)
    sandbox.set_webhook_url(live_server.url + "/stripe/webhook/")
    h.settle(sandbox)
    return World(
        sandbox=sandbox,
        creator=StripeAccount.objects.creator().get(),
        partner_user=partner_user,
        offer=offer,
        link=link,
    )


def referred_purchase(w: World, *, email: str = BUYER, card: str = h.PAYS) -> CheckoutAttempt:
    """A visitor follows the partner's link and pays; returns once everything has settled."""
    buyer = Client()
    assert buyer.get(f"/offers/{w.offer.slug}/?ref={w.link.code}").status_code == 302
    with h.deliveries_held(w.sandbox, ms=2000):
        response = buyer.post(f"/offers/{w.offer.slug}/checkout/pay/", {"email": email, "full_name": "Bea Buyer"})
    assert response.status_code == 302, response.content.decode()[:2000]
    attempt = CheckoutAttempt.objects.filter(email__iexact=email).latest("created_at")
    result = w.sandbox.pay_checkout(attempt.stripe_session_id, card=card, email=email, name="Bea Buyer")
    assert result.paid, result.error
    _wait(lambda: _paid(attempt), what="the purchase to be fulfilled")
    h.settle(w.sandbox)
    attempt.refresh_from_db()
    return attempt


def commissions_of(attempt: CheckoutAttempt) -> list[Commission]:
    return list(Commission.objects.filter(payment__attempt=attempt).order_by("payment__paid_at", "pk"))


def payments_of(attempt: CheckoutAttempt) -> list[Payment]:
    return list(Payment.objects.filter(attempt=attempt).order_by("paid_at", "pk"))


def pay_due(w: World, *, at: datetime | None = None) -> int:
    """Run the beat's payout job as if its clock read ``at`` (by default just past every hold),
    then let the transfers it queued be made."""
    if at is None:
        latest = max(Commission.objects.values_list("hold_until", flat=True))
        at = latest + timedelta(minutes=1)
    # The transfers' own events wait until the queued writes are done (see deliveries_held).
    with h.deliveries_held(w.sandbox), time_machine.travel(at, tick=False):
        queued = commissions.commissions_pay_due(now=at)
    h.settle(w.sandbox)
    return queued


def transfers(w: World) -> list[dict[str, Any]]:
    """The platform's transfers as the sandbox has them, oldest first."""
    listed = w.sandbox.client().v1.transfers.list({"limit": 100})
    return sorted((transfer.to_dict() for transfer in listed.data), key=lambda transfer: transfer["created"])


def refund(w: World, payment: Payment, amount: int | None = None) -> None:
    """A refund made in Stripe's dashboard by the creator, with the application fee refunded in
    proportion (what the platform's own Refund does too)."""
    params: dict[str, Any] = {"payment_intent": payment.payment_intent_id, "refund_application_fee": True}
    if amount is not None:
        params["amount"] = amount
    w.sandbox.client().v1.refunds.create(params, {"stripe_account": w.creator.account_id})
    h.settle(w.sandbox)
