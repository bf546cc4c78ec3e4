from __future__ import annotations

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from memberships.models import Entitlement, Offer


@admin.register(Offer)
class OfferAdmin(ReadOnlyAdmin[Offer]):
    """Read-only: offers are edited in the creator dashboard, whose services queue the Stripe sync."""

    deletable = True
    list_display = ["title", "slug", "status", "pricing", "price_amount", "currency", "created_at"]
    list_filter = ["status", "pricing"]
    search_fields = ["title", "slug"]


@admin.register(Entitlement)
class EntitlementAdmin(ReadOnlyAdmin[Entitlement]):
    deletable = True
    list_display = ["user", "offer", "status", "source", "access_until", "started_at"]
    list_filter = ["status", "source"]
    search_fields = ["user__email", "offer__title"]
    list_select_related = ["user", "offer"]
    raw_id_fields = ["user", "offer"]
