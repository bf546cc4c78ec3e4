"""With ``AFFILIATES_ENABLED`` off (a deployment that does not run a partner program), nothing
of the partner program shows, and no sale is attributed or charged a fee."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from affiliates.models import Attribution, ReferralClick
from tests.affiliates.test_attribution import _buy, _join, _offer, _session, world  # noqa: F401

pytestmark = pytest.mark.django_db


def test_switched_off_a_referred_sale_is_neither_attributed_nor_charged_a_fee(
    world: dict[str, Any],  # noqa: F811
    partner_user: User,
    settings: Any,
) -> None:
    offer = _offer(amount=1999, percent=15)
    link = _join(partner_user, offer)
    settings.AFFILIATES_ENABLED = False
    buyer = Client()
    page = buyer.get(f"/offers/{offer.slug}/?ref={link.code}", follow=True)
    assert page.status_code == 200
    assert "partner_ref" not in buyer.cookies
    attempt = _buy(buyer, offer)
    assert not ReferralClick.objects.exists()
    assert not Attribution.objects.exists()
    session = _session(world, attempt)
    assert "referral" not in (session.metadata or {})
    assert world["sandbox"].pay_checkout(attempt.stripe_session_id, email="bea@example.com").paid
    intent = (
        world["sandbox"]
        .client()
        .v1.payment_intents.retrieve(
            _session(world, attempt).payment_intent, options={"stripe_account": world["creator"].account_id}
        )
    )
    assert not intent.application_fee_amount


def test_switched_off_members_see_no_program_and_the_creator_sees_none(
    client: Client, partner_user: User, owner: User, offer: Any, settings: Any
) -> None:
    settings.AFFILIATES_ENABLED = False
    client.force_login(partner_user)
    assert "Become a Partner" not in client.get("/home/").content.decode()
    assert client.get("/partners/").status_code == 404
    assert client.post(f"/partners/offers/{offer.pk}/join/").status_code == 404
    client.force_login(owner)
    page = client.get("/dashboard/affiliates/").content.decode()
    assert "No affiliate partners yet." in page
