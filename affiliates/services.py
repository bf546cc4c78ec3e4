"""Writes of the partner program: joining, the creator's pause / resume / remove, clicks and
the attribution of a checkout to a referral link."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from affiliates import selectors
from affiliates.models import Attribution, Partner, ReferralClick, ReferralLink
from billing.models import CheckoutAttempt, StripeAccount
from memberships.models import Offer


class JoinRefused(Exception):
    """Why a member cannot join a program, in words for them."""


def application_fee_amount(*, amount: int, percent: int) -> int:
    """The commission on a one-time payment of ``amount`` minor units: ``percent`` of it,
    rounded half up to the minor unit (1999 at 15% is 299.85, so 300; 1990 at 15% is 298.5,
    so 299)."""
    return (amount * percent + 50) // 100


@transaction.atomic
def partner_join(*, user: User, offer: Offer) -> ReferralLink:
    """Make the member a partner (once) and give them their link for the offer (once).

    Raises ``JoinRefused`` when the member may not join: staff, an unproven email, no
    connected Stripe account, a paused or removed partner, or an offer not open to partners.
    """
    if user.is_staff:
        raise JoinRefused("The community's staff cannot join its partner programs.")
    if user.email_verified_at is None:
        raise JoinRefused("Confirm your email address first: use the login link we email you.")
    if not StripeAccount.objects.partner_of(user.pk).exists():
        raise JoinRefused("Connect your Stripe account first: commissions are paid into it.")
    if not selectors.resell_offers().filter(pk=offer.pk).exists():
        raise JoinRefused("This offer has no partner program.")
    partner, _ = Partner.objects.get_or_create(user=user)
    if partner.status != Partner.Status.ACTIVE:
        raise JoinRefused("Your partnership is paused or ended by the creator, so you cannot join programs.")
    link, _ = ReferralLink.objects.get_or_create(partner=partner, offer=offer)
    return link


@transaction.atomic
def partner_status_set(*, partner: Partner, status: Partner.Status) -> int:
    """Pause, resume or remove a partner. Pausing or removing stops their links attributing at
    once (``selectors.link_live`` reads the status on every visit and every checkout). A
    removed partner stays removed."""
    return (
        Partner.objects.filter(pk=partner.pk)
        .exclude(status=Partner.Status.REMOVED)
        .update(status=status, status_changed_at=timezone.now())
    )


@transaction.atomic
def referral_click_record(*, link: ReferralLink) -> ReferralClick:
    return ReferralClick.objects.create(link=link)


def _is_self_referral(link: ReferralLink, attempt: CheckoutAttempt, buyer: User | None) -> bool:
    partner_user = link.partner.user
    if buyer is not None and buyer.pk == partner_user.pk:
        return True
    return attempt.email.strip().lower() == partner_user.email.strip().lower()


@transaction.atomic
def attribution_record(*, attempt: CheckoutAttempt, code: str, buyer: User | None) -> Attribution | None:
    """Attribute a starting checkout to the link with ``code``, when it may: the link is live,
    it is for the attempt's offer, its partner has a connected Stripe account, and the buyer
    is not the partner. The commission percent is the offer's at this moment. None otherwise."""
    link = selectors.link_live(code=code)
    if link is None or link.offer_id != attempt.offer_id:
        return None
    if not StripeAccount.objects.partner_of(link.partner.user_id).exists():
        return None
    if _is_self_referral(link, attempt, buyer):
        return None
    percent = link.offer.resell_commission_percent
    if not percent:
        return None
    attribution, _ = Attribution.objects.get_or_create(
        attempt=attempt, defaults={"link": link, "commission_percent": percent}
    )
    return attribution


def checkout_params_add_referral(*, attribution: Attribution, attempt: CheckoutAttempt, params: dict[str, Any]) -> None:
    """Carry an attribution into the Checkout Session: the link's code in the metadata (of the
    session, and of the subscription or payment intent it creates) and the commission as the
    platform's application fee."""
    code = attribution.link.code
    params["metadata"] = {**params.get("metadata", {}), "referral": code}
    if attempt.pricing == Offer.Pricing.RECURRING:
        data = dict(params.get("subscription_data", {}))
        data["metadata"] = {**data.get("metadata", {}), "referral": code}
        data["application_fee_percent"] = attribution.commission_percent
        params["subscription_data"] = data
    else:
        data = dict(params.get("payment_intent_data", {}))
        data["metadata"] = {**data.get("metadata", {}), "referral": code}
        data["application_fee_amount"] = application_fee_amount(
            amount=attempt.amount, percent=attribution.commission_percent
        )
        params["payment_intent_data"] = data
