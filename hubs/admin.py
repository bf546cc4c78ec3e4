from __future__ import annotations

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from hubs.models import AccessGrant, AccessGrantEvent, Comment, Hub, HubGroup, Post


class HubInline(admin.TabularInline[Hub, HubGroup]):
    model = Hub
    extra = 0
    fields = ["name", "slug", "position"]


@admin.register(HubGroup)
class HubGroupAdmin(admin.ModelAdmin[HubGroup]):
    list_display = ["name", "permission", "position"]
    list_filter = ["permission"]
    search_fields = ["name"]
    inlines = [HubInline]


@admin.register(Post)
class PostAdmin(admin.ModelAdmin[Post]):
    list_display = ["__str__", "hub", "author", "created_at"]
    list_select_related = ["hub", "author"]
    raw_id_fields = ["author"]
    readonly_fields = ["body_html"]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin[Comment]):
    list_display = ["__str__", "post", "author", "created_at"]
    list_select_related = ["post", "author"]
    raw_id_fields = ["author", "post"]
    readonly_fields = ["body_html"]


@admin.register(AccessGrant)
class AccessGrantAdmin(ReadOnlyAdmin[AccessGrant]):
    """Read-only here: grants are made and revoked on the Users page, which records the history."""

    deletable = True
    list_display = ["user", "group", "granted_at", "expires_at", "revoked_at"]
    list_select_related = ["user", "group"]
    search_fields = ["user__email", "group__name"]


@admin.register(AccessGrantEvent)
class AccessGrantEventAdmin(ReadOnlyAdmin[AccessGrantEvent]):
    list_display = ["created_at", "action", "user", "group", "actor"]
    list_select_related = ["user", "group", "actor"]
