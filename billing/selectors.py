"""Reads for billing."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from accounts.models import User
from billing.models import CheckoutAttempt, Payment, StripeAccount, WebhookEvent, browser_key_hash
from memberships.models import Entitlement, Offer


def stripe_account_current() -> StripeAccount | None:
    """The creator's connected Stripe account, if any."""
    return StripeAccount.objects.connected().select_related("connected_by").first()


def stripe_connected() -> bool:
    """Whether the creator has connected a Stripe account that can take payments.

    Paid offers cannot be published without one.
    """
    return StripeAccount.objects.connected().filter(charges_enabled=True).exists()


def active_subscriber_count() -> int:
    """Members whose access runs on a subscription: the connected account bills them."""
    return Entitlement.objects.active().filter(source=Entitlement.Source.SUBSCRIPTION).count()


def webhook_events_recent(*, limit: int = 100, status: str = "") -> QuerySet[WebhookEvent]:
    events = WebhookEvent.objects.defer("payload").order_by("-received_at")
    if status:
        events = events.filter(status=status)
    return events[:limit]


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
    return Payment.objects.select_related("user", "offer").order_by("-created_at")[:limit]


def entitlement_active_for(*, offer: Offer, email: str, user: User | AnonymousUser) -> bool:
    """Whether the buyer (the logged-in user, or the account with this email) already has the offer."""
    who = Q(user__email=email)
    if user.is_authenticated:
        who |= Q(user=user)
    return Entitlement.objects.active().filter(who, offer=offer).exists()
