from __future__ import annotations

from django.contrib import admin

from billing.models import CheckoutAttempt, OneClickPurchase, Payment, StripeAccount, WebhookEvent
from core.admin import ReadOnlyAdmin

# Billing rows are written by services from Stripe's answers, never edited by hand.


@admin.register(StripeAccount)
class StripeAccountAdmin(ReadOnlyAdmin[StripeAccount]):
    list_display = [
        "account_id",
        "purpose",
        "owner",
        "livemode",
        "charges_enabled",
        "payouts_enabled",
        "connected_at",
        "disconnected_at",
    ]
    list_filter = ["purpose"]
    list_select_related = ["owner"]


@admin.register(CheckoutAttempt)
class CheckoutAttemptAdmin(ReadOnlyAdmin[CheckoutAttempt]):
    list_display = ["id", "offer", "email", "amount", "currency", "status", "is_test", "created_at"]
    list_filter = ["status", "is_test"]
    list_select_related = ["offer"]
    search_fields = ["email", "stripe_session_id", "stripe_subscription_id"]


@admin.register(OneClickPurchase)
class OneClickPurchaseAdmin(ReadOnlyAdmin[OneClickPurchase]):
    list_display = ["key", "user", "offer", "status", "card_label", "created_at"]
    list_filter = ["status"]
    list_select_related = ["user", "offer"]
    search_fields = ["key", "user__email", "stripe_object_id"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin[WebhookEvent]):
    list_display = ["event_id", "type", "account", "status", "attempts", "received_at"]
    list_filter = ["status", "type"]
    search_fields = ["event_id", "account"]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin[Payment]):
    list_display = ["stripe_object_id", "kind", "amount", "currency", "user", "offer", "is_test", "created_at"]
    list_filter = ["is_test"]
    list_select_related = ["user", "offer"]
    search_fields = ["stripe_object_id", "user__email"]
