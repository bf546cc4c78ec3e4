"""Writes for hubs: groups, hubs, posts, comments and manual access grants."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from django.core.files.base import ContentFile
from django.db import IntegrityError, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.services import user_access_added
from core.images import ProcessedImage
from core.markdown import render_markdown
from core.slugs import unique_slug
from hubs import selectors
from hubs.models import AccessGrant, AccessGrantEvent, Comment, Hub, HubGroup, Post
from hubs.slots import GROUP_EDITOR

Direction = Literal["up", "down"]


class GroupInUseError(Exception):
    """A group that something still uses (an offer sells it: ``hubs.slots.GROUP_IN_USE``) cannot be deleted."""

    def __init__(self, offer_titles: list[str]) -> None:
        self.offer_titles = offer_titles
        super().__init__(
            "This hub group is sold by "
            + ", ".join(f"“{title}”" for title in offer_titles)
            + ". Remove it from the offer's Community Permissions (or archive the offer) before deleting it."
        )


def _save_with_unique_slug(obj: HubGroup | Hub, queryset: QuerySet[HubGroup] | QuerySet[Hub], name: str) -> None:
    """Save ``obj`` under a free slug; the unique index decides if two saves race for one."""
    attempts = 5
    for attempt in range(attempts):
        fallback = "group" if queryset.model is HubGroup else "hub"
        obj.slug = unique_slug(queryset, name, fallback=fallback, max_length=120, exclude_pk=obj.pk)
        try:
            with transaction.atomic():
                obj.save()
            return
        except IntegrityError:
            if attempt == attempts - 1:
                raise


def _touch(group_id: int) -> None:
    """Mark a group changed when its hubs change: the community page's cache key follows it."""
    HubGroup.objects.filter(pk=group_id).update(updated_at=timezone.now())


# --- Groups -----------------------------------------------------------------------------------
def _next_position(queryset: QuerySet[HubGroup] | QuerySet[Hub]) -> int:
    last = queryset.order_by("-position").values_list("position", flat=True).first()
    return 0 if last is None else last + 1


@transaction.atomic
def hub_group_create(
    *,
    name: str,
    description: str = "",
    permission: HubGroup.Permission = HubGroup.Permission.PRIVATE,
    upsell: HubGroup.Upsell = HubGroup.Upsell.NONE,
    upsell_cta: str = "",
    upsell_description: str = "",
    upsell_url: str = "",
    extras: Mapping[str, Any] | None = None,
) -> HubGroup:
    """``extras`` are the values of the editor's higher-layer parts (``hubs.slots.GROUP_EDITOR``)."""
    group = HubGroup(
        name=name,
        description=description,
        permission=permission,
        position=_next_position(HubGroup.objects.all()),
    )
    _apply_upsell(group, upsell, upsell_cta, upsell_description, upsell_url)
    _save_with_unique_slug(group, HubGroup.objects.all(), name)
    _save_parts(group, extras)
    return group


@transaction.atomic
def hub_group_update(
    *,
    group: HubGroup,
    name: str,
    description: str,
    permission: HubGroup.Permission,
    upsell: HubGroup.Upsell = HubGroup.Upsell.NONE,
    upsell_cta: str = "",
    upsell_description: str = "",
    upsell_url: str = "",
    extras: Mapping[str, Any] | None = None,
) -> HubGroup:
    group.name = name
    group.description = description
    group.permission = permission
    _apply_upsell(group, upsell, upsell_cta, upsell_description, upsell_url)
    # The slug is the group's address: it stays when the group is renamed, so links keep working.
    group.save()
    _save_parts(group, extras)
    return group


def _apply_upsell(group: HubGroup, upsell: HubGroup.Upsell, cta: str, description: str, url: str) -> None:
    """Keep only the fields of the chosen upsell kind, so a stale URL or offer never shows
    (the parts drop their popup values too when the group has no popup)."""
    group.upsell = upsell if group.permission == HubGroup.Permission.PRIVATE else HubGroup.Upsell.NONE
    group.upsell_cta = cta if group.upsell else ""
    group.upsell_description = description if group.upsell == HubGroup.Upsell.POPUP else ""
    group.upsell_url = url if group.upsell == HubGroup.Upsell.URL else ""


def _save_parts(group: HubGroup, extras: Mapping[str, Any] | None) -> None:
    for part in GROUP_EDITOR:
        part.save(group=group, data=extras or {})


@transaction.atomic
def hub_group_delete(*, group: HubGroup) -> None:
    """Delete a group with its hubs, posts and grants, unless an offer still sells it."""
    group = HubGroup.objects.select_for_update().get(pk=group.pk)
    selling = selectors.group_in_use_by(group=group)
    if selling:
        raise GroupInUseError(selling)
    group.delete()


def _move(
    rows: list[tuple[int, int]], queryset: QuerySet[HubGroup] | QuerySet[Hub], pk: int, direction: Direction
) -> None:
    """Swap the row with its neighbour, renumbering the list so positions stay distinct.

    ``rows`` are (pk, position) pairs in display order, already locked by the caller.
    """
    order = [row_pk for row_pk, _position in rows]
    index = order.index(pk)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
    current = dict(rows)
    for position, row_pk in enumerate(order):
        if current[row_pk] != position:
            queryset.filter(pk=row_pk).update(position=position)


@transaction.atomic
def hub_group_move(*, group: HubGroup, direction: Direction) -> None:
    rows = list(HubGroup.objects.select_for_update().order_by("position", "id").values_list("pk", "position"))
    _move(rows, HubGroup.objects.all(), group.pk, direction)
    _touch(group.pk)


# --- Hubs -------------------------------------------------------------------------------------
def _icon_store(icon: ProcessedImage) -> str:
    """Upload an icon before any transaction opens: an upload (to S3 in production) must not
    hold the database, and a new name is never overwritten, so nothing else can point at it.
    The name's extension is the re-encoded file's real format, whatever the upload was called."""
    field = Hub._meta.get_field("icon")
    assert isinstance(field, models.ImageField)
    name = field.generate_filename(Hub(), f"{uuid.uuid4().hex}.{icon.extension}")
    return field.storage.save(name, ContentFile(icon.content))


def _icon_forget(name: str) -> None:
    Hub._meta.get_field("icon").storage.delete(name)


def hub_create(*, group: HubGroup, name: str, description: str = "", icon: ProcessedImage | None = None) -> Hub:
    icon_name = _icon_store(icon) if icon is not None else ""
    try:
        with transaction.atomic():
            hub = Hub(group=group, name=name, description=description, position=_next_position(group.hubs.all()))
            hub.icon.name = icon_name
            _save_with_unique_slug(hub, Hub.objects.filter(group=group), name)
            _touch(group.pk)
    except Exception:
        if icon_name:
            _icon_forget(icon_name)
        raise
    return hub


def hub_update(
    *, hub: Hub, name: str, description: str, icon: ProcessedImage | None = None, remove_icon: bool = False
) -> Hub:
    icon_name = _icon_store(icon) if icon is not None else ""
    old_icon = hub.icon.name if hub.icon else ""
    try:
        with transaction.atomic():
            hub.name = name
            hub.description = description
            if icon_name:
                hub.icon.name = icon_name
            elif remove_icon:
                hub.icon = None
            hub.save()
            _touch(hub.group_id)
    except Exception:
        if icon_name:
            _icon_forget(icon_name)
        raise
    if old_icon and old_icon != (hub.icon.name if hub.icon else ""):
        transaction.on_commit(lambda: _icon_forget(old_icon))
    return hub


@transaction.atomic
def hub_delete(*, hub: Hub) -> None:
    icon = hub.icon.name if hub.icon else ""
    storage = hub.icon.storage
    hub.delete()
    _touch(hub.group_id)
    if icon:
        transaction.on_commit(lambda: storage.delete(icon))


@transaction.atomic
def hub_move(*, hub: Hub, direction: Direction) -> None:
    siblings = Hub.objects.filter(group_id=hub.group_id)
    rows = list(siblings.select_for_update().order_by("position", "id").values_list("pk", "position"))
    _move(rows, siblings, hub.pk, direction)
    _touch(hub.group_id)


# --- Posts and comments -----------------------------------------------------------------------
@transaction.atomic
def post_create(*, hub: Hub, author: User, title: str, body: str) -> Post:
    return Post.objects.create(hub=hub, author=author, title=title, body=body, body_html=render_markdown(body))


@transaction.atomic
def post_update(*, post: Post, title: str, body: str) -> Post:
    post.title = title
    post.body = body
    post.body_html = render_markdown(body)
    post.edited_at = timezone.now()
    post.save(update_fields=["title", "body", "body_html", "edited_at"])
    return post


@transaction.atomic
def post_delete(*, post: Post) -> None:
    post.delete()


@transaction.atomic
def comment_create(*, post: Post, author: User, body: str) -> Comment:
    return Comment.objects.create(post=post, author=author, body=body, body_html=render_markdown(body))


@transaction.atomic
def comment_update(*, comment: Comment, body: str) -> Comment:
    comment.body = body
    comment.body_html = render_markdown(body)
    comment.edited_at = timezone.now()
    comment.save(update_fields=["body", "body_html", "edited_at"])
    return comment


@transaction.atomic
def comment_delete(*, comment: Comment) -> None:
    comment.delete()


# --- Manual access grants ---------------------------------------------------------------------
@transaction.atomic
def access_grant_create(
    *, user: User, group: HubGroup, granted_by: User | None, note: str = "", expires_at: datetime | None = None
) -> AccessGrant:
    """Grant ``group`` to ``user``; granting again replaces the live grant's note and expiry.

    The partial unique index (one unrevoked grant per user and group) decides races, and every
    call leaves a row in the grant history.
    """
    now = timezone.now()
    grant, created = AccessGrant.objects.get_or_create(
        user=user,
        group=group,
        revoked_at=None,
        defaults={"note": note, "expires_at": expires_at, "granted_by": granted_by, "granted_at": now},
    )
    renewed = False
    if not created:
        grant = AccessGrant.objects.select_for_update().get(pk=grant.pk)
        renewed = not grant.is_active(now)
        if renewed:
            # An expired grant comes back to life: it counts as granted again, now.
            grant.granted_at = now
            grant.granted_by = granted_by
        grant.note = note
        grant.expires_at = expires_at
        grant.save(update_fields=["note", "expires_at", "granted_at", "granted_by"])
    AccessGrantEvent.objects.create(
        grant=grant,
        user=user,
        group=group,
        action=AccessGrantEvent.Action.GRANTED if created or renewed else AccessGrantEvent.Action.UPDATED,
        actor=granted_by,
        note=note,
        expires_at=expires_at,
        created_at=now,
    )
    if created or renewed:
        # New access for an account whose email is unproven ends its sessions.
        user_access_added(user=user)
    return grant


@transaction.atomic
def access_grant_revoke(*, grant: AccessGrant, revoked_by: User | None) -> AccessGrant:
    """Revoke a grant. Revoking one already revoked changes nothing and records nothing."""
    grant = AccessGrant.objects.select_for_update().get(pk=grant.pk)
    if grant.revoked_at is not None:
        return grant
    now = timezone.now()
    grant.revoked_at = now
    grant.revoked_by = revoked_by
    grant.save(update_fields=["revoked_at", "revoked_by"])
    AccessGrantEvent.objects.create(
        grant=grant,
        user_id=grant.user_id,
        group_id=grant.group_id,
        action=AccessGrantEvent.Action.REVOKED,
        actor=revoked_by,
        note=grant.note,
        expires_at=grant.expires_at,
        created_at=now,
    )
    return grant
