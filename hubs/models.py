from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class HubGroup(models.Model):
    """A locked or open set of hubs: what a membership offer sells."""

    class Permission(models.TextChoices):
        PUBLIC = "public", "Public"
        PRIVATE = "private", "Private"
        HIDDEN = "hidden", "Hidden"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    description = models.TextField(blank=True)
    permission = models.CharField(max_length=10, choices=Permission.choices, default=Permission.PRIVATE)
    position = models.PositiveIntegerField(default=0)

    # Upsell shown on the paywall of a private group to users without access. A popup's offer
    # is chosen on memberships' side (memberships.GroupUpsellOffer): hubs points at nothing above it.
    class Upsell(models.TextChoices):
        NONE = "", "None"
        POPUP = "popup", "Popup"
        URL = "url", "URL"

    upsell = models.CharField(max_length=10, choices=Upsell.choices, blank=True, default=Upsell.NONE)
    upsell_cta = models.CharField("Paywall call-to-action text", max_length=120, blank=True)
    upsell_description = models.TextField("Paywall description", blank=True)
    upsell_url = models.URLField("Upsell URL", max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["permission"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(upsell="url") | Q(upsell_url__startswith="http://") | Q(upsell_url__startswith="https://"),
                name="hubs_group_url_upsell_has_http_url",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("hubs:group", kwargs={"group_slug": self.slug})

    @property
    def is_private(self) -> bool:
        return self.permission == self.Permission.PRIVATE


class Hub(models.Model):
    """A community space inside a group. Access is decided by its group only."""

    group = models.ForeignKey(HubGroup, on_delete=models.CASCADE, related_name="hubs")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140)
    description = models.TextField(blank=True)
    icon = models.ImageField("Icon / image", upload_to="hubs/icons/%Y/%m/", blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["group", "slug"], name="hubs_hub_unique_slug_per_group")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("hubs:hub", kwargs={"group_slug": self.group.slug, "hub_slug": self.slug})


class Post(models.Model):
    """A member's post in a hub. ``body`` is the author's Markdown; ``body_html`` its sanitized rendering."""

    hub = models.ForeignKey(Hub, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hub_posts")
    title = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    body_html = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["hub", "-created_at", "-id"])]

    def __str__(self) -> str:
        return self.title or self.body[:60]


class Comment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hub_comments")
    body = models.TextField()
    body_html = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["post", "created_at", "id"])]

    def __str__(self) -> str:
        return self.body[:60]


class AccessGrantQuerySet(models.QuerySet["AccessGrant"]):
    def active(self, now: datetime | None = None) -> AccessGrantQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class AccessGrant(models.Model):
    """A manual grant of a private group to one user by staff, with its history."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_grants")
    group = models.ForeignKey(HubGroup, on_delete=models.CASCADE, related_name="access_grants")
    note = models.CharField(max_length=500, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = AccessGrantQuerySet.as_manager()

    class Meta:
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["user", "group"])]
        constraints = [
            # At most one live (unrevoked) grant per user and group: granting again extends it.
            models.UniqueConstraint(
                fields=["user", "group"], condition=Q(revoked_at__isnull=True), name="hubs_one_live_grant"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} for {self.user}"

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AccessGrantEvent(models.Model):
    """The grant history: one row per grant, change or revocation, with who and when. Never updated."""

    class Action(models.TextChoices):
        GRANTED = "granted", "Granted"
        UPDATED = "updated", "Updated"
        REVOKED = "revoked", "Revoked"

    grant = models.ForeignKey(AccessGrant, on_delete=models.CASCADE, related_name="events")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_grant_events")
    group = models.ForeignKey(HubGroup, on_delete=models.CASCADE, related_name="access_grant_events")
    action = models.CharField(max_length=10, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.group} for {self.user}"
