"""Entitlement rules that billing relies on: a subscription's period and its leeway."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from memberships.models import Entitlement, Offer
from memberships.services import RENEWAL_LEEWAY, entitlement_extend

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription_offer() -> Offer:
    return Offer.objects.create(
        title="Monthly", slug="monthly", pricing=Offer.Pricing.RECURRING, interval="month", price_amount=900
    )


def test_a_paid_period_gives_access_to_its_end_plus_the_leeway(member: User, subscription_offer: Offer) -> None:
    period_end = timezone.now() + timedelta(days=30)
    entitlement, granted = entitlement_extend(user=member, offer=subscription_offer, period_end=period_end)
    assert granted
    assert entitlement.source == Entitlement.Source.SUBSCRIPTION
    assert entitlement.access_until == period_end + RENEWAL_LEEWAY


def test_an_older_period_processed_late_never_shortens_access(member: User, subscription_offer: Offer) -> None:
    later = timezone.now() + timedelta(days=60)
    entitlement_extend(user=member, offer=subscription_offer, period_end=later)
    entitlement, granted = entitlement_extend(
        user=member, offer=subscription_offer, period_end=later - timedelta(days=30)
    )
    assert not granted
    assert entitlement.access_until == later + RENEWAL_LEEWAY


def test_a_later_period_extends_access(member: User, subscription_offer: Offer) -> None:
    first = timezone.now() + timedelta(days=30)
    entitlement_extend(user=member, offer=subscription_offer, period_end=first)
    entitlement, _ = entitlement_extend(user=member, offer=subscription_offer, period_end=first + timedelta(days=30))
    assert entitlement.access_until == first + timedelta(days=30) + RENEWAL_LEEWAY
