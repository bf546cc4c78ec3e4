"""Reads for billing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from accounts.models import User
from billing.models import (
    CheckoutAttempt,
    OneClickPurchase,
    Payment,
    StripeAccount,
    StripeSubscription,
    TestPurchase,
    WebhookEvent,
    WebhookRefusal,
    browser_key_hash,
)
from memberships.models import Entitlement, EntitlementChange, Offer


def stripe_account_current() -> StripeAccount | None:
    """The creator's connected Stripe account, if any."""
    return StripeAccount.objects.creator().select_related("connected_by").first()


def stripe_connected() -> bool:
    """Whether the creator has connected a Stripe account that can take payments.

    Paid offers cannot be published without one: memberships' publish rules ask this through
    ``memberships.hooks`` (registered in ``BillingConfig.ready``).
    """
    return StripeAccount.objects.creator().filter(charges_enabled=True).exists()


def webhook_events_recent(*, limit: int = 100, status: WebhookEvent.Status | None = None) -> QuerySet[WebhookEvent]:
    events = WebhookEvent.objects.defer("payload").order_by("-received_at")
    if status is not None:
        events = events.filter(status=status)
    return events[:limit]


def webhook_refusals_recent() -> QuerySet[WebhookRefusal]:
    return WebhookRefusal.objects.order_by("-received_at", "-pk")[: WebhookRefusal.KEEP]


def checkout_attempt_for_browser(*, attempt_id: str, browser_key: str | None) -> CheckoutAttempt | None:
    """The attempt, but only for the browser that started it."""
    if not browser_key:
        return None
    return (
        CheckoutAttempt.objects.select_related("offer", "user")
        .filter(pk=attempt_id, browser_key=browser_key_hash(browser_key))
        .first()
    )


def payments_recent(*, limit: int = 100) -> QuerySet[Payment]:
    """The Sales page's payments, newest first: test purchases are not sales."""
    return Payment.objects.filter(is_test=False).select_related("user", "offer").order_by("-created_at")[:limit]


def checkout_test_payments_shown(*, limit: int = 50) -> QuerySet[Payment]:
    """Test purchases' payments not yet refunded and hidden (the Sales page lists them apart)."""
    return (
        Payment.objects.filter(is_test=True, hidden_at__isnull=True)
        .select_related("user", "offer", "attempt__test_purchase")
        .order_by("-created_at")[:limit]
    )


def checkout_test_paid() -> bool:
    """Whether a creator has paid for a test purchase yet (the Overview's *Getting started*)."""
    return Payment.objects.filter(is_test=True).exists()


def checkout_test_buyer_ids() -> QuerySet[Any]:
    """The accounts that test purchases made, which the Overview does not count as members
    (``accounts.slots.UNCOUNTED_USERS``). An existing account a creator typed stays counted."""
    return CheckoutAttempt.objects.filter(is_test=True, user_created=True, user__isnull=False).values("user_id")


def checkout_tests_of(*, offer: Offer, limit: int = 20) -> QuerySet[TestPurchase]:
    return TestPurchase.objects.filter(offer=offer).select_related("attempt", "created_by")[:limit]


@dataclass(frozen=True)
class Receipt:
    payment: Payment
    amount_label: str
    refunded_label: str
    paid_at: datetime
    card_last4: str
    description: str


@dataclass(frozen=True)
class Membership:
    """A buyer's membership as they and the creator read it."""

    entitlement: Entitlement
    offer: Offer
    status: Entitlement.Status
    status_label: str
    price_label: str
    has_access: bool
    next_payment_at: datetime | None
    ends_at: datetime | None
    receipts: list[Receipt]
    history: list[EntitlementChange]
    subscription: StripeSubscription | None
    can_manage_billing: bool
    can_cancel: bool
    can_resubscribe: bool
    prorated_refund: int


def _receipt(payment: Payment) -> Receipt:
    if payment.kind == Payment.Kind.ONE_TIME:
        description = "One-time payment"
    else:
        description = "Renewal" if payment.is_renewal else "First payment"
    return Receipt(
        payment=payment,
        amount_label=payment.amount_label,
        refunded_label=payment.amount_refunded_label,
        paid_at=payment.paid_at or payment.created_at,
        card_last4=payment.card_last4,
        description=description,
    )


def memberships_for(*, user: User, now: datetime | None = None) -> list[Membership]:
    """Every entitlement of ``user``, newest first, with its payments, subscription and history:
    a fixed number of queries whatever the number of memberships."""
    from billing.services.lifecycle import current_payment, prorated_amount

    now = now or timezone.now()
    entitlements = list(
        Entitlement.objects.filter(user=user)
        .select_related("offer")
        .prefetch_related(Prefetch("changes", queryset=EntitlementChange.objects.select_related("by")))
        .order_by("-started_at")
    )
    payments: dict[int, list[Payment]] = {}
    for payment in Payment.objects.filter(user=user).order_by("-paid_at", "-created_at"):
        payments.setdefault(payment.offer_id, []).append(payment)
    subscriptions = {
        row.subscription_id: row
        for row in StripeSubscription.objects.filter(user=user, subscription_id__in=[e.backed_by for e in entitlements])
    }
    memberships = []
    for entitlement in entitlements:
        subscription = subscriptions.get(entitlement.backed_by)
        status = entitlement.effective_status(now)
        has_access = entitlement.has_access(now)
        live = subscription is not None and subscription.is_live
        renewing = live and has_access and not entitlement.cancel_at_period_end
        ends_at: datetime | None
        if has_access and entitlement.cancel_at_period_end and subscription and subscription.current_period_end:
            # Stripe's date, as its billing page and the end itself say: access_until adds a leeway.
            ends_at = subscription.current_period_end
        elif has_access:
            ends_at = None if renewing else entitlement.access_until
        else:
            # When Stripe ended the subscription, not when the platform heard of it.
            ended_by_stripe = subscription.ended_at if subscription is not None else None
            ends_at = ended_by_stripe or entitlement.ended_at or entitlement.access_until
        customer = bool(subscription and subscription.customer_id) or any(
            payment.attempt_id for payment in payments.get(entitlement.offer_id, [])
        )
        memberships.append(
            Membership(
                entitlement=entitlement,
                offer=entitlement.offer,
                status=status,
                status_label=str(status.label),
                price_label=entitlement.offer.price_label,
                has_access=has_access,
                next_payment_at=entitlement.renews_at if renewing else None,
                ends_at=ends_at,
                receipts=[_receipt(payment) for payment in payments.get(entitlement.offer_id, [])],
                history=list(entitlement.changes.all()),
                subscription=subscription,
                can_manage_billing=customer and live,
                can_cancel=renewing,
                can_resubscribe=entitlement.offer.is_published
                and entitlement.source != Entitlement.Source.FREE
                and (not has_access or entitlement.cancel_at_period_end),
                prorated_refund=(
                    prorated_amount(
                        subscription=subscription,
                        payment=current_payment(subscription, payments.get(entitlement.offer_id, [])),
                        now=now,
                    )
                    if renewing and subscription is not None
                    else 0
                ),
            )
        )
    return memberships


def purchase_terms(entitlement: Entitlement) -> dict[str, str]:
    """The confirmation email's terms (``memberships.hooks.purchase_terms``): what the purchase
    backing the entitlement paid, how often it renews, and when next."""
    payments = Payment.objects.filter(user=entitlement.user_id, offer=entitlement.offer_id)
    if entitlement.backed_by.startswith("sub_"):
        payments = payments.filter(stripe_subscription_id=entitlement.backed_by)
    elif entitlement.backed_by:
        payments = payments.filter(payment_intent_id=entitlement.backed_by)
    payment = payments.order_by("-paid_at", "-pk").first()
    if payment is None:
        return {}
    terms = {"amount_paid": payment.amount_label}
    offer = entitlement.offer
    if entitlement.source == Entitlement.Source.SUBSCRIPTION:
        terms["interval_label"] = offer.get_interval_display()
        if entitlement.renews_at:
            terms["next_payment_date"] = timezone.localtime(entitlement.renews_at).strftime("%B %-d, %Y")
    else:
        terms["interval_label"] = "One-time payment"
    return terms


# --- One-click purchases ------------------------------------------------------------------------
def _paid_with_customer(*, user: User) -> QuerySet[CheckoutAttempt]:
    return CheckoutAttempt.objects.filter(user=user, status=CheckoutAttempt.Status.PAID).exclude(stripe_customer_id="")


def card_on_file_likely(*, user: User) -> bool:
    """Whether the member paid before on the creator's account (which takes payments), so that
    Stripe may hold a card saved for them: one query. The card itself is asked of Stripe on the
    one-click page. Only for a proven email address: access added to an unproven account ends
    its sessions (docs/SECURITY.md), so its member buys through Checkout."""
    if user.email_verified_at is None:
        return False
    accounts = StripeAccount.objects.creator().filter(charges_enabled=True).values("account_id")
    return _paid_with_customer(user=user).filter(stripe_account_id__in=accounts).exists()


def stripe_customers_of(*, user: User, account_id: str, limit: int = 3) -> list[str]:
    """The Stripe customers of the member's paid purchases on the account, newest first: each
    Checkout made its own, and the newest is the likeliest to hold a card that still works."""
    customers: list[str] = []
    paid = _paid_with_customer(user=user).filter(stripe_account_id=account_id).order_by("-paid_at", "-created_at")
    for customer_id in paid.values_list("stripe_customer_id", flat=True)[:20]:
        if customer_id not in customers:
            customers.append(customer_id)
    return customers[:limit]


def one_click_purchase_of(*, user: User, key: uuid.UUID) -> OneClickPurchase | None:
    """The member's own one-click purchase by its key (anyone else's is None)."""
    return OneClickPurchase.objects.select_related("attempt", "offer", "group").filter(key=key, user=user).first()
