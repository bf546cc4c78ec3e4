from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from hubs.models import HubGroup
from memberships.models import Offer, format_money


class StripeAccountQuerySet(models.QuerySet["StripeAccount"]):
    def connected(self) -> StripeAccountQuerySet:
        return self.filter(disconnected_at__isnull=True)

    def creator(self) -> StripeAccountQuerySet:
        """The creator's connected account (at most one): the account offers are sold on."""
        return self.connected().filter(purpose=StripeAccount.Purpose.CREATOR)

    def partner_of(self, user_id: int) -> StripeAccountQuerySet:
        """A partner's connected account (at most one): where their commissions go."""
        return self.connected().filter(purpose=StripeAccount.Purpose.PARTNER, owner_id=user_id)


class StripeAccount(models.Model):
    """A Stripe account connected through Connect OAuth: the creator's, or a partner's.

    Payments are direct charges on the creator's account; a partner's account receives their
    commissions. A disconnected account stays as history. At most one creator account is
    connected at a time, and at most one account per partner (``owner``, the member who
    connected it; empty for the creator's, which belongs to the community, not to one person).
    """

    class Purpose(models.TextChoices):
        CREATOR = "creator", "Creator"
        PARTNER = "partner", "Partner"

    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.CREATOR)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="partner_stripe_accounts",
    )
    account_id = models.CharField(max_length=255)
    livemode = models.BooleanField(default=False)
    charges_enabled = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    display_name = models.CharField(max_length=255, blank=True)
    connected_at = models.DateTimeField(default=timezone.now)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    disconnected_at = models.DateTimeField(null=True, blank=True)
    disconnected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    refreshed_at = models.DateTimeField(default=timezone.now)

    objects = StripeAccountQuerySet.as_manager()

    class Meta:
        ordering = ["-connected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["purpose"],
                condition=Q(disconnected_at__isnull=True, purpose="creator"),
                name="billing_one_connected_account",
            ),
            models.UniqueConstraint(
                fields=["owner"],
                condition=Q(disconnected_at__isnull=True, purpose="partner"),
                name="billing_one_connected_partner_account_per_user",
            ),
            models.CheckConstraint(
                condition=Q(purpose="creator", owner__isnull=True) | Q(purpose="partner", owner__isnull=False),
                name="billing_account_owner_matches_purpose",
            ),
            models.UniqueConstraint(
                fields=["account_id"],
                condition=Q(disconnected_at__isnull=True),
                name="billing_account_connected_once",
            ),
        ]

    def __str__(self) -> str:
        return self.account_id

    @property
    def is_connected(self) -> bool:
        return self.disconnected_at is None


class OfferStripePrice(models.Model):
    """A paid offer's product and current price on the connected Stripe account: billing's
    knowledge of the offer, kept off ``memberships.Offer``. Written by the catalog services
    (``billing/services/catalog.py``) when the offer is synced."""

    offer = models.OneToOneField(Offer, on_delete=models.CASCADE, primary_key=True, related_name="stripe_price")
    product_id = models.CharField(max_length=255, blank=True)
    price_id = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.offer_id}: {self.product_id} {self.price_id}"


def browser_key_hash(key: str) -> str:
    """What ``CheckoutAttempt.browser_key`` stores of the key in the buyer's signed cookie."""
    return hashlib.sha256(key.encode()).hexdigest()


class CheckoutAttempt(models.Model):
    """One buyer's attempt to pay for an offer through Stripe Checkout.

    The id is the Checkout Session's ``client_reference_id``. The price is a snapshot taken
    when the attempt starts, so fulfilment checks what Stripe charged against what the buyer
    was shown. ``browser_key`` is the hash of the key in the buyer's signed cookie: only that
    browser is logged in on return.
    """

    class Status(models.TextChoices):
        STARTED = "started", "Started"
        OPEN = "open", "Waiting for payment"
        PROCESSING = "processing", "Payment processing"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        FLAGGED = "flagged", "Flagged: amount mismatch"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="checkout_attempts")
    stripe_account_id = models.CharField(max_length=255)
    stripe_price_id = models.CharField(max_length=255)
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    pricing = models.CharField(max_length=10, choices=Offer.Pricing.choices)
    interval = models.CharField(max_length=10, choices=Offer.Interval.choices, blank=True)
    email = models.EmailField()
    full_name = models.CharField(max_length=150, blank=True)
    browser_key = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTED)
    stripe_session_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="checkout_attempts"
    )
    # Whether fulfilment created the account: only a new account may be logged in on return,
    # so typing someone else's email address never logs anyone into their account.
    user_created = models.BooleanField(default=False)
    login_used_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Started from a creator's test link (``TestPurchase``): its payments are tests too, kept out
    # of sales figures and buyer counts.
    is_test = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=50), name="billing_attempt_amount_at_least_minimum"),
            models.CheckConstraint(
                condition=Q(pricing__in=["one_time", "recurring"]), name="billing_attempt_is_paid_pricing"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.offer_id} ({self.status})"


class OneClickPurchase(models.Model):
    """A member's purchase with the card saved at an earlier purchase, confirmed on the
    one-click page (a private group's popup upsell).

    ``key`` comes from the confirmation form, made when the page was shown: a double submit
    names the same purchase, so the unique key makes the second find the first, and Stripe's
    idempotency key is made from it. The price snapshot, the payment and the entitlement hang on
    its ``attempt``, as for a Checkout purchase, so fulfilment and the webhooks treat both alike;
    whether it was paid is the attempt's status. The row's own status says how charging the
    card went.
    """

    class Status(models.TextChoices):
        CHARGING = "charging", "Charging the saved card"
        CHARGED = "charged", "Charged"
        DECLINED = "declined", "Declined"
        AUTHENTICATION_REQUIRED = "authentication_required", "The bank asked the member to authenticate"
        NO_CARD = "no_card", "No card on file"
        FAILED = "failed", "Failed"

    FALLS_BACK = (Status.DECLINED, Status.AUTHENTICATION_REQUIRED, Status.NO_CARD, Status.FAILED)

    key = models.UUIDField(unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="one_click_purchases")
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="one_click_purchases")
    attempt = models.OneToOneField(CheckoutAttempt, on_delete=models.PROTECT, related_name="one_click")
    # The group whose paywall offered it: where the member goes once it is paid.
    group = models.ForeignKey(HubGroup, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.CHARGING)
    card_label = models.CharField(max_length=60, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    # The payment intent (one-time) or subscription (recurring) Stripe made.
    stripe_object_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.key} {self.offer_id} ({self.status})"


class WebhookEvent(models.Model):
    """The durable log of every verified Stripe event, stored before it is processed."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FLAGGED = "flagged", "Flagged"
        FAILED = "failed", "Failed"

    DONE_STATUSES = (Status.PROCESSED, Status.IGNORED, Status.FLAGGED)

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    account = models.CharField(max_length=255, blank=True)
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    # Recorded by the reconciliation (listed from Stripe) rather than delivered to the endpoint:
    # its signature was never checked, and it says nothing about whether webhooks arrive.
    recovered = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    stripe_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["status", "received_at"]), models.Index(fields=["account", "received_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type} ({self.status})"


class WebhookRefusal(models.Model):
    """A delivery to the webhook endpoint that was refused: when, why, and the event's type if
    it could be read. No body is kept, and only the latest ``KEEP`` rows: enough to tell a
    creator that Stripe is sending but the signature does not match, never a store that a
    stranger posting to the endpoint could fill."""

    KEEP = 50

    class Reason(models.TextChoices):
        MISMATCH = "mismatch", "The signature does not match"
        STALE = "stale", "The signature is too old"
        MISSING = "missing", "No Stripe-Signature header"
        MALFORMED = "malformed", "The Stripe-Signature header is malformed"
        PAYLOAD = "payload", "The body is not a Stripe event"

    received_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=10, choices=Reason.choices)
    event_type = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.received_at:%Y-%m-%d %H:%M:%S} {self.reason} {self.event_type}"


class Payment(models.Model):
    """Money received: one row per Stripe object that carries it (a payment intent for a
    one-time purchase, an invoice for each subscription period). The unique key makes replayed
    or reordered events record it once.

    Refunds and disputes are Stripe's state of the payment's charge, re-read whenever an event
    about it arrives (``billing/services/lifecycle.py``): ``amount_refunded`` is the charge's
    total refunded so far, ``dispute_status`` its dispute, if any.
    """

    class Kind(models.TextChoices):
        ONE_TIME = "one_time", "One-time payment"
        INVOICE = "invoice", "Subscription invoice"

    class DisputeStatus(models.TextChoices):
        NONE = "", "No dispute"
        OPEN = "open", "Disputed"
        WON = "won", "Dispute won"
        LOST = "lost", "Dispute lost"

    stripe_object_id = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    stripe_account_id = models.CharField(max_length=255)
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="payments")
    attempt = models.ForeignKey(
        CheckoutAttempt, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    charge_id = models.CharField(max_length=255, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True, db_index=True)
    is_renewal = models.BooleanField(default=False)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    amount_refunded = models.PositiveIntegerField(default=0)
    dispute_status = models.CharField(max_length=4, choices=DisputeStatus.choices, blank=True, default="")
    # The platform's application fee Stripe took on the charge (a referred sale's commission),
    # as Stripe reports it: never recomputed here.
    application_fee_id = models.CharField(max_length=255, blank=True)
    application_fee_amount = models.PositiveIntegerField(default=0)
    # Stripe's processing fee on the charge (its balance transaction's ``stripe_fee`` part), as
    # Stripe reports it; 0 until read, and when Stripe settled the charge in another currency.
    stripe_fee_amount = models.PositiveIntegerField(default=0)
    # A test purchase's payment (its attempt's ``is_test``): never in sales figures. Once the
    # creator refunds and hides it, ``hidden_at`` is set; the row stays, as a test.
    is_test = models.BooleanField(default=False)
    hidden_at = models.DateTimeField(null=True, blank=True)
    # Stripe's time of the payment (its ``created``); ``created_at`` is when it was recorded here.
    paid_at = models.DateTimeField(null=True, blank=True)
    charge_read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        # The figures (billing/metrics.py) read sales, or tests, by Stripe's time.
        indexes = [models.Index(fields=["is_test", "paid_at"], name="billing_payment_sales_by_time")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=F("amount")), name="billing_payment_refund_within_amount"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stripe_object_id} {self.amount} {self.currency}"

    @property
    def amount_label(self) -> str:
        return format_money(self.amount, self.currency)

    @property
    def refundable_amount(self) -> int:
        return self.amount - self.amount_refunded

    @property
    def is_fully_refunded(self) -> bool:
        return self.amount_refunded >= self.amount

    @property
    def amount_refunded_label(self) -> str:
        return format_money(self.amount_refunded, self.currency) if self.amount_refunded else ""


class SalesDay(models.Model):
    """One local day's payments (Stripe's time, in ``TIME_ZONE``) of one offer, in one currency
    and one state: the rollup the figures read (docs/METRICS.md) instead of every payment.

    Kept by ``billing/services/sales_days.py`` in the transaction that records or changes a
    payment, as increments under the row's lock, so concurrent payments never lose a count;
    ``manage.py sales_days_rebuild`` recomputes it from the payments (after ``TIME_ZONE``
    changes). A payment's state is part of the key (refunded at all, its dispute), so the Sales
    page's status filter reads the rollup too.
    """

    day = models.DateField()
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="+")
    currency = models.CharField(max_length=3)
    is_test = models.BooleanField()
    refunded = models.BooleanField()
    dispute_status = models.CharField(max_length=4, choices=Payment.DisputeStatus.choices, blank=True)
    payments = models.IntegerField(default=0)
    amount = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    application_fee_amount = models.BigIntegerField(default=0)
    stripe_fee_amount = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "offer", "currency", "is_test", "refunded", "dispute_status"],
                name="billing_salesday_one_row_per_key",
            )
        ]
        indexes = [models.Index(fields=["is_test", "day"], name="billing_salesday_by_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.offer_id} {self.currency}: {self.payments} payments"


class StripeSubscription(models.Model):
    """Billing's copy of a subscription on the connected account, re-read from Stripe whenever
    an event about it arrives. The entitlement's state is computed from it (and from its
    payments), never from an event's own copy, so events may arrive in any order.

    ``synced_at`` is when the copy's read began: a read that began earlier never overwrites
    one that began later, so two workers racing on one subscription keep the newer state.
    """

    subscription_id = models.CharField(max_length=255, unique=True)
    stripe_account_id = models.CharField(max_length=255)
    customer_id = models.CharField(max_length=255, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_subscriptions")
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="stripe_subscriptions")
    attempt = models.ForeignKey(
        CheckoutAttempt, on_delete=models.PROTECT, null=True, blank=True, related_name="subscriptions"
    )
    status = models.CharField(max_length=20)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # When the renewal now failing was first attempted (its invoice's creation); null if none.
    failing_since = models.DateTimeField(null=True, blank=True)
    failing_invoice_id = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField()
    synced_at = models.DateTimeField()

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["user", "offer"])]

    def __str__(self) -> str:
        return f"{self.subscription_id} ({self.status})"

    @property
    def is_live(self) -> bool:
        """Stripe may still charge it."""
        return self.status in ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")


def checkout_test_key_hash(key: str) -> str:
    """What ``TestPurchase.key`` stores of the random key inside a signed test link."""
    return hashlib.sha256(key.encode()).hexdigest()


class TestPurchase(models.Model):
    """A creator's test of an offer's checkout: a signed, single-use link that opens the offer's
    checkout as a buyer sees it (drafts included), and what came of it.

    The link carries a signed random key (its age and integrity are the signature's job); this
    row, which stores the key's hash, makes it single-use: starting the checkout consumes it with
    one conditional UPDATE. ``attempt`` is the checkout it started, marked ``is_test``.
    """

    __test__ = False  # a model, whatever its name says to test collectors

    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="test_purchases")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    email = models.EmailField()
    key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)
    attempt = models.OneToOneField(
        CheckoutAttempt, on_delete=models.PROTECT, null=True, blank=True, related_name="test_purchase"
    )
    # Why the checkout could not start, in the creator's words (the account needs verification...).
    problem = models.TextField(blank=True)
    # Refunded and hidden by the creator once checked.
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Test of {self.offer_id} by {self.email}"
