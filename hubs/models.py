from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
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
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["permission"])]

    def __str__(self) -> str:
        return self.name


class Hub(models.Model):
    """A community space inside a group. Access is decided by its group only."""

    group = models.ForeignKey(HubGroup, on_delete=models.CASCADE, related_name="hubs")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["group", "slug"], name="hubs_hub_unique_slug_per_group")]

    def __str__(self) -> str:
        return self.name


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
