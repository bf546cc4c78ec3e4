"""The emails of a membership's life after the purchase: a failed payment, the grace period's
end, access restored or revoked, a renewal's receipt.

The lifecycle services record them in the outbox with the change that requires them; these
builders (registered in ``BillingConfig.ready``) make each one when it is sent, from the ids
of its payload. An email that no longer says what is true by then (a failed payment already
paid again, access given back before the revocation went out) is not sent.

They link to the platform only: My memberships, and the membership's billing link, which
opens a fresh Stripe billing portal session when it is clicked (a portal session's own
address expires within hours, and a stale one must never sit in an inbox).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts import outbox
from billing.models import Payment
from memberships.models import Entitlement

# What access_revoked says, by the reason its payload gives: what happened (``%(offer)s`` is
# the offer's title), then what the buyer can do about it.
REVOKED_REASONS: dict[str, tuple[str, str]] = {
    "refund": (
        "Your payment for %(offer)s was refunded, so your access has ended.",
        "You can join again at any time from My memberships.",
    ),
    "dispute_lost": (
        "Your bank reversed your payment for %(offer)s after a dispute, so your access has ended.",
        "You can join again at any time from My memberships.",
    ),
    "canceled": (
        "Your subscription to %(offer)s was canceled, so your access has ended.",
        "You can resubscribe at any time from My memberships.",
    ),
    "payment_failed": (
        "We could not collect the renewal payment for %(offer)s and the grace period is over, so your access "
        "is suspended.",
        "Update your card: once the payment goes through, your access comes back.",
    ),
    "disputed": (
        "Your bank opened a dispute over your payment for %(offer)s, so your access is suspended until it is resolved.",
        "If you did not mean to dispute this payment, ask your bank to withdraw the dispute.",
    ),
}
REVOKED_UNKNOWN = ("Your access to %(offer)s has ended.", "You can see why, and join again, from My memberships.")
# Reasons after which updating the card can bring access back.
REVOKED_CARD_REASONS = {"payment_failed"}


def _entitlement(**lookup: Any) -> Entitlement | None:
    return Entitlement.objects.select_related("user", "offer").filter(**lookup).first()


def _links(entitlement: Entitlement) -> dict[str, str]:
    return {
        "portal_url": settings.SITE_URL + reverse("billing:membership_portal", kwargs={"pk": entitlement.pk}),
        "memberships_url": settings.SITE_URL + reverse("billing:my_memberships"),
    }


def _email(name: str, entitlement: Entitlement, **context: Any) -> outbox.Email:
    context = {"user": entitlement.user, "offer": entitlement.offer, "entitlement": entitlement, **context}
    return outbox.templated_email(to=entitlement.user.email, name=name, context={**context, **_links(entitlement)})


def _past_due(entitlement: Entitlement, now: datetime) -> bool:
    return entitlement.effective_status(now=now) == Entitlement.Status.PAST_DUE


def payment_failed_build(payload: dict[str, Any]) -> outbox.Email | None:
    """``payment_failed`` {entitlement, invoice}: the card was declined; access continues until
    the grace period ends; update the card."""
    entitlement = _entitlement(pk=payload["entitlement"])
    now = timezone.now()
    if entitlement is None or not _past_due(entitlement, now):
        return None  # paid again (or ended) before this went out
    return _email("payment_failed", entitlement, access_until=entitlement.access_until)


def grace_ending_build(payload: dict[str, Any]) -> outbox.Email | None:
    """``grace_ending`` {entitlement}: a day before the grace period ends."""
    entitlement = _entitlement(pk=payload["entitlement"])
    now = timezone.now()
    if entitlement is None or not _past_due(entitlement, now):
        return None
    return _email("grace_ending", entitlement, access_until=entitlement.access_until)


def access_restored_build(payload: dict[str, Any]) -> outbox.Email | None:
    """``access_restored`` {entitlement}: the payment went through (or the dispute was won)."""
    entitlement = _entitlement(pk=payload["entitlement"])
    if entitlement is None or not entitlement.has_access(now=timezone.now()):
        return None
    return _email("access_restored", entitlement)


def _still_revoked(entitlement: Entitlement, payload: dict[str, Any]) -> bool:
    """Whether the access the email says is gone is still gone. For a grace period's end the
    job that recorded the email decided it was over, at its own now: still true while the
    entitlement is past due with that same grace period (not paid since), whatever the
    sender's clock says."""
    grace_ended = payload.get("grace_ended")
    if grace_ended is None:
        return not entitlement.has_access(now=timezone.now())
    until = entitlement.access_until
    return (
        entitlement.status == Entitlement.Status.PAST_DUE
        and until is not None
        and int(until.timestamp()) == grace_ended
    )


def access_revoked_build(payload: dict[str, Any]) -> outbox.Email | None:
    """``access_revoked`` {entitlement, reason}: access ended or is suspended, and why."""
    entitlement = _entitlement(pk=payload["entitlement"])
    if entitlement is None or not _still_revoked(entitlement, payload):
        return None  # given back before this went out
    reason = str(payload.get("reason", ""))
    what, next_step = REVOKED_REASONS.get(reason, REVOKED_UNKNOWN)
    return _email(
        "access_revoked",
        entitlement,
        reason=reason,
        what_happened=what % {"offer": entitlement.offer.title},
        next_step=next_step,
        suspended=reason in ("payment_failed", "disputed"),
        card_can_help=reason in REVOKED_CARD_REASONS,
    )


def renewal_receipt_build(payload: dict[str, Any]) -> outbox.Email | None:
    """``renewal_receipt`` {payment}: the amount, date and card of a renewal, and the next
    payment's date (none when the subscription ends at this period's end)."""
    payment = Payment.objects.filter(pk=payload["payment"]).first()
    if payment is None:
        return None
    entitlement = _entitlement(user_id=payment.user_id, offer_id=payment.offer_id)
    if entitlement is None or not entitlement.offer.renewal_receipts:
        return None  # the creator turned renewal receipts off meanwhile
    renewing = entitlement.renews_at is not None and not entitlement.cancel_at_period_end
    # Stripe's date when the subscription stops at this period's end: access_until adds a
    # leeway that can fall on the next day.
    ends_at = entitlement.access_until
    if entitlement.cancel_at_period_end and payment.period_end:
        ends_at = payment.period_end
    return _email(
        "renewal_receipt",
        entitlement,
        payment=payment,
        paid_at=payment.paid_at or payment.created_at,
        next_payment_at=entitlement.renews_at if renewing else None,
        ends_at=None if renewing else ends_at,
    )


BUILDERS: dict[str, outbox.EmailBuilder] = {
    "payment_failed": payment_failed_build,
    "grace_ending": grace_ending_build,
    "access_restored": access_restored_build,
    "access_revoked": access_revoked_build,
    "renewal_receipt": renewal_receipt_build,
}
