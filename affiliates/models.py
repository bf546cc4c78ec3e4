"""Customer Resell Rights: partners, their referral links, clicks and attributed checkouts.

A partner is a member who joined at least one offer's program. Each partner has one link per
offer; a sale made through it is an ``Attribution`` of the checkout attempt, with the
commission percent fixed at that moment (a later change of the offer's rate does not touch it).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from billing.models import CheckoutAttempt
from memberships.models import Offer

# 16 random bytes: unguessable, and short enough to read in a link.
CODE_BYTES = 16


def referral_code_new() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


class Partner(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        REMOVED = "removed", "Removed"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="partner")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    joined_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-joined_at"]

    def __str__(self) -> str:
        return f"{self.user} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class ReferralLink(models.Model):
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="links")
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="referral_links")
    code = models.CharField(max_length=32, unique=True, default=referral_code_new)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "offer"], name="affiliates_one_link_per_partner_and_offer"),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id} → {self.offer_id}"

    @property
    def url(self) -> str:
        """The link a partner shares: the offer's page with the code as ``?ref=``."""
        path = reverse("memberships:offer_page", kwargs={"slug": self.offer.slug})
        return f"{settings.SITE_URL}{path}?{urlencode({'ref': self.code})}"


class ReferralClick(models.Model):
    """A visit through a link: only when, nothing about the visitor."""

    link = models.ForeignKey(ReferralLink, on_delete=models.CASCADE, related_name="clicks")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["link", "at"])]

    def __str__(self) -> str:
        return f"{self.link_id} at {self.at:%Y-%m-%d %H:%M}"


class Attribution(models.Model):
    """A checkout started through a referral link, with the commission percent of that moment."""

    attempt = models.OneToOneField(CheckoutAttempt, on_delete=models.PROTECT, related_name="attribution")
    link = models.ForeignKey(ReferralLink, on_delete=models.PROTECT, related_name="attributions")
    commission_percent = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_percent__gte=1, commission_percent__lte=90),
                name="affiliates_attribution_percent_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.attempt_id} via {self.link_id} ({self.commission_percent}%)"
