"""Reads for hubs, above all the access rule.

A user may enter hub group G when G is public; or the user is staff; or (G is private and)
the user holds an active entitlement to an offer whose hub groups include G, or an active
manual grant to G. Hidden groups are for staff only. Access is derived by one query, never
copied into per-user rows, so changing an offer's groups applies to every buyer at once.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from hubs.models import AccessGrant, HubGroup

_MEMO_ATTR = "_accessible_group_ids"


def accessible_group_ids(*, user: User | AnonymousUser, request: HttpRequest | None = None) -> frozenset[int]:
    """The ids of every group ``user`` may enter, in one query (memoised on ``request``)."""
    if request is not None and hasattr(request, _MEMO_ATTR):
        return getattr(request, _MEMO_ATTR)
    ids = frozenset(_accessible_groups(user).values_list("pk", flat=True))
    if request is not None:
        setattr(request, _MEMO_ATTR, ids)
    return ids


def _accessible_groups(user: User | AnonymousUser) -> QuerySet[HubGroup]:
    from memberships.models import Entitlement, Offer

    if not user.is_authenticated or not user.is_active:
        return HubGroup.objects.none()
    if user.is_staff:
        return HubGroup.objects.all()
    now = timezone.now()
    granted = AccessGrant.objects.active(now).filter(user=user).values("group_id")
    purchased = Offer.hub_groups.through.objects.filter(
        offer__in=Entitlement.objects.active(now).filter(user=user).values("offer_id")
    ).values("hubgroup_id")
    return HubGroup.objects.filter(
        Q(permission=HubGroup.Permission.PUBLIC)
        | Q(permission=HubGroup.Permission.PRIVATE) & (Q(pk__in=granted) | Q(pk__in=purchased))
    )


def can_enter(*, user: User | AnonymousUser, group: HubGroup, request: HttpRequest | None = None) -> bool:
    return group.pk in accessible_group_ids(user=user, request=request)


def visible_groups_queryset(*, user: User | AnonymousUser) -> QuerySet[HubGroup]:
    """Groups a user may see listed: public and private for everyone, hidden for staff."""
    groups = HubGroup.objects.all()
    if not (user.is_authenticated and user.is_staff):
        groups = groups.exclude(permission=HubGroup.Permission.HIDDEN)
    return groups


def group_for_user_or_404(*, user: User | AnonymousUser, slug: str) -> HubGroup:
    """The group if the user may see it listed; hidden groups are a 404 to non-staff."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(visible_groups_queryset(user=user), slug=slug)


def require_entry(*, user: User | AnonymousUser, group: HubGroup, request: HttpRequest | None = None) -> None:
    if not can_enter(user=user, group=group, request=request):
        raise PermissionDenied("You don't have access to this hub group.")
