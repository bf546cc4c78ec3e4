"""The access rule runs from SQL compiled once; it must answer exactly as its queryset does."""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from accounts.models import User
from hubs.models import AccessGrant, HubGroup
from hubs.selectors import _member_group_ids, accessible_group_ids, member_groups_queryset
from memberships.models import Entitlement, Offer


def test_the_compiled_rule_matches_the_queryset_for_every_member_and_moment(db: None) -> None:
    rng = random.Random(20261125)
    now = timezone.now()
    permissions = [HubGroup.Permission.PUBLIC, HubGroup.Permission.PRIVATE, HubGroup.Permission.HIDDEN]
    groups = [HubGroup.objects.create(name=f"G{n}", slug=f"g{n}", permission=permissions[n % 3]) for n in range(12)]
    offers = []
    for n in range(5):
        offer = Offer.objects.create(title=f"O{n}", slug=f"o{n}")
        offer.hub_groups.set(rng.sample(groups, 3))
        offers.append(offer)
    users = [User.objects.create_user(f"u{n}@example.com") for n in range(15)]
    statuses = [choice for choice, _ in Entitlement.Status.choices]
    for user in users:
        for offer in rng.sample(offers, 2):
            Entitlement.objects.create(
                user=user,
                offer=offer,
                source="purchase",
                status=rng.choice(statuses),
                access_until=rng.choice([None, now + timedelta(days=1), now - timedelta(days=1)]),
            )
        for group in rng.sample(groups, 2):
            AccessGrant.objects.create(
                user=user,
                group=group,
                expires_at=rng.choice([None, now + timedelta(hours=12), now - timedelta(hours=1)]),
                revoked_at=rng.choice([None, None, now - timedelta(minutes=5)]),
            )
    moments = [now, now + timedelta(days=2), now - timedelta(days=3)]
    answers = set()
    for user in users:
        for moment in moments:
            expected = frozenset(member_groups_queryset(user_id=user.pk, now=moment).values_list("pk", flat=True))
            assert _member_group_ids(user_id=user.pk, now=moment) == expected
            answers.add(expected)
    assert len(answers) > 5  # the data really varies, so the comparison means something


def test_a_member_without_any_source_gets_the_public_groups_only(member: User, db: None) -> None:
    public = HubGroup.objects.create(name="Open", slug="open", permission=HubGroup.Permission.PUBLIC)
    HubGroup.objects.create(name="Closed", slug="closed", permission=HubGroup.Permission.PRIVATE)
    assert accessible_group_ids(user=member) == {public.pk}
