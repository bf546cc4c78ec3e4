"""The commission ledger: what a referred payment earns its partner, the hold, the transfer to
the partner's Stripe account, and what refunds and disputes take back.

The flow (docs/AFFILIATES.md):

- ``commission_sync`` is billing's payment listener: whenever billing stores Stripe's state of
  a payment's charge, the payment's commission row is created (once: a unique key per payment
  and partner) or brought up to date from it: reversed in proportion to what was refunded,
  wholly on a lost dispute, frozen while a dispute is open. It runs in billing's transaction.
- ``commissions_pay_due`` (Celery beat) records an outbox row per commission whose hold is
  over, not frozen, owed, whose partner can be paid. The row's performer, ``perform_transfer``,
  makes the transfer outside any transaction.
- A commission paid and then reduced is given back with a transfer reversal
  (``perform_transfer_reversal``), again through the outbox.

Every Stripe write carries an idempotency key made from the ledger row: ``commission-
transfer:<id>:<try>`` (a refused try is recorded, so the next try is a new request) with the
transfer group ``commission-<id>``, which the performer looks up first, so a transfer made by
a process that died before recording it is found, never made twice; ``commission-reversal:
<id>:<total reversed>`` for reversals.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts import outbox
from affiliates.models import Attribution, Commission, Partner
from billing import stripe_gateway as gateway
from billing.models import Payment, StripeAccount, StripeSubscription
from billing.services.connect import stripe_account_disconnect, stripe_account_refresh_from_stripe

logger = logging.getLogger(__name__)

TRANSFER_ACTION = "commission_transfer"
REVERSAL_ACTION = "commission_transfer_reversal"
STOP_ACTION = "subscription_fee_stop"

# A refused transfer is tried again after 10 minutes, then waits doubling up to a day.
FIRST_RETRY_WAIT = timedelta(minutes=10)
LONGEST_RETRY_WAIT = timedelta(days=1)


def proportional_share(*, part: int, of: int, whole: int) -> int:
    """``whole * part / of`` in integer minor units, rounded half up: the commission reversed
    by a refund of ``part`` of a payment of ``of`` (Stripe refunds an application fee in
    proportion with the same rule). Exact in integers: no floats."""
    if of <= 0:
        return 0
    return min(whole, (2 * whole * part + of) // (2 * of))


def retry_wait(attempts: int) -> timedelta:
    return min(FIRST_RETRY_WAIT * (1 << max(0, attempts - 1)), LONGEST_RETRY_WAIT)


def hold_period() -> timedelta:
    return timedelta(days=settings.AFFILIATE_HOLD_DAYS)


def _reversed_of(payment: Payment, amount: int) -> int:
    if payment.dispute_status == Payment.DisputeStatus.LOST:
        return amount
    return proportional_share(part=payment.amount_refunded, of=payment.amount, whole=amount)


def commission_sync(payment: Payment) -> Commission | None:
    """Billing's payment listener: bring the payment's commission up to date with the payment
    as Stripe has it. Idempotent: the same ``invoice.paid`` three times is one row."""
    if not payment.application_fee_amount or payment.attempt_id is None:
        return None
    attribution = Attribution.objects.filter(attempt_id=payment.attempt_id).select_related("link").first()
    if attribution is None:
        return None
    commission, _ = Commission.objects.get_or_create(
        payment=payment,
        partner_id=attribution.link.partner_id,
        defaults={
            "attribution": attribution,
            "currency": payment.currency,
            "amount": payment.application_fee_amount,
            "hold_until": (payment.paid_at or timezone.now()) + hold_period(),
        },
    )
    commission = Commission.objects.select_for_update().get(pk=commission.pk)
    amount_reversed = max(commission.amount_reversed, _reversed_of(payment, commission.amount))
    frozen = payment.dispute_status == Payment.DisputeStatus.OPEN
    if (amount_reversed, frozen) != (commission.amount_reversed, commission.frozen):
        commission.amount_reversed = amount_reversed
        commission.frozen = frozen
        commission.save(update_fields=["amount_reversed", "frozen", "updated_at"])
    _reversal_queue(commission)
    return commission


def _reversal_queue(commission: Commission) -> None:
    """A paid commission now worth less than was transferred: take the difference back."""
    if commission.transfer_id and commission.pending < 0:
        target = commission.transfer_reversed - commission.pending
        outbox.outbox_action_record(
            key=f"commission-reversal:{commission.pk}:{target}",
            action=REVERSAL_ACTION,
            commission=commission.pk,
            target=target,
        )


# --- Paying --------------------------------------------------------------------------------------
def payout_account(partner: Partner) -> StripeAccount | None:
    """The partner's connected Stripe account when it can receive transfers, else None."""
    return StripeAccount.objects.partner_of(partner.user_id).filter(payouts_enabled=True).first()


def _due(now: datetime) -> Any:
    return (
        Commission.objects.filter(hold_until__lte=now, frozen=False, transfer_id="")
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(amount__gt=F("amount_reversed"))
    )


@transaction.atomic
def commissions_pay_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Record the transfer of every commission due (its hold over, not frozen, not paid, not
    waiting for its next try) whose partner can be paid. Returns how many were queued.
    Commissions of a partner without a usable Stripe account stay pending, and are paid by
    the first run after the partner reconnects."""
    now = now or timezone.now()
    queued = 0
    for commission in _due(now).select_related("partner").order_by("hold_until")[:limit]:
        if payout_account(commission.partner) is None:
            continue
        outbox.outbox_action_record(
            key=f"commission-transfer:{commission.pk}:{commission.attempts}",
            action=TRANSFER_ACTION,
            commission=commission.pk,
            # A refused try waits from the moment it was due, whatever the clock of the worker.
            due_at=now.isoformat(),
        )
        queued += 1
    return queued


def transfer_group(commission: Commission) -> str:
    return f"commission-{commission.pk}"


@transaction.atomic
def commission_transfer_record(*, commission_pk: int, transfer: gateway.Transfer) -> Commission:
    """A transfer Stripe made for the commission (or found by its group): recorded once."""
    commission = Commission.objects.select_for_update().get(pk=commission_pk)
    if not commission.transfer_id:
        commission.transfer_id = transfer.transfer_id
        commission.destination = transfer.destination
        commission.transferred = transfer.amount
        commission.transfer_reversed = transfer.amount_reversed
        commission.paid_at = timezone.now()
        commission.last_error = ""
        commission.next_attempt_at = None
        commission.save()
    # Refunded meanwhile (the amount was read before the call): give back the difference.
    _reversal_queue(commission)
    return commission


@transaction.atomic
def commission_transfer_refused(*, commission_pk: int, reason: str, due_at: datetime | None = None) -> Commission:
    """Stripe refused the transfer: note why, for the creator, and when to try again (the
    wait counts from when the try was due)."""
    commission = Commission.objects.select_for_update().get(pk=commission_pk)
    commission.attempts += 1
    commission.last_error = reason[:2000]
    commission.last_error_at = timezone.now()
    commission.next_attempt_at = (due_at or commission.last_error_at) + retry_wait(commission.attempts)
    commission.save()
    logger.warning(
        "commission %s: transfer refused (%s), next try at %s", commission.pk, reason, commission.next_attempt_at
    )
    return commission


def perform_transfer(payload: dict[str, Any], idempotency_key: str) -> str | None:
    """The outbox's performer of a commission's transfer (outside any transaction)."""
    commission = Commission.objects.select_related("partner").filter(pk=payload["commission"]).first()
    if commission is None:
        raise outbox.PermanentFailure("The commission no longer exists.")
    if commission.transfer_id:
        return f"already paid by {commission.transfer_id}"
    group = transfer_group(commission)
    made = gateway.transfers_in_group(transfer_group=group)
    if made:  # an earlier try that died before recording it
        commission_transfer_record(commission_pk=commission.pk, transfer=made[0])
        return made[0].transfer_id
    if commission.frozen or commission.payable <= 0:
        return "nothing to pay"
    due_at = _moment(payload.get("due_at"))
    account = payout_account(commission.partner)
    if account is None:
        commission_transfer_refused(
            commission_pk=commission.pk,
            reason="The partner's Stripe account is disconnected or cannot receive payouts.",
            due_at=due_at,
        )
        return "waiting for the partner's Stripe account"
    try:
        transfer = gateway.transfer_create(
            amount=commission.payable,
            currency=commission.currency,
            destination=account.account_id,
            transfer_group=group,
            metadata={"commission": str(commission.pk), "payment": str(commission.payment_id)},
            idempotency_key=idempotency_key,
        )
    except gateway.StripeUnavailable:
        raise  # the outbox tries the same request again
    except gateway.StripeGatewayError as exc:
        commission_transfer_refused(commission_pk=commission.pk, reason=_stripe_reason(exc), due_at=due_at)
        _partner_account_recheck(account.account_id)
        return f"refused: {exc}"[:255]
    commission_transfer_record(commission_pk=commission.pk, transfer=transfer)
    return transfer.transfer_id


def _partner_account_recheck(account_id: str) -> None:
    """After a refusal, read the partner's account again from Stripe: an event about it that
    never arrived (access revoked, payouts disabled) is caught up with here, so the next runs
    hold the commission until the partner fixes it, instead of trying in vain."""
    try:
        if gateway.account_access_revoked(account_id=account_id):
            stripe_account_disconnect(account_id=account_id, by=None)
        else:
            stripe_account_refresh_from_stripe(account_id=account_id)
    except gateway.StripeGatewayError as exc:
        logger.info("partner account %s not re-read: %s", account_id, exc)


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _stripe_reason(exc: gateway.StripeGatewayError) -> str:
    text = str(exc)
    if exc.code == "balance_insufficient" or "insufficient" in text.lower():
        return f"Stripe refused the transfer: the platform's balance is too low. {text}"
    return f"Stripe refused the transfer: {text}"


@transaction.atomic
def commission_reversal_record(*, commission_pk: int, transfer: gateway.Transfer) -> None:
    commission = Commission.objects.select_for_update().get(pk=commission_pk)
    if transfer.amount_reversed > commission.transfer_reversed:
        commission.transfer_reversed = min(transfer.amount_reversed, commission.transferred)
        commission.save(update_fields=["transfer_reversed", "updated_at"])


def perform_transfer_reversal(payload: dict[str, Any], idempotency_key: str) -> str | None:
    commission = Commission.objects.filter(pk=payload["commission"]).first()
    if commission is None or not commission.transfer_id:
        raise outbox.PermanentFailure("The commission has no transfer to reverse.")
    target = min(int(payload["target"]), commission.transferred)
    amount = target - commission.transfer_reversed
    if amount <= 0:
        return "reversed already"
    try:
        transfer = gateway.transfer_reverse(
            transfer_id=commission.transfer_id,
            amount=amount,
            metadata={"commission": str(commission.pk)},
            idempotency_key=idempotency_key,
        )
    except gateway.StripeUnavailable:
        raise
    except gateway.StripeGatewayError as exc:
        raise outbox.PermanentFailure(f"Stripe refused the transfer reversal: {exc}") from exc
    commission_reversal_record(commission_pk=commission.pk, transfer=transfer)
    return f"reversed {transfer.amount_reversed} of {transfer.transfer_id}"


# --- Stop commissions ------------------------------------------------------------------------------
ENDED_SUBSCRIPTION_STATUSES = ("canceled", "incomplete_expired")


@transaction.atomic
def partner_commissions_stop(*, partner: Partner) -> int:
    """The creator's "Stop commissions": every live subscription the partner referred gets a
    zero application fee from its next invoice (a Stripe write per subscription, through the
    outbox). Commissions already earned stay. Returns how many subscriptions change."""
    Partner.objects.filter(pk=partner.pk, commissions_stopped_at__isnull=True).update(
        commissions_stopped_at=timezone.now()
    )
    subscriptions = StripeSubscription.objects.filter(attempt__attribution__link__partner=partner).exclude(
        status__in=ENDED_SUBSCRIPTION_STATUSES
    )
    count = 0
    for subscription in subscriptions:
        outbox.outbox_action_record(
            key=f"commission-stop:{subscription.subscription_id}",
            action=STOP_ACTION,
            subscription=subscription.subscription_id,
        )
        count += 1
    return count


def perform_fee_stop(payload: dict[str, Any], idempotency_key: str) -> str | None:
    row = StripeSubscription.objects.filter(subscription_id=payload["subscription"]).first()
    if row is None:
        raise outbox.PermanentFailure("The subscription is not known here.")
    try:
        return gateway.subscription_set_application_fee_percent(
            account_id=row.stripe_account_id,
            subscription_id=row.subscription_id,
            percent=0,
            idempotency_key=idempotency_key,
        )
    except gateway.StripeUnavailable:
        raise
    except gateway.StripeGatewayError as exc:
        if "canceled" in str(exc).lower():
            return "already canceled"
        raise outbox.PermanentFailure(f"Stripe refused to stop the fee: {exc}") from exc
