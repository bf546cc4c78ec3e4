"""Reads for hubs, above all the access rule.

A user may enter hub group G when G is public; or the user is staff; or (G is private and)
the user holds an active manual grant to G, or G comes from one of the rule's other sources
(``hubs.slots.ACCESS_SOURCES``: memberships adds an active entitlement to an offer whose hub
groups include G). Hidden groups are for staff only. Access is derived by one query, never
copied into per-user rows, so changing an offer's groups applies to every buyer at once.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import Count, Max, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import User
from hubs.models import AccessGrant, AccessGrantEvent, Comment, Hub, HubGroup, Post
from hubs.slots import ACCESS_SOURCES, GROUP_IN_USE

_MEMO_ATTR = "_accessible_group_ids"


def accessible_group_ids(*, user: User | AnonymousUser, request: HttpRequest | None = None) -> frozenset[int]:
    """The ids of every group ``user`` may enter, in one query (memoised on ``request``)."""
    memo = getattr(request, _MEMO_ATTR, None)
    if isinstance(memo, frozenset):
        return memo
    if not user.is_authenticated or not user.is_active:
        ids: frozenset[int] = frozenset()
    elif user.is_staff:
        ids = frozenset(HubGroup.objects.values_list("pk", flat=True))
    else:
        ids = _member_group_ids(user_id=user.pk, now=timezone.now())
    if request is not None:
        setattr(request, _MEMO_ATTR, ids)
    return ids


def member_groups_queryset(*, user_id: int, now: datetime) -> QuerySet[HubGroup]:
    """The access rule for a member (not staff), as a queryset: the one definition of it."""
    sources = [
        AccessGrant.objects.active(now).filter(user_id=user_id).values("group_id"),
        *(source(user_id=user_id, now=now) for source in ACCESS_SOURCES),
    ]
    opened = functools.reduce(operator.or_, (Q(pk__in=source) for source in sources))
    return HubGroup.objects.filter(
        Q(permission=HubGroup.Permission.PUBLIC) | Q(permission=HubGroup.Permission.PRIVATE) & opened
    ).order_by()


# The rule's SQL is the same for every member and every moment; only the user id and "now"
# change. Building it through the ORM costs ten times more than running it, and it runs on
# every community page, so it is compiled once per database from the queryset above with
# placeholder values, which are then swapped for the real ones on each call.
_USER_PLACEHOLDER = -918_273_645  # never a primary key
_NOW_PLACEHOLDER = datetime(1901, 2, 3, 4, 5, 6, 789, tzinfo=UTC)


@functools.cache
def _compiled_member_rule(alias: str) -> tuple[str, tuple[Any, ...], tuple[int, ...], tuple[int, ...]]:
    queryset = member_groups_queryset(user_id=_USER_PLACEHOLDER, now=_NOW_PLACEHOLDER).values_list("pk", flat=True)
    sql, params = queryset.query.get_compiler(using=alias).as_sql()
    now_forms = (_NOW_PLACEHOLDER, connections[alias].ops.adapt_datetimefield_value(_NOW_PLACEHOLDER))
    user_slots = tuple(i for i, value in enumerate(params) if value == _USER_PLACEHOLDER)
    now_slots = tuple(i for i, value in enumerate(params) if any(value == form for form in now_forms))
    sources = 1 + len(ACCESS_SOURCES)  # manual grants, then the registered ones
    if len(user_slots) != sources or len(now_slots) != sources:  # one of each per source
        raise RuntimeError(f"the access rule's compiled parameters are not the expected ones: {params!r}")
    return sql, tuple(params), user_slots, now_slots


def _member_group_ids(*, user_id: int, now: datetime) -> frozenset[int]:
    connection = connections[HubGroup.objects.db]
    sql, template, user_slots, now_slots = _compiled_member_rule(connection.alias)
    params = list(template)
    adapted_now = connection.ops.adapt_datetimefield_value(now)
    for slot in user_slots:
        params[slot] = user_id
    for slot in now_slots:
        params[slot] = adapted_now
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return frozenset(row[0] for row in cursor.fetchall())


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
    return get_object_or_404(visible_groups_queryset(user=user), slug=slug)


def require_entry(*, user: User | AnonymousUser, group: HubGroup, request: HttpRequest | None = None) -> None:
    if not can_enter(user=user, group=group, request=request):
        raise PermissionDenied("You don't have access to this hub group.")


# --- Named reads for the pages -------------------------------------------------------------
@dataclass(frozen=True)
class GroupEntry:
    """A group as one user sees it in the community: open (with its hubs) or locked."""

    group: HubGroup
    is_open: bool
    hubs: list[Hub]


def community_groups(*, user: User | AnonymousUser, request: HttpRequest | None = None) -> list[GroupEntry]:
    """Every group ``user`` may see, in order, with its hubs: three queries whatever the count."""
    open_ids = accessible_group_ids(user=user, request=request)
    groups = visible_groups_queryset(user=user).prefetch_related(
        Prefetch("hubs", queryset=Hub.objects.order_by("position", "id"))
    )
    return [GroupEntry(group=group, is_open=group.pk in open_ids, hubs=list(group.hubs.all())) for group in groups]


def community_stamp() -> tuple[int, str]:
    """Changes whenever any group or hub is added, edited, moved or deleted (one small query).

    Services bump a group's ``updated_at`` when its hubs change, and a deletion lowers the count.
    """
    stamp = HubGroup.objects.aggregate(count=Count("pk"), latest=Max("updated_at"))
    return stamp["count"], stamp["latest"].isoformat() if stamp["latest"] else ""


def groups_entered_by(*, user: User | AnonymousUser, request: HttpRequest | None = None) -> list[HubGroup]:
    """The groups a user may enter and see: their communities on the home page."""
    open_ids = accessible_group_ids(user=user, request=request)
    if not open_ids:
        return []
    # Filtered here rather than with ``pk__in``: a staff user's id list can exceed SQL's parameter limits.
    groups = visible_groups_queryset(user=user).only("pk", "name", "slug", "description", "position")
    return [group for group in groups if group.pk in open_ids]


def group_in_use_by(*, group: HubGroup) -> list[str]:
    """The names of what still uses ``group`` (the offers selling it: ``hubs.slots.GROUP_IN_USE``)."""
    return [name for check in GROUP_IN_USE for name in check(group=group)]


def group_hubs(*, group: HubGroup) -> QuerySet[Hub]:
    return group.hubs.order_by("position", "id")


def hub_for_user_or_404(*, user: User | AnonymousUser, group_slug: str, hub_slug: str) -> Hub:
    """The hub with its group, if the user may see the group listed (hidden groups 404 to non-staff)."""
    hubs = Hub.objects.select_related("group").filter(group__in=visible_groups_queryset(user=user))
    return get_object_or_404(hubs, group__slug=group_slug, slug=hub_slug)


def hub_posts(*, hub: Hub) -> QuerySet[Post]:
    """A hub's posts, newest first, with author and comment count (paginate the result)."""
    return (
        Post.objects.filter(hub=hub)
        .select_related("author")
        # A subquery rather than a join with GROUP BY, so that the paginator's COUNT stays a plain one.
        .annotate(
            comment_count=Coalesce(
                Subquery(
                    Comment.objects.filter(post=OuterRef("pk"))
                    .order_by()
                    .values("post")
                    .annotate(count=Count("pk"))
                    .values("count")
                ),
                0,
            )
        )
        .order_by("-created_at", "-id")
    )


def post_in_hub_or_404(*, hub: Hub, pk: int) -> Post:
    return get_object_or_404(Post.objects.select_related("author"), hub=hub, pk=pk)


def post_comments(*, post: Post) -> QuerySet[Comment]:
    return Comment.objects.filter(post=post).select_related("author").order_by("created_at", "id")


def comment_in_post_or_404(*, post: Post, pk: int) -> Comment:
    return get_object_or_404(Comment.objects.select_related("author"), post=post, pk=pk)


def can_moderate(*, user: User | AnonymousUser, author_id: int) -> bool:
    """Authors edit and delete their own posts and comments; staff moderate everyone's."""
    return bool(user.is_authenticated and (user.is_staff or user.pk == author_id))


# --- The Users page -------------------------------------------------------------------------
def users_search(*, query: str = "") -> QuerySet[User]:
    users = User.objects.order_by("email")
    # No stored text holds a NUL, and PostgreSQL refuses one in a query.
    query = query.replace("\x00", "").strip()
    if query:
        users = users.filter(Q(email__icontains=query) | Q(full_name__icontains=query))
    return users


@dataclass(frozen=True)
class GrantSource:
    grant: AccessGrant
    gives_access: bool


@dataclass(frozen=True)
class AccessSources:
    """hubs' own sources of one user's access (manual grants), and what all sources open today.

    The other sources show their own sections on the Users page (``hubs.slots.USER_PAGE``)."""

    grants: list[GrantSource]
    events: list[AccessGrantEvent]
    open_groups: list[HubGroup]


def user_access_sources(*, user: User) -> AccessSources:
    """Manual grants, live or not, their history, and what the user may enter today."""
    now = timezone.now()
    grants = (
        AccessGrant.objects.filter(user=user)
        .select_related("group", "granted_by", "revoked_by")
        .order_by("-granted_at", "-id")
    )
    events = AccessGrantEvent.objects.filter(user=user).select_related("group", "actor").order_by("-created_at", "-id")
    open_ids = accessible_group_ids(user=user)
    return AccessSources(
        grants=[GrantSource(grant=grant, gives_access=grant.is_active(now)) for grant in grants],
        events=list(events[:100]),
        open_groups=[group for group in HubGroup.objects.order_by("position", "id") if group.pk in open_ids],
    )
