"""Fulfilment: a payment Stripe confirmed becomes a recorded payment and an entitlement."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts import outbox
from accounts.services import user_get_or_create
from billing.models import CheckoutAttempt, Payment, WebhookEvent
from billing.services import lifecycle, sales_days
from billing.stripe_gateway import PaidObject
from memberships.services import member_joined

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What processing an event did: the ``WebhookEvent`` status and a line for the log."""

    status: WebhookEvent.Status
    message: str = ""


@transaction.atomic
def checkout_attempt_fulfil(
    *,
    attempt_id: uuid.UUID,
    paid: PaidObject,
    payment_intent_id: str = "",
    charge: lifecycle.ChargeFacts | None = None,
    subscription: lifecycle.SubscriptionFacts | None = None,
    event_id: str = "",
) -> Outcome:
    """Record a payment and bring the buyer's entitlement up to date: idempotent and safe in
    any order.

    The attempt row is locked so that concurrent deliveries of one payment (or a
    ``checkout.session.completed`` racing the ``invoice.paid`` for the same invoice) queue up
    here; the payment's unique Stripe id makes the second one record nothing, though it still
    stores the fresher Stripe state it read.
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

    user = attempt.user
    created = False
    if user is None:
        user, created = user_get_or_create(email=attempt.email, full_name=attempt.full_name)
        attempt.user = user
        attempt.user_created = created
    payment, recorded = Payment.objects.get_or_create(
        stripe_object_id=paid.stripe_object_id,
        defaults={
            "kind": paid.kind,
            "stripe_account_id": attempt.stripe_account_id,
            "amount": paid.amount,
            "currency": paid.currency.lower(),
            "user": user,
            "offer": attempt.offer,
            "attempt": attempt,
            "payment_intent_id": payment_intent_id or (paid.stripe_object_id if paid.kind == "one_time" else ""),
            "stripe_subscription_id": paid.subscription_id,
            "is_renewal": paid.is_renewal,
            "period_start": paid.period_start,
            "period_end": paid.period_end,
            "paid_at": paid.created or timezone.now(),
            "is_test": attempt.is_test,
        },
    )
    if recorded:
        sales_days.sales_day_move(before=None, after=sales_days.share_of(payment))
        if not payment.is_test and not payment.is_renewal and payment.paid_at is not None:
            # Stripe's time of a first payment may be earlier than the entitlement it starts.
            member_joined(user_id=user.pk, at=payment.paid_at)
    if not recorded and payment_intent_id and not payment.payment_intent_id:
        Payment.objects.filter(pk=payment.pk).update(payment_intent_id=payment_intent_id)
    if charge is not None and charge.charge is not None:
        lifecycle.payment_charge_store(
            payment_pk=payment.pk, charge=charge.charge, dispute=charge.dispute, read_at=charge.read_at
        )
    if subscription is not None:
        lifecycle.subscription_store(
            account_id=attempt.stripe_account_id,
            facts=subscription,
            user=payment.user,
            offer=attempt.offer,
            attempt=attempt,
        )
    if recorded and paid.is_renewal and attempt.offer.renewal_receipts:
        outbox.outbox_email_record(key=f"receipt:{payment.pk}", email="renewal_receipt", payment=payment.pk)
    lifecycle.entitlement_converge(
        user=payment.user, offer=attempt.offer, cause=lifecycle.Cause(event_id=event_id, new_account=created)
    )

    if attempt.status != CheckoutAttempt.Status.PAID:
        attempt.status = CheckoutAttempt.Status.PAID
        attempt.paid_at = timezone.now()
        attempt.error = ""
    if paid.customer_id:
        attempt.stripe_customer_id = paid.customer_id
    if paid.subscription_id:
        attempt.stripe_subscription_id = paid.subscription_id
    attempt.save()
    if not recorded:
        return Outcome(WebhookEvent.Status.PROCESSED, "payment already recorded")
    return Outcome(WebhookEvent.Status.PROCESSED, f"recorded {payment.amount_label} from {payment.user.email}")


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
