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

from billing.models import CheckoutAttempt, Payment
from memberships.models import Offer, format_money

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
    # The creator's "Stop commissions": the partner's referred subscriptions pay no fee from
    # their next invoice on.
    commissions_stopped_at = models.DateTimeField(null=True, blank=True)

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


class Commission(models.Model):
    """The ledger: one row per referred payment and partner (a unique key), in the payment's
    currency and integer minor units.

    - ``amount`` is the application fee Stripe took on the payment's charge, as Stripe reports
      it (never recomputed here);
    - ``amount_reversed`` is what refunds and a lost dispute took back of it;
    - ``transferred`` and ``transfer_reversed`` are what reached the partner's Stripe account
      and what a transfer reversal took back.

    What is still owed to the partner is ``amount - amount_reversed - (transferred -
    transfer_reversed)``, so pending + paid + reversed always add up to the amounts earned.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        FROZEN = "frozen", "Frozen (disputed)"
        PAID = "paid", "Paid"
        REVERSED = "reversed", "Reversed"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="commissions")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="commissions")
    attribution = models.ForeignKey(Attribution, on_delete=models.PROTECT, related_name="commissions")
    currency = models.CharField(max_length=3)
    amount = models.PositiveIntegerField()
    amount_reversed = models.PositiveIntegerField(default=0)
    frozen = models.BooleanField(default=False)
    hold_until = models.DateTimeField()
    transfer_id = models.CharField(max_length=255, blank=True)
    destination = models.CharField(max_length=255, blank=True)
    transferred = models.PositiveIntegerField(default=0)
    transfer_reversed = models.PositiveIntegerField(default=0)
    paid_at = models.DateTimeField(null=True, blank=True)
    # Transfers Stripe refused (insufficient platform balance, a restricted account): the last
    # reason, how many, and when the next try is due (the waits double).
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "partner"], name="affiliates_one_commission_per_payment"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="affiliates_commission_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_reversed__lte=models.F("amount")),
                name="affiliates_commission_reversed_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(transferred__lte=models.F("amount")),
                name="affiliates_commission_transferred_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(transfer_reversed__lte=models.F("transferred")),
                name="affiliates_commission_transfer_reversal_within_transfer",
            ),
        ]
        indexes = [models.Index(fields=["hold_until"], name="affiliates_commission_due")]

    def __str__(self) -> str:
        return f"{self.payment_id} → {self.partner_id}: {self.amount} {self.currency}"

    @property
    def payable(self) -> int:
        """What the partner has earned of it, after refunds and a lost dispute."""
        return self.amount - self.amount_reversed

    @property
    def paid(self) -> int:
        """What the partner holds of it now."""
        return self.transferred - self.transfer_reversed

    @property
    def pending(self) -> int:
        """Still to be paid (negative while a transfer reversal is on its way)."""
        return self.payable - self.paid

    @property
    def status(self) -> Commission.Status:
        if self.payable == 0:
            return self.Status.REVERSED
        if self.transfer_id:
            return self.Status.PAID
        if self.frozen:
            return self.Status.FROZEN
        return self.Status.PENDING

    @property
    def amount_label(self) -> str:
        return format_money(self.amount, self.currency)
