"""When a user became a member (``MemberJoin``, docs/METRICS.md's *new member*): noted by the
services as entitlements start, and only ever moved earlier."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from accounts.models import User
from memberships.models import Entitlement, MemberJoin, Offer
from memberships.services import EntitlementState, entitlement_apply, member_joined, offer_claim_free
from tests import factories

pytestmark = pytest.mark.django_db
MARCH = datetime(2026, 3, 5, 12, tzinfo=UTC)
APRIL = datetime(2026, 4, 5, 12, tzinfo=UTC)


def joined(email: str) -> datetime | None:
    join = MemberJoin.objects.filter(user__email=email).first()
    return join.joined_at if join else None


def test_a_first_claim_makes_a_member_and_later_ones_do_not_move_the_date() -> None:
    first, second = factories.offer("Starter"), factories.offer("Extras")
    with time_machine.travel(MARCH, tick=False):
        offer_claim_free(offer=first, email="ana@example.com")
    with time_machine.travel(APRIL, tick=False):
        offer_claim_free(offer=second, email="ana@example.com")
    assert joined("ana@example.com") == MARCH


def _apply(user: User, offer: Offer, status: str, backed_by: str, *, is_test: bool = False) -> Entitlement:
    state = EntitlementState(status=status, source="subscription", backed_by=backed_by, is_test=is_test)
    return entitlement_apply(user=user, offer=offer, state=state, reason="Stripe says so").entitlement


def test_an_entitlement_that_ends_and_starts_again_keeps_the_first_join() -> None:
    offer = factories.paid_offer(recurring=True)
    buyer = User.objects.create_user("ben@example.com")
    with time_machine.travel(MARCH, tick=False):
        _apply(buyer, offer, "active", "sub_1")
        _apply(buyer, offer, "canceled", "sub_1")
    with time_machine.travel(APRIL, tick=False):
        assert _apply(buyer, offer, "active", "sub_2").started_at == APRIL  # restarted...
    assert joined(buyer.email) == MARCH  # ...but they joined before


def test_a_test_purchase_makes_no_member_until_it_is_a_real_one() -> None:
    offer = factories.paid_offer(recurring=True)
    tester = User.objects.create_user("tester@example.com")
    with time_machine.travel(MARCH, tick=False):
        _apply(tester, offer, "active", "sub_test", is_test=True)
    assert joined(tester.email) is None
    with time_machine.travel(APRIL, tick=False):
        _apply(tester, offer, "active", "sub_real")
    assert joined(tester.email) == APRIL


def test_a_first_payment_earlier_than_the_entitlement_moves_the_join_earlier_and_never_later() -> None:
    offer = factories.paid_offer()
    buyer = User.objects.create_user("cleo@example.com")
    with time_machine.travel(APRIL, tick=False):
        _apply(buyer, offer, "active", "pi_1")
    member_joined(user_id=buyer.pk, at=MARCH)  # Stripe's time of a payment recorded late
    assert joined(buyer.email) == MARCH
    member_joined(user_id=buyer.pk, at=APRIL)
    assert joined(buyer.email) == MARCH
