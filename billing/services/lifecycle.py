"""What happens after the first payment: renewals, failed payments, cancellations, refunds and
disputes, and the creator's Refund and Cancel.

One rule makes the order of events irrelevant. Each handler re-reads from Stripe the object
its event is about (a subscription, a charge, a dispute) and stores Stripe's current state of
it on billing's own rows (``StripeSubscription``, ``Payment``); then ``entitlement_converge``
computes the entitlement from those rows alone (``target_state``, a pure function) and hands
the result to memberships. Whatever order the events come in, once each has been handled the
rows hold Stripe's current state, so the entitlement is the same as in-order delivery gives.

Which purchase backs the entitlement: the most recent one (by Stripe's ``created``) that has
been paid. Events about an older subscription update its row but no longer change an
entitlement that a newer purchase backs.

Stripe writes (a refund, a cancellation) are recorded in the outbox with the change that asks
for them and carried out by its task, with the outbox row's idempotency key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from django.db import transaction
from django.utils import timezone

from accounts import outbox
from accounts.models import OutboxMessage, User
from billing import hooks
from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, Payment, StripeSubscription
from billing.services import sales_days
from core.figures import figures_forget
from memberships.models import Entitlement, EntitlementChange, Offer, format_money
from memberships.services import RENEWAL_LEEWAY, EntitlementState, entitlement_apply, entitlement_note

logger = logging.getLogger(__name__)

REFUND_ACTION = "stripe_refund"
CANCEL_ACTION = "stripe_subscription_cancel"
CANCEL_AT_PERIOD_END_ACTION = "stripe_subscription_cancel_at_period_end"


# --- The rule ----------------------------------------------------------------------------------
def _subscription_state(offer: Offer, subscription: StripeSubscription) -> EntitlementState:
    source, backed_by = Entitlement.Source.SUBSCRIPTION, subscription.subscription_id
    period_end = subscription.current_period_end
    if subscription.status in ("active", "trialing"):
        return EntitlementState(
            status=Entitlement.Status.ACTIVE,
            access_until=period_end + RENEWAL_LEEWAY if period_end else None,
            renews_at=None if subscription.cancel_at_period_end else period_end,
            cancel_at_period_end=subscription.cancel_at_period_end,
            source=source,
            backed_by=backed_by,
        )
    if subscription.status in ("past_due", "unpaid"):
        # Access runs for the grace period from the failure, and never past the paid period.
        failing_since = subscription.failing_since or subscription.current_period_start
        until = failing_since + timedelta(days=offer.grace_period_days) if failing_since else None
        if until and period_end:
            until = min(until, period_end + RENEWAL_LEEWAY)
        return EntitlementState(
            status=Entitlement.Status.PAST_DUE,
            access_until=until,
            cancel_at_period_end=subscription.cancel_at_period_end,
            source=source,
            backed_by=backed_by,
        )
    if subscription.status == "paused":
        return EntitlementState(status=Entitlement.Status.SUSPENDED, source=source, backed_by=backed_by)
    # canceled, incomplete_expired: access ends at once, even inside a grace period.
    return EntitlementState(status=Entitlement.Status.CANCELED, source=source, backed_by=backed_by)


def target_state(*, offer: Offer, backing: StripeSubscription | Payment, payments: list[Payment]) -> EntitlementState:
    """The entitlement that Stripe's state of its backing purchase calls for.

    In order of precedence: a lost dispute ends access; a full refund ends it when the offer's
    policy revokes (partial refunds are recorded and keep access, until together they cover
    the payment); an open dispute suspends it; otherwise the subscription's status decides (a
    one-time purchase gives access without end). A test purchase the creator has refunded and
    hidden ends access at once, before Stripe confirms the refund.
    """
    backed_by = backing.subscription_id if isinstance(backing, StripeSubscription) else backing.payment_intent_id
    source = Entitlement.Source.SUBSCRIPTION if isinstance(backing, StripeSubscription) else Entitlement.Source.PURCHASE
    state = _target_state(offer=offer, backing=backing, payments=payments, source=source, backed_by=backed_by)
    # A test purchase's entitlement is marked (left out of buyer counts); once the creator has
    # refunded and hidden it, access ends whatever the offer's refund policy.
    is_test = bool(payments) and all(payment.is_test for payment in payments)
    if is_test and any(payment.hidden_at for payment in payments):
        state = EntitlementState(status=Entitlement.Status.REFUNDED, source=source, backed_by=backed_by)
    return replace(state, is_test=is_test)


def _target_state(
    *,
    offer: Offer,
    backing: StripeSubscription | Payment,
    payments: list[Payment],
    source: Entitlement.Source,
    backed_by: str,
) -> EntitlementState:
    if any(payment.dispute_status == Payment.DisputeStatus.LOST for payment in payments):
        return EntitlementState(status=Entitlement.Status.DISPUTE_LOST, source=source, backed_by=backed_by)
    if offer.refund_policy == Offer.RefundPolicy.REVOKE and any(payment.is_fully_refunded for payment in payments):
        return EntitlementState(status=Entitlement.Status.REFUNDED, source=source, backed_by=backed_by)
    if any(payment.dispute_status == Payment.DisputeStatus.OPEN for payment in payments):
        return EntitlementState(status=Entitlement.Status.DISPUTED, source=source, backed_by=backed_by)
    if isinstance(backing, StripeSubscription):
        return _subscription_state(offer, backing)
    return EntitlementState(status=Entitlement.Status.ACTIVE, source=source, backed_by=backed_by)


def _describe(before: Entitlement | None, after: EntitlementState, payments: list[Payment]) -> str:
    """The history's words for a change."""
    status = after.status
    refunded = sum(payment.amount_refunded for payment in payments)
    currency = payments[0].currency if payments else "usd"
    if status == Entitlement.Status.REFUNDED and after.is_test and any(payment.hidden_at for payment in payments):
        return "Test purchase refunded and hidden by the creator: access ended"
    if status == Entitlement.Status.REFUNDED:
        return f"Payment refunded in full ({format_money(refunded, currency)}): access revoked"
    if status == Entitlement.Status.DISPUTE_LOST:
        return "Dispute lost: access ended"
    if status == Entitlement.Status.DISPUTED:
        return "Payment disputed: access suspended until the dispute is decided"
    if status == Entitlement.Status.CANCELED:
        return "Subscription canceled: access ended"
    if status == Entitlement.Status.SUSPENDED:
        return "Subscription paused: access suspended"
    if status == Entitlement.Status.PAST_DUE:
        until = timezone.localtime(after.access_until).strftime("%b %-d, %Y") if after.access_until else "—"
        return f"Renewal payment failed: access continues until {until} (grace period)"
    if before is None or before.backed_by != after.backed_by:
        return "Purchased"
    if before.status == Entitlement.Status.DISPUTED:
        return "Dispute won: access restored"
    if before.status == Entitlement.Status.PAST_DUE:
        return "Payment received: access restored"
    if after.cancel_at_period_end and not before.cancel_at_period_end:
        return "Set to cancel at the end of the period"
    if before.cancel_at_period_end and not after.cancel_at_period_end:
        return "Cancellation withdrawn: the subscription renews"
    if after.access_until and (before.access_until is None or after.access_until > before.access_until):
        return f"Renewed until {timezone.localtime(after.access_until).strftime('%b %-d, %Y')}"
    if before.status != status:
        return f"Access restored ({Entitlement.Status(status).label})"
    return "Updated from Stripe"


@dataclass(frozen=True)
class Cause:
    """What made the change: a Stripe event, or a person."""

    event_id: str = ""
    by: User | None = None
    new_account: bool = False


@transaction.atomic
def entitlement_converge(*, user: User, offer: Offer, cause: Cause = Cause()) -> Entitlement | None:
    """Compute the (user, offer) entitlement from billing's rows and apply it. None when no
    paid purchase backs it (a free claim, or nothing paid yet): then it is left alone."""
    Entitlement.objects.select_for_update().filter(user=user, offer=offer).first()  # one at a time
    subscriptions = list(StripeSubscription.objects.filter(user=user, offer=offer))
    payments = list(Payment.objects.filter(user=user, offer=offer))
    paid_subscription_ids = {payment.stripe_subscription_id for payment in payments if payment.stripe_subscription_id}
    candidates: list[tuple[datetime, StripeSubscription | Payment]] = [
        (subscription.created, subscription)
        for subscription in subscriptions
        if subscription.subscription_id in paid_subscription_ids
    ]
    candidates += [
        (payment.paid_at or payment.created_at, payment)
        for payment in payments
        if payment.kind == Payment.Kind.ONE_TIME and payment.payment_intent_id
    ]
    if not candidates:
        return None
    backing = max(candidates, key=lambda candidate: candidate[0])[1]
    own = (
        [payment for payment in payments if payment.stripe_subscription_id == backing.subscription_id]
        if isinstance(backing, StripeSubscription)
        else [backing]
    )
    offer = Offer.objects.get(pk=offer.pk)  # the current refund policy and grace period
    state = target_state(offer=offer, backing=backing, payments=own)
    before = Entitlement.objects.filter(user=user, offer=offer).first()
    applied = entitlement_apply(
        user=user,
        offer=offer,
        state=state,
        reason=_describe(before, state, own),
        event_id=cause.event_id,
        by=cause.by,
        new_account=cause.new_account,
    )
    ends = state.status in (Entitlement.Status.REFUNDED, Entitlement.Status.DISPUTE_LOST)
    if ends and isinstance(backing, StripeSubscription) and backing.is_live:
        # No later invoice may grant it again.
        outbox.outbox_action_record(
            key=f"cancel:{backing.subscription_id}", action=CANCEL_ACTION, subscription=backing.subscription_id
        )
    return applied.entitlement


# --- Stripe's state onto billing's rows ----------------------------------------------------------
def _attempt_for_subscription(account_id: str, subscription: gateway.Subscription) -> CheckoutAttempt | None:
    attempt = CheckoutAttempt.objects.filter(
        stripe_account_id=account_id, stripe_subscription_id=subscription.subscription_id
    ).first()
    if attempt is None and subscription.checkout_attempt:
        try:
            attempt = CheckoutAttempt.objects.filter(
                pk=subscription.checkout_attempt, stripe_account_id=account_id
            ).first()
        except (ValueError, TypeError):  # not a UUID: not ours
            attempt = None
    return attempt


@dataclass(frozen=True)
class SubscriptionFacts:
    """A subscription as Stripe has it, read before the transaction that stores it."""

    subscription: gateway.Subscription
    failing: gateway.Invoice | None
    read_at: datetime


def subscription_facts(*, account_id: str, subscription_id: str) -> SubscriptionFacts:
    """Read a subscription (and its failing invoice) from Stripe, outside any transaction."""
    read_at = timezone.now()
    subscription, failing = gateway.subscription_read(account_id=account_id, subscription_id=subscription_id)
    return SubscriptionFacts(subscription=subscription, failing=failing, read_at=read_at)


@transaction.atomic
def subscription_store(
    *, account_id: str, facts: SubscriptionFacts, user: User, offer: Offer, attempt: CheckoutAttempt | None
) -> StripeSubscription:
    """Store Stripe's state of a subscription, unless a later read was stored already."""
    subscription, failing, read_at = facts.subscription, facts.failing, facts.read_at
    values: dict[str, Any] = {
        "stripe_account_id": account_id,
        "customer_id": subscription.customer_id,
        "status": subscription.status,
        "current_period_start": subscription.period_start,
        "current_period_end": subscription.period_end,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": subscription.canceled_at,
        "ended_at": subscription.ended_at,
        "failing_since": (failing.created or subscription.period_start) if failing else None,
        "failing_invoice_id": failing.invoice_id if failing else "",
        "synced_at": read_at,
    }
    row, created = StripeSubscription.objects.get_or_create(
        subscription_id=subscription.subscription_id,
        defaults={
            **values,
            "user": user,
            "offer": offer,
            "attempt": attempt,
            "created": subscription.created or read_at,
        },
    )
    if not created:
        row = StripeSubscription.objects.select_for_update().get(pk=row.pk)
        if row.synced_at <= read_at:
            for name, value in values.items():
                setattr(row, name, value)
            row.save()
    figures_forget()  # MRR and cancellations count subscriptions
    return row


@transaction.atomic
def payment_charge_store(
    *, payment_pk: int, charge: gateway.Charge, dispute: gateway.Dispute | None, read_at: datetime
) -> Payment:
    """Store a payment's charge as Stripe has it now: refunded so far, and its dispute."""
    payment = Payment.objects.select_for_update().get(pk=payment_pk)
    if payment.charge_read_at is None or payment.charge_read_at <= read_at:
        before = sales_days.share_of(payment)
        payment.charge_id = charge.charge_id or payment.charge_id
        payment.card_last4 = charge.card_last4 or payment.card_last4
        payment.amount_refunded = min(charge.amount_refunded, payment.amount)
        payment.dispute_status = dispute.outcome if dispute else ""
        if charge.application_fee_amount:
            payment.application_fee_id = charge.application_fee_id
            payment.application_fee_amount = charge.application_fee_amount
        if charge.stripe_fee and charge.stripe_fee_currency.lower() == payment.currency:
            payment.stripe_fee_amount = charge.stripe_fee
        payment.charge_read_at = read_at
        payment.save()
        sales_days.sales_day_move(before=before, after=sales_days.share_of(payment))
    hooks.payment_changed(payment)
    return payment


@dataclass(frozen=True)
class ChargeFacts:
    charge: gateway.Charge | None
    dispute: gateway.Dispute | None
    read_at: datetime


def charge_facts(*, account_id: str, payment_intent_id: str) -> ChargeFacts:
    """Read a payment intent's charge and its dispute from Stripe (outside any transaction)."""
    read_at = timezone.now()
    charge = gateway.payment_intent_charge(account_id=account_id, payment_intent_id=payment_intent_id)
    dispute = None
    if charge is not None and charge.disputed:
        dispute = gateway.charge_dispute(account_id=account_id, charge_id=charge.charge_id)
    return ChargeFacts(charge=charge, dispute=dispute, read_at=read_at)


@transaction.atomic
def payment_charge_apply(*, payment_pk: int, facts: ChargeFacts, event_id: str = "") -> str:
    """Store a payment's charge as read, bring the entitlement up to date, and note a partial
    refund in the entitlement's history (a full one changes the entitlement itself, per the
    offer's policy). Returns a line for the event log."""
    assert facts.charge is not None
    before = Payment.objects.get(pk=payment_pk)
    payment = payment_charge_store(
        payment_pk=payment_pk, charge=facts.charge, dispute=facts.dispute, read_at=facts.read_at
    )
    entitlement = entitlement_converge(user=payment.user, offer=payment.offer, cause=Cause(event_id=event_id))
    refunded = payment.amount_refunded - before.amount_refunded
    if refunded > 0 and entitlement is not None and entitlement.status != Entitlement.Status.REFUNDED:
        total = format_money(payment.amount_refunded, payment.currency)
        kind = "Full" if payment.is_fully_refunded else "Partial"
        # Access may have ended otherwise meanwhile (the subscription canceled with the refund).
        kept = "; access kept" if entitlement.has_access() else ""
        entitlement_note(
            entitlement=entitlement,
            reason=f"{kind} refund of {format_money(refunded, payment.currency)} recorded ({total} refunded in all)"
            f"{kept}",
            event_id=event_id,
        )
    state = entitlement.status if entitlement else "unchanged"
    return f"refunded {payment.amount_refunded}, dispute {payment.dispute_status or 'none'}: entitlement {state}"


@transaction.atomic
def payment_failed_record(*, subscription_id: str, invoice_id: str) -> None:
    """The failed-payment email, once per failing invoice, while the failure stands."""
    subscription = StripeSubscription.objects.filter(subscription_id=subscription_id).first()
    if subscription is None or subscription.failing_invoice_id != invoice_id:
        return
    entitlement = Entitlement.objects.filter(user=subscription.user_id, offer=subscription.offer_id).first()
    if (
        entitlement is None
        or entitlement.backed_by != subscription_id
        or entitlement.status != Entitlement.Status.PAST_DUE
    ):
        return
    outbox.outbox_email_record(
        key=f"payment_failed:{invoice_id}", email="payment_failed", entitlement=entitlement.pk, invoice=invoice_id
    )


# --- The creator's actions --------------------------------------------------------------------
class RefundNotAllowed(Exception):
    pass


class CancelNotAllowed(Exception):
    pass


class PortalNotAvailable(Exception):
    pass


@transaction.atomic
def payment_refund_request(*, payment: Payment, amount: int, by: User, request_key: str) -> None:
    """Ask Stripe to refund ``amount`` (minor units) of the payment, through the outbox.

    The key names the request (the confirmation form's own id), so a double submit refunds
    once. Stripe's ``charge.refunded`` then brings the refund back, and the offer's policy
    decides what it does to access.
    """
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if not payment.payment_intent_id:
        raise RefundNotAllowed("This payment cannot be refunded from here: Stripe has no payment for it.")
    if amount < 1:
        raise RefundNotAllowed("Enter an amount of at least 0.01.")
    if amount > payment.refundable_amount:
        left = format_money(payment.refundable_amount, payment.currency)
        raise RefundNotAllowed(f"At most {left} of this payment can still be refunded.")
    key = f"refund:{payment.pk}:{request_key}"[:200]
    if OutboxMessage.objects.filter(key=key).exists():
        return
    outbox.outbox_action_record(key=key, action=REFUND_ACTION, payment=payment.pk, amount=amount, by=by.pk)
    entitlement = Entitlement.objects.filter(user=payment.user_id, offer=payment.offer_id).first()
    if entitlement is not None:
        entitlement_note(
            entitlement=entitlement,
            reason=f"Refund of {format_money(amount, payment.currency)} requested by the creator",
            by=by,
            request_key=request_key,
        )


def _backing_subscription(entitlement: Entitlement) -> StripeSubscription | None:
    if not entitlement.backed_by.startswith("sub_"):
        return None
    return StripeSubscription.objects.filter(subscription_id=entitlement.backed_by).first()


def current_payment(subscription: StripeSubscription, payments: list[Payment]) -> Payment | None:
    """The payment of the subscription's current period: its latest, of ``payments``."""
    own = [payment for payment in payments if payment.stripe_subscription_id == subscription.subscription_id]
    return max(
        own,
        key=lambda p: (p.period_end or p.paid_at or p.created_at, p.paid_at or p.created_at, p.pk),
        default=None,
    )


def _current_payment(subscription: StripeSubscription) -> Payment | None:
    return current_payment(
        subscription, list(Payment.objects.filter(stripe_subscription_id=subscription.subscription_id))
    )


def prorated_amount(*, subscription: StripeSubscription, payment: Payment | None, now: datetime) -> int:
    """The unused part of ``payment``'s period at ``now``, prorated by the second and rounded
    down to the cent (integer division), and never more than is left to refund of it."""
    if payment is None:
        return 0
    start = payment.period_start or subscription.current_period_start
    end = payment.period_end or subscription.current_period_end
    if start is None or end is None or end <= start or now >= end:
        return 0
    total = int((end - start).total_seconds())
    unused = int((end - max(now, start)).total_seconds())
    return min(payment.amount * unused // total, payment.refundable_amount)


def prorated_refund_amount(*, entitlement: Entitlement, now: datetime | None = None) -> int:
    """The unused part of the current period's payment (see ``prorated_amount``); 0 when
    nothing applies (no subscription, the period over)."""
    subscription = _backing_subscription(entitlement)
    if subscription is None:
        return 0
    return prorated_amount(subscription=subscription, payment=_current_payment(subscription), now=now or timezone.now())


CancelWhen = Literal["period_end", "now"]
CancelRefund = Literal["none", "last", "prorated"]


@transaction.atomic
def subscription_cancel_request(
    *, entitlement: Entitlement, when: CancelWhen, refund: CancelRefund, by: User, request_key: str
) -> None:
    """The creator cancels a buyer's subscription: at the period's end, or now with no refund,
    the last payment in full, or the unused part of the period. Carried out through the outbox;
    Stripe's events then change the entitlement."""
    if EntitlementChange.objects.filter(entitlement=entitlement, request_key=request_key[:64]).exists():
        return  # the same request, submitted again
    subscription = _backing_subscription(entitlement)
    if subscription is None or not subscription.is_live:
        raise CancelNotAllowed("This membership has no subscription that renews: there is nothing to cancel.")
    if when == "period_end":
        if refund != "none":
            raise CancelNotAllowed("A cancellation at the end of the period cannot include a refund.")
        if subscription.cancel_at_period_end:
            raise CancelNotAllowed("This subscription is already set to cancel at the end of the period.")
        outbox.outbox_action_record(
            key=f"cancel-at-period-end:{subscription.subscription_id}:{request_key}"[:200],
            action=CANCEL_AT_PERIOD_END_ACTION,
            subscription=subscription.subscription_id,
        )
        entitlement_note(
            entitlement=entitlement,
            reason="Cancellation at the end of the period requested by the creator",
            by=by,
            request_key=request_key,
        )
        return
    amount = 0
    payment = _current_payment(subscription)
    if refund == "last" and payment is not None:
        amount = payment.refundable_amount
    elif refund == "prorated":
        amount = prorated_refund_amount(entitlement=entitlement)
    outbox.outbox_action_record(
        key=f"cancel:{subscription.subscription_id}", action=CANCEL_ACTION, subscription=subscription.subscription_id
    )
    words = "no refund"
    if amount and payment is not None:
        outbox.outbox_action_record(
            key=f"refund:{payment.pk}:{request_key}"[:200],
            action=REFUND_ACTION,
            payment=payment.pk,
            amount=amount,
            by=by.pk,
        )
        words = f"a refund of {format_money(amount, payment.currency)}"
    entitlement_note(
        entitlement=entitlement,
        reason=f"Immediate cancellation with {words} requested by the creator",
        by=by,
        request_key=request_key,
    )


def portal_session_url(*, entitlement: Entitlement, return_url: str) -> str:
    """A fresh billing portal session for the buyer (update the card, cancel, invoices)."""
    subscription = _backing_subscription(entitlement)
    customer_id, account_id = "", ""
    if subscription is not None:
        customer_id, account_id = subscription.customer_id, subscription.stripe_account_id
    else:
        payment = (
            Payment.objects.filter(user=entitlement.user_id, offer=entitlement.offer_id, attempt__isnull=False)
            .select_related("attempt")
            .first()
        )
        if payment is not None and payment.attempt is not None:
            customer_id, account_id = payment.attempt.stripe_customer_id, payment.stripe_account_id
    if not customer_id:
        raise PortalNotAvailable("There is no billing account for this membership: nothing to manage.")
    return gateway.portal_session_create(account_id=account_id, customer_id=customer_id, return_url=return_url)


# --- The outbox's Stripe writes (registered in BillingConfig.ready) ----------------------------
def _permanent(exc: gateway.StripeGatewayError) -> Exception:
    if isinstance(exc, gateway.StripeUnavailable):
        return exc
    return outbox.PermanentFailure(getattr(exc, "user_message", "") or str(exc))


def perform_refund(payload: dict[str, Any], idempotency_key: str) -> str | None:
    payment = Payment.objects.filter(pk=payload["payment"]).first()
    if payment is None:
        raise outbox.PermanentFailure("The payment no longer exists.")
    try:
        return gateway.refund_create(
            account_id=payment.stripe_account_id,
            payment_intent_id=payment.payment_intent_id,
            amount=int(payload["amount"]),
            idempotency_key=idempotency_key,
            metadata={"payment": str(payment.pk), "requested_by": str(payload.get("by") or "")},
            # A referred sale's commission is refunded to the creator in the same proportion.
            refund_application_fee=payment.application_fee_amount > 0,
        )
    except gateway.StripeGatewayError as exc:
        raise _permanent(exc) from exc


def _subscription_row(payload: dict[str, Any]) -> StripeSubscription:
    row = StripeSubscription.objects.filter(subscription_id=payload["subscription"]).first()
    if row is None:
        raise outbox.PermanentFailure("The subscription is not known here.")
    return row


def perform_cancel(payload: dict[str, Any], idempotency_key: str) -> str | None:
    row = _subscription_row(payload)
    try:
        return gateway.subscription_cancel(
            account_id=row.stripe_account_id, subscription_id=row.subscription_id, idempotency_key=idempotency_key
        )
    except gateway.StripeGatewayError as exc:
        raise _permanent(exc) from exc


def perform_cancel_at_period_end(payload: dict[str, Any], idempotency_key: str) -> str | None:
    row = _subscription_row(payload)
    try:
        return gateway.subscription_set_cancel_at_period_end(
            account_id=row.stripe_account_id,
            subscription_id=row.subscription_id,
            cancel=True,
            idempotency_key=idempotency_key,
        )
    except gateway.StripeGatewayError as exc:
        raise _permanent(exc) from exc


# --- Reminders -----------------------------------------------------------------------------------
GRACE_REMINDER_BEFORE = timedelta(days=1)
# How far back the job looks for grace periods that ran out (it runs every two minutes; a
# longer look-back covers a beat that was down for a while).
GRACE_ENDED_LOOKBACK = timedelta(days=3)


def grace_reminders_record(*, now: datetime | None = None) -> int:
    """Record the emails that the clock, not an event, calls for (the periodic sweep runs this):
    "one day left" for each past-due entitlement whose grace period ends within a day, and
    "access suspended" once it has ended. Keyed by the grace period's end: once each.

    Access itself needs no job: it ends when ``access_until`` passes, as it is read.
    """
    now = now or timezone.now()
    past_due = Entitlement.objects.filter(status=Entitlement.Status.PAST_DUE)
    ending = past_due.filter(access_until__gt=now, access_until__lte=now + GRACE_REMINDER_BEFORE)
    ended = past_due.filter(access_until__lte=now, access_until__gt=now - GRACE_ENDED_LOOKBACK)
    recorded = 0
    for rows, prefix, email, extra in (
        (ending, "grace_ending", "grace_ending", {}),
        (ended, "suspended", "access_revoked", {"reason": "payment_failed"}),
    ):
        for pk, until in rows.values_list("pk", "access_until"):
            assert until is not None
            ends = int(until.timestamp())
            key = f"{prefix}:{pk}:{ends}"
            with transaction.atomic():
                if not OutboxMessage.objects.filter(key=key).exists():
                    # The grace period's end goes with the suspension email: this job decided it
                    # is over, and the sender only checks that it still stands unpaid.
                    ids = {**extra, "grace_ended": ends} if prefix == "suspended" else extra
                    outbox.outbox_email_record(key=key, email=email, entitlement=pk, **ids)
                    recorded += 1
    return recorded
