"""Fulfilment: a payment Stripe confirmed becomes a recorded payment and an entitlement."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.services import user_get_or_create
from billing.models import CheckoutAttempt, Payment, WebhookEvent
from billing.stripe_gateway import PaidObject
from memberships.models import Entitlement, Offer
from memberships.services import entitlement_extend, entitlement_grant

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What processing an event did: the ``WebhookEvent`` status and a line for the log."""

    status: WebhookEvent.Status
    message: str = ""


@transaction.atomic
def checkout_attempt_fulfil(*, attempt_id: uuid.UUID, paid: PaidObject) -> Outcome:
    """Grant the offer for a payment and record it: idempotent and safe in any order.

    The attempt row is locked so that concurrent deliveries of one payment (or a
    ``checkout.session.completed`` racing the ``invoice.paid`` for the same invoice) queue up
    here; the payment's unique Stripe id makes the second one a no-op.
    """
    # Lock the attempt only: fulfilments of one offer must not queue up behind its row.
    attempt = CheckoutAttempt.objects.select_for_update(of=("self",)).select_related("offer").get(pk=attempt_id)
    if paid.currency.lower() != attempt.currency or (not paid.is_renewal and paid.amount != attempt.amount):
        message = (
            f"Stripe charged {paid.amount} {paid.currency.upper()} for {paid.stripe_object_id} but the buyer was "
            f"shown {attempt.amount} {attempt.currency.upper()}: not granted."
        )
        if attempt.status != CheckoutAttempt.Status.PAID:
            attempt.status = CheckoutAttempt.Status.FLAGGED
        attempt.error = message
        attempt.save(update_fields=["status", "error", "updated_at"])
        logger.warning("checkout attempt %s flagged: %s", attempt.pk, message)
        return Outcome(WebhookEvent.Status.FLAGGED, message)

    if Payment.objects.filter(stripe_object_id=paid.stripe_object_id).exists():
        return Outcome(WebhookEvent.Status.PROCESSED, "payment already recorded")

    user = attempt.user
    created = False
    if user is None:
        user, created = user_get_or_create(email=attempt.email, full_name=attempt.full_name)
        attempt.user = user
        attempt.user_created = created
    Payment.objects.create(
        stripe_object_id=paid.stripe_object_id,
        kind=paid.kind,
        stripe_account_id=attempt.stripe_account_id,
        amount=paid.amount,
        currency=paid.currency.lower(),
        user=user,
        offer=attempt.offer,
        attempt=attempt,
    )
    if attempt.pricing == Offer.Pricing.RECURRING:
        # Invoices may be processed out of order: the rule keeps an older one from shortening access.
        entitlement_extend(user=user, offer=attempt.offer, period_end=paid.period_end, new_account=created)
    else:
        entitlement_grant(user=user, offer=attempt.offer, source=Entitlement.Source.PURCHASE, new_account=created)

    if attempt.status != CheckoutAttempt.Status.PAID:
        attempt.status = CheckoutAttempt.Status.PAID
        attempt.paid_at = timezone.now()
        attempt.error = ""
    if paid.customer_id:
        attempt.stripe_customer_id = paid.customer_id
    if paid.subscription_id:
        attempt.stripe_subscription_id = paid.subscription_id
    attempt.save()
    return Outcome(WebhookEvent.Status.PROCESSED, f"granted {attempt.offer} to {user.email}")


@transaction.atomic
def checkout_attempt_mark(*, attempt_id: uuid.UUID, status: CheckoutAttempt.Status, error: str = "") -> None:
    """Record a payment still processing or failed. Never downgrades a paid or flagged attempt,
    and a late "still processing" never hides a failure that was already recorded."""
    attempts = CheckoutAttempt.objects.filter(pk=attempt_id).exclude(
        status__in=[CheckoutAttempt.Status.PAID, CheckoutAttempt.Status.FLAGGED]
    )
    if status == CheckoutAttempt.Status.PROCESSING:
        attempts = attempts.filter(status__in=[CheckoutAttempt.Status.STARTED, CheckoutAttempt.Status.OPEN])
    attempts.update(status=status, error=error[:2000])
