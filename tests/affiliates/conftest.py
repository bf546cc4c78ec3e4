"""The partner program's personas: a resell offer, a partner with a connected Stripe account
and a link to it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import User
from affiliates.models import Partner, ReferralLink
from billing.models import StripeAccount
from memberships.models import Offer
from tests import factories

PARTNER_ACCOUNT = "acct_1Partner"


def resell_offer(*, recurring: bool = False, amount: int = 5000, percent: int = 20, **fields: object) -> Offer:
    return factories.paid_offer(
        recurring=recurring,
        amount=amount,
        resell_enabled=True,
        resell_commission_percent=percent,
        resell_description=fields.pop("resell_description", "Tell your friends."),
        **fields,
    )


def partner_account(user: User, account_id: str = PARTNER_ACCOUNT) -> StripeAccount:
    return StripeAccount.objects.create(
        purpose=StripeAccount.Purpose.PARTNER,
        owner=user,
        account_id=account_id,
        charges_enabled=True,
        payouts_enabled=True,
    )


@pytest.fixture
def partner_user(db: None) -> User:
    return User.objects.create_user(
        "pat@example.com", "correct-horse-battery", full_name="Pat Partner", email_verified_at=timezone.now()
    )


@pytest.fixture
def offer(stripe_account: StripeAccount) -> Offer:
    return resell_offer(title="Inner Circle", slug="inner-circle")


@pytest.fixture
def link(partner_user: User, offer: Offer) -> ReferralLink:
    partner_account(partner_user)
    partner = Partner.objects.create(user=partner_user)
    return ReferralLink.objects.create(partner=partner, offer=offer)
