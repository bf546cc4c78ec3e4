from __future__ import annotations

from django.contrib import admin

from memberships.models import Entitlement, Offer


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin[Offer]):
    """Read-only: offers are edited in the creator dashboard, whose services queue the Stripe sync."""

    list_display = ["title", "slug", "status", "pricing", "price_amount", "currency", "created_at"]
    list_filter = ["status", "pricing"]
    search_fields = ["title", "slug"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: Offer | None = None) -> bool:
        return False


@admin.register(Entitlement)
class EntitlementAdmin(admin.ModelAdmin[Entitlement]):
    list_display = ["user", "offer", "status", "source", "access_until", "started_at"]
    list_filter = ["status", "source"]
    search_fields = ["user__email", "offer__title"]
    list_select_related = ["user", "offer"]
    raw_id_fields = ["user", "offer"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: Entitlement | None = None) -> bool:
        return False
