from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from hubs.models import HubGroup

# The currencies an offer can be priced in, with Stripe's minimum and maximum charge in minor
# units. All of them have two decimals and a 0.50 minimum, which the database also enforces.
CURRENCIES: dict[str, tuple[str, str]] = {
    "usd": ("US dollar", "$"),
    "eur": ("Euro", "€"),
    "cad": ("Canadian dollar", "CA$"),
    "aud": ("Australian dollar", "A$"),
    "nzd": ("New Zealand dollar", "NZ$"),
    "chf": ("Swiss franc", "CHF "),
    "sgd": ("Singapore dollar", "S$"),
}
MINIMUM_AMOUNT = 50
MAXIMUM_AMOUNT = 99_999_999


def format_money(amount: int, currency: str) -> str:
    """``1250, "usd"`` -> ``$12.50``."""
    symbol = CURRENCIES.get(currency, ("", currency.upper() + " "))[1]
    return f"{symbol}{amount // 100:,}.{amount % 100:02d}"


class OfferQuerySet(models.QuerySet["Offer"]):
    def published(self) -> OfferQuerySet:
        return self.filter(status=Offer.Status.PUBLISHED)


class Offer(models.Model):
    """A digital offer. Only the *membership* kind exists today; the kind leaves room for more."""

    class Kind(models.TextChoices):
        MEMBERSHIP = "membership", "Membership"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        ARCHIVED = "archived", "Archived"

    class Pricing(models.TextChoices):
        ONE_TIME = "one_time", "One-Time Payment"
        RECURRING = "recurring", "Recurring Payment"
        FREE = "free", "Free"

    class Interval(models.TextChoices):
        # Stored as Stripe's (interval, interval_count) through ``stripe_recurring``.
        WEEK = "week", "Weekly"
        MONTH = "month", "Monthly"
        QUARTER = "quarter", "Every 3 months"
        HALF_YEAR = "half_year", "Every 6 months"
        YEAR = "year", "Yearly"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.MEMBERSHIP)
    title = models.CharField(max_length=200)
    # Plain text under the title on the checkout page (paragraphs kept, nothing interpreted).
    description = models.TextField(max_length=5_000, blank=True)
    slug = models.SlugField(max_length=220, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    hub_groups = models.ManyToManyField(HubGroup, related_name="offers", blank=True)

    # Pricing: amounts are integer minor units of ``currency`` (ISO 4217, lower case as Stripe).
    pricing = models.CharField(max_length=10, choices=Pricing.choices, default=Pricing.FREE)
    price_amount = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    interval = models.CharField(max_length=10, choices=Interval.choices, blank=True)
    # Days a failing renewal keeps access before the entitlement is suspended.
    grace_period_days = models.PositiveSmallIntegerField(default=3)

    class RefundPolicy(models.TextChoices):
        REVOKE = "revoke", "Revoke access"
        KEEP = "keep", "Keep access"

    # What a full refund (or a lost dispute: always revoked) does to the buyer's access.
    refund_policy = models.CharField(max_length=10, choices=RefundPolicy.choices, default=RefundPolicy.REVOKE)
    # The platform's own receipt for each renewal (Stripe's are off on connected accounts).
    renewal_receipts = models.BooleanField("Email a receipt for each renewal", default=True)

    # Purchase destination: by default the buyer is logged in and lands in the community.
    redirect_enabled = models.BooleanField("Redirect users to a custom link", default=False)
    redirect_url = models.URLField(max_length=500, blank=True)

    # Images, stored re-encoded (core/images.py) in the sizes the pages use.
    thumbnail = models.ImageField(upload_to="offers/", max_length=255, blank=True)
    cover = models.ImageField(upload_to="offers/", max_length=255, blank=True)

    # Confirmation email; blank means the default wording (memberships/emails.py).
    confirmation_subject = models.CharField(max_length=200, blank=True)
    confirmation_body = models.TextField(max_length=10_000, blank=True)

    # Customer Resell Rights: stored here, put to work by the affiliates app. Paid offers only.
    resell_enabled = models.BooleanField("Enable customers to resell this offer for a commission", default=False)
    resell_commission_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    resell_description = models.TextField(max_length=5_000, blank=True)

    # HTML/JS rendered on this offer's checkout page only, never escaped there and never shown
    # anywhere else. Only staff can set it.
    custom_code = models.TextField(max_length=20_000, blank=True)

    # The optional landing page shown before checkout.
    landing_enabled = models.BooleanField("Show a landing page before checkout", default=False)
    landing_headline = models.CharField(max_length=200, blank=True)
    landing_body = models.TextField("Landing page text (Markdown)", max_length=20_000, blank=True)
    # One item per line; blank means the names of the offer's hub groups.
    landing_includes = models.TextField(max_length=5_000, blank=True)
    landing_cta_label = models.CharField(max_length=60, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OfferQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(pricing="free", price_amount=0) | (~Q(pricing="free") & Q(price_amount__gte=50)),
                name="memberships_offer_price_matches_pricing",
            ),
            models.CheckConstraint(
                condition=Q(resell_enabled=False)
                | Q(resell_commission_percent__gte=1, resell_commission_percent__lte=90) & ~Q(pricing="free"),
                name="memberships_offer_resell_commission_in_range",
            ),
            models.CheckConstraint(
                condition=Q(pricing="recurring", interval__gt="") | (~Q(pricing="recurring") & Q(interval="")),
                name="memberships_offer_interval_only_when_recurring",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_free(self) -> bool:
        return self.pricing == self.Pricing.FREE

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def price_label(self) -> str:
        """What a buyer reads: ``Free``, ``$12.00`` or ``$12.00 / month``."""
        if self.is_free:
            return "Free"
        price = format_money(self.price_amount, self.currency)
        per = {
            "week": " / week",
            "month": " / month",
            "quarter": " every 3 months",
            "half_year": " every 6 months",
            "year": " / year",
        }
        return price + per.get(self.interval, "") if self.pricing == self.Pricing.RECURRING else price

    @property
    def billing_terms(self) -> str:
        """The terms on the checkout page: ``$29.00 every month, cancel any time``,
        ``$49.00 one-time payment`` or ``Free, no payment needed``."""
        if self.is_free:
            return "Free, no payment needed"
        price = format_money(self.price_amount, self.currency)
        if self.pricing == self.Pricing.ONE_TIME:
            return f"{price} one-time payment"
        every = {
            "week": "every week",
            "month": "every month",
            "quarter": "every 3 months",
            "half_year": "every 6 months",
            "year": "every year",
        }
        return f"{price} {every.get(self.interval, 'per period')}, cancel any time"

    @property
    def stripe_recurring(self) -> dict[str, int | str] | None:
        """Stripe's ``recurring`` parameter for this offer's interval."""
        mapping: dict[str, tuple[str, int]] = {
            "week": ("week", 1),
            "month": ("month", 1),
            "quarter": ("month", 3),
            "half_year": ("month", 6),
            "year": ("year", 1),
        }
        if self.pricing != self.Pricing.RECURRING:
            return None
        interval, count = mapping[self.interval]
        return {"interval": interval, "interval_count": count}


class EntitlementQuerySet(models.QuerySet["Entitlement"]):
    def active(self, now: datetime | None = None) -> EntitlementQuerySet:
        """Entitlements that give access now (see Entitlement.Status)."""
        now = now or timezone.now()
        return self.filter(status__in=Entitlement.ACCESS_STATUSES).filter(
            Q(access_until__isnull=True) | Q(access_until__gt=now)
        )

    def buyers(self, now: datetime | None = None) -> EntitlementQuerySet:
        """Active entitlements that count as buyers: those of test purchases aside."""
        return self.active(now).filter(is_test=False)


class Entitlement(models.Model):
    """A buyer's right to an offer. Access to hub groups is derived from it, never copied.

    ``active`` and ``past_due`` give access until ``access_until`` (null: no end): a one-time
    purchase has none; a recurring one runs to the paid period's end (while a renewal is
    failing: to the failure plus the offer's grace period). The other stored statuses give no
    access. Access is decided when it is read, by comparing ``access_until`` with now: the
    dates come from Stripe's objects, so no job has to run for access to end on time.

    ``backed_by`` is the Stripe subscription or payment intent that currently backs it: a
    re-purchase restarts the same entitlement under its new backing, and events about an
    older subscription no longer change it.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due (grace period)"
        CANCELED = "canceled", "Canceled"
        SUSPENDED = "suspended", "Suspended: payment failed"
        REFUNDED = "refunded", "Refunded"
        DISPUTED = "disputed", "Suspended: payment disputed"
        DISPUTE_LOST = "dispute_lost", "Ended: dispute lost"
        # Shown, never stored: an active entitlement whose paid period ran out.
        EXPIRED = "expired", "Ended"

    ACCESS_STATUSES = (Status.ACTIVE, Status.PAST_DUE)

    class Source(models.TextChoices):
        FREE = "free", "Free claim"
        PURCHASE = "purchase", "Purchase"
        SUBSCRIPTION = "subscription", "Subscription"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="entitlements")
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="entitlements")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    source = models.CharField(max_length=12, choices=Source.choices)
    access_until = models.DateTimeField(null=True, blank=True)
    backed_by = models.CharField(max_length=255, blank=True)
    # The next payment date while the subscription renews; null otherwise.
    renews_at = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # Backed by a creator's test purchase: it opens the groups like any other, and is left out
    # of buyer counts.
    is_test = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EntitlementQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        constraints = [models.UniqueConstraint(fields=["user", "offer"], name="memberships_one_entitlement_per_offer")]
        indexes = [
            models.Index(fields=["user", "status"]),
            models.Index(fields=["offer", "status"]),
            # The Users page's buyers, newest first (memberships.selectors.buyers_listed).
            models.Index(fields=["-started_at", "-id"], condition=Q(is_test=False), name="memberships_buyers_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.offer} ({self.status})"

    def has_access(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.status in self.ACCESS_STATUSES and (self.access_until is None or self.access_until > now)

    def effective_status(self, now: datetime | None = None) -> Entitlement.Status:
        """The stored status, or what it has become since: a past-due entitlement whose grace
        period ran out is suspended, an active one whose paid period ran out has ended."""
        status = self.Status(self.status)
        if status in self.ACCESS_STATUSES and not self.has_access(now):
            return self.Status.SUSPENDED if status == self.Status.PAST_DUE else self.Status.EXPIRED
        return status

    def effective_status_label(self, now: datetime | None = None) -> str:
        return str(self.effective_status(now).label)


class MemberJoin(models.Model):
    """When a user became a member: their first entitlement to any offer, test purchases aside,
    or Stripe's time of their first payment when that is earlier (a late event). The Overview's
    *New members* counts these (docs/METRICS.md).

    An entitlement's ``started_at`` restarts with each new purchase, so the first one is kept
    here as it happens: ``member_joined`` only ever moves it earlier.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    joined_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.user_id} joined {self.joined_at:%Y-%m-%d}"


class EntitlementChange(models.Model):
    """One change to an entitlement: what changed, why, and what caused it (a Stripe event,
    or a person: a staff member, or the buyer through the billing portal's event)."""

    entitlement = models.ForeignKey(Entitlement, on_delete=models.CASCADE, related_name="changes")
    at = models.DateTimeField(default=timezone.now)
    status_before = models.CharField(max_length=12, choices=Entitlement.Status.choices, blank=True)
    status_after = models.CharField(max_length=12, choices=Entitlement.Status.choices)
    access_until_before = models.DateTimeField(null=True, blank=True)
    access_until_after = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=300)
    event_id = models.CharField(max_length=255, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # A person's request (a confirmation form's own id): the same request is noted once.
    request_key = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["entitlement", "request_key"],
                condition=~Q(request_key=""),
                name="memberships_change_request_noted_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.entitlement_id}: {self.status_before or '-'} → {self.status_after} ({self.reason})"


class GroupUpsellOffer(models.Model):
    """The offer that a private group's popup upsell sells.

    The popup (its kind, call to action and text) is the group's, in hubs; which offer it sells
    is memberships', since hubs sits below memberships and points at nothing above it.
    """

    group = models.OneToOneField(HubGroup, on_delete=models.CASCADE, primary_key=True, related_name="+")
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="upsells")

    def __str__(self) -> str:
        return f"{self.group} → {self.offer}"
