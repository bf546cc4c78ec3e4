"""Whether an address is a member can be learnt from two answers the product needs: a paid
checkout tells a member "You already have access" (never charge twice), and a free claim logs a
new account in but sends an existing one to its email. Both answers are rate-limited, per client
address and per email address, so the look-up cannot be run in bulk."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from memberships.models import Entitlement, Offer
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_already_a_member_answer_stops_after_the_limit_per_client(member: User, settings) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "checkout_start": {"ip": 2, "email": 100, "window": 3600}}
    factories.stripe_account()
    offer = factories.paid_offer()
    Entitlement.objects.create(user=member, offer=offer, source=Entitlement.Source.PURCHASE)
    browser = Client()
    answers = [
        browser.post(f"/offers/{offer.slug}/checkout/pay/", {"email": member.email, "full_name": "X"}) for _ in range(3)
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert "already has access" in answers[1].content.decode()
    assert "already has access" not in answers[2].content.decode()


def test_the_already_a_member_answer_stops_after_the_limit_per_email(member: User, settings) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "checkout_start": {"ip": 100, "email": 2, "window": 3600}}
    factories.stripe_account()
    offer = factories.paid_offer()
    Entitlement.objects.create(user=member, offer=offer, source=Entitlement.Source.PURCHASE)
    statuses = [
        Client().post(f"/offers/{offer.slug}/checkout/pay/", {"email": member.email, "full_name": "X"}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_the_free_claim_answers_stop_after_the_limit_per_client(member: User, settings) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "free_claim": {"ip": 2, "email": 100, "window": 3600}}
    free = Offer.objects.create(title="Taster", slug="taster", status=Offer.Status.PUBLISHED, pricing="free")
    browser = Client()
    for email in ("someone@example.com", "other@example.com"):
        browser.post(f"/offers/{free.slug}/checkout/", {"email": email, "full_name": "X"})
        browser.post("/accounts/logout/")
    existing = browser.post(f"/offers/{free.slug}/checkout/", {"email": member.email, "full_name": "X"})
    new = browser.post(f"/offers/{free.slug}/checkout/", {"email": "fresh@example.com", "full_name": "X"})
    assert existing.status_code == new.status_code == 400
    assert "Too many attempts" in existing.content.decode()
    assert "Check your email" not in existing.content.decode()
    assert not User.objects.filter(email="fresh@example.com").exists()
