"""Writes for memberships: offers and entitlements."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from memberships.models import Entitlement, Offer


@transaction.atomic
def entitlement_grant(
    *,
    user: User,
    offer: Offer,
    source: str,
    access_until: datetime | None = None,
) -> tuple[Entitlement, bool]:
    """Give ``user`` the offer (a free claim, a purchase, a subscription start or renewal).

    Idempotent and race-safe: the (user, offer) unique key decides, so any number of
    concurrent calls make one entitlement and exactly one of them reports ``granted`` (which
    sends the confirmation email). Calling it for an entitlement that had ended starts it again
    and counts as a new grant.
    """
    entitlement, created = Entitlement.objects.get_or_create(
        user=user,
        offer=offer,
        defaults={"source": source, "status": Entitlement.Status.ACTIVE, "access_until": access_until},
    )
    granted = created
    if not created:
        # Lock the row so that a concurrent grant and a revoke cannot interleave.
        entitlement = Entitlement.objects.select_for_update().get(pk=entitlement.pk)
        was_active = entitlement.status in Entitlement.ACCESS_STATUSES and (
            entitlement.access_until is None or entitlement.access_until > timezone.now()
        )
        entitlement.status = Entitlement.Status.ACTIVE
        entitlement.access_until = access_until
        entitlement.ended_at = None
        if not was_active:
            entitlement.source = source
            entitlement.started_at = timezone.now()
            granted = True
        entitlement.save(update_fields=["status", "access_until", "ended_at", "source", "started_at", "updated_at"])
    if granted:
        from memberships.tasks import send_confirmation_email

        entitlement_id = entitlement.pk
        transaction.on_commit(lambda: send_confirmation_email.delay(entitlement_id))
    return entitlement, granted


@transaction.atomic
def entitlement_end(*, entitlement: Entitlement, status: str) -> Entitlement:
    """Take access away (refund, dispute, cancellation at its end, suspension)."""
    entitlement = Entitlement.objects.select_for_update().get(pk=entitlement.pk)
    entitlement.status = status
    entitlement.ended_at = timezone.now()
    entitlement.save(update_fields=["status", "ended_at", "updated_at"])
    return entitlement
