"""Reads for billing."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.models import CheckoutAttempt, Payment, StripeAccount, WebhookEvent, browser_key_hash


def stripe_account_current() -> StripeAccount | None:
    """The creator's connected Stripe account, if any."""
    return StripeAccount.objects.connected().select_related("connected_by").first()


def stripe_connected() -> bool:
    """Whether the creator has connected a Stripe account that can take payments.

    Paid offers cannot be published without one: memberships' publish rules ask this through
    ``memberships.hooks`` (registered in ``BillingConfig.ready``).
    """
    return StripeAccount.objects.connected().filter(charges_enabled=True).exists()


def webhook_events_recent(*, limit: int = 100, status: WebhookEvent.Status | None = None) -> QuerySet[WebhookEvent]:
    events = WebhookEvent.objects.defer("payload").order_by("-received_at")
    if status is not None:
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
