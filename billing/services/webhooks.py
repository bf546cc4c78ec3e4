"""The webhook log: storing verified events, processing them, the sweep and reconciliation.

``EVENT_HANDLERS`` is both the router and the list of the event types the platform handles
(reconciliation asks Stripe for exactly those).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Subquery
from django.utils import timezone

from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, OneClickPurchase, Payment, StripeAccount, WebhookEvent, WebhookRefusal
from billing.services import lifecycle
from billing.services.connect import stripe_account_disconnect, stripe_account_refresh_from_stripe
from billing.services.fulfilment import Outcome, checkout_attempt_fulfil, checkout_attempt_mark
from billing.services.lifecycle import subscription_facts
from core.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

PROCESS_TASK = "billing.tasks.process_webhook_event"


def webhook_event_record(*, event: dict[str, Any], recovered: bool = False) -> tuple[WebhookEvent, bool]:
    """Store a verified event by its Stripe id and queue its processing after commit
    (``recovered``: listed from Stripe by the reconciliation, not delivered).

    A duplicate delivery finds the stored row and queues nothing. The one atomic block is the
    whole transaction (or a savepoint inside a caller's): the webhook's hot path spends no
    round trips on an outer transaction around a single INSERT.
    """
    created_ts = event.get("created")
    try:
        # The unique event id turns a duplicate into a no-op.
        with transaction.atomic():
            row = WebhookEvent.objects.create(
                event_id=event["id"],
                type=event["type"][:100],
                account=str(event.get("account") or "")[:255],
                livemode=bool(event.get("livemode")),
                payload=event,
                recovered=recovered,
                stripe_created_at=_event_created_at(created_ts),
            )
    except IntegrityError:
        return WebhookEvent.objects.get(event_id=event["id"]), False
    # Robust: when tasks run in-process, a failure to process must not turn Stripe's delivery
    # into an error (the event is stored; retries and the sweep take it from here).
    enqueue_on_commit(PROCESS_TASK, row.pk, robust=True)
    return row, True


# A Stripe event type: what a refused delivery's type is kept as, when its body says one.
_EVENT_TYPE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")


@transaction.atomic
def webhook_refusal_record(*, reason: str, body: bytes, now: datetime | None = None) -> WebhookRefusal:
    """Note a refused delivery (when, why, and its event type if the body names a plausible
    one; never the body itself), keeping only the latest ``WebhookRefusal.KEEP``."""
    event_type = ""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("type"), str) and _EVENT_TYPE.fullmatch(parsed["type"]):
        event_type = parsed["type"][:100]
    if reason not in WebhookRefusal.Reason.values:
        reason = WebhookRefusal.Reason.MISMATCH
    row = WebhookRefusal.objects.create(received_at=now or timezone.now(), reason=reason, event_type=event_type)
    oldest_kept = WebhookRefusal.objects.order_by("-pk").values_list("pk", flat=True)[
        WebhookRefusal.KEEP - 1 : WebhookRefusal.KEEP
    ]
    WebhookRefusal.objects.filter(pk__lt=Subquery(oldest_kept)).delete()
    return row


def _event_created_at(value: Any) -> datetime | None:
    """An event's ``created`` as a moment, or None when it is not a plausible timestamp."""
    if type(value) is not int:
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


@transaction.atomic
def webhook_event_retry(*, event: WebhookEvent) -> bool:
    """Queue a pending or failed event for processing again (the staff page's Retry, the
    sweep). A processed, ignored or flagged event is left as it is: returns False."""
    queued = (
        WebhookEvent.objects.filter(pk=event.pk)
        .exclude(status__in=WebhookEvent.DONE_STATUSES)
        .update(status=WebhookEvent.Status.PENDING)
    )
    if queued:
        enqueue_on_commit(PROCESS_TASK, event.pk, robust=True)
    return bool(queued)


@transaction.atomic
def webhook_event_finish(*, event_pk: int, status: WebhookEvent.Status, message: str = "") -> None:
    WebhookEvent.objects.filter(pk=event_pk).update(
        status=status,
        error=message[:4000] if status in (WebhookEvent.Status.FAILED, WebhookEvent.Status.FLAGGED) else "",
        processed_at=timezone.now() if status != WebhookEvent.Status.FAILED else None,
    )


SWEEP_AFTER = timedelta(minutes=2)
# Failed events are tried again for as long as Stripe itself retries a delivery.
SWEEP_GIVE_UP_AFTER = timedelta(days=3)
SWEEP_LONGEST_WAIT = timedelta(hours=6)


def _sweep_wait(attempts: int) -> timedelta:
    """How long a failed event rests before the sweep tries it again: doubling from two
    minutes once the task's own quick retries (about six) are spent, up to six hours."""
    doublings = max(0, attempts - 6)
    return min(SWEEP_AFTER * (1 << doublings), SWEEP_LONGEST_WAIT)


def webhook_events_sweep(*, now: datetime | None = None) -> int:
    """Re-queue events stored but never processed (a lost task, a worker that died) and failed
    ones whose back-off has passed, for three days. Returns how many were queued."""
    now = now or timezone.now()
    candidates = WebhookEvent.objects.filter(
        status__in=[WebhookEvent.Status.PENDING, WebhookEvent.Status.FAILED],
        received_at__lt=now - SWEEP_AFTER,
        received_at__gte=now - SWEEP_GIVE_UP_AFTER,
    ).filter(Q(last_attempt_at__isnull=True) | Q(last_attempt_at__lt=now - SWEEP_AFTER))
    due = [
        event
        for event in candidates.order_by("received_at")[:500]
        if event.last_attempt_at is None or event.last_attempt_at <= now - _sweep_wait(event.attempts)
    ][:200]
    for event in due:
        webhook_event_retry(event=event)
    return len(due)


RECONCILE_WINDOW = timedelta(days=2)


def webhook_events_reconcile(*, now: datetime | None = None, since: datetime | None = None) -> int:
    """Record events Stripe has but never delivered (an endpoint down for longer than Stripe
    retries, a delivery lost): list the connected account's events of the handled types since
    ``since`` (two days by default) and store the missing ones, which queues their processing.
    Returns how many."""
    account = StripeAccount.objects.creator().first()
    if account is None:
        return 0
    now = now or timezone.now()
    events = gateway.events_list(
        account_id=account.account_id,
        types=sorted(EVENT_HANDLERS),
        created_gte=int((since or now - RECONCILE_WINDOW).timestamp()),
    )
    known = set(WebhookEvent.objects.filter(event_id__in=[e["id"] for e in events]).values_list("event_id", flat=True))
    missing = [event for event in reversed(events) if event["id"] not in known]  # oldest first
    for event in missing:
        event.setdefault("account", account.account_id)
        webhook_event_record(event=event, recovered=True)
    if missing:
        logger.warning("recovered %d Stripe events that were never delivered", len(missing))
    return len(missing)


def webhook_event_process(*, event_pk: int) -> Outcome | None:
    """Process one stored event (None: there is no such event). Idempotent, and safe in any
    order: it re-reads the current object from Stripe instead of trusting the event's copy.

    Not atomic on purpose: Stripe is called first, outside any transaction. A failure is
    recorded on the event and raised again, so the task retries it.
    """
    event = WebhookEvent.objects.filter(pk=event_pk).first()
    if event is None:
        return None
    if event.status in WebhookEvent.DONE_STATUSES:
        return Outcome(WebhookEvent.Status(event.status))
    WebhookEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1, last_attempt_at=timezone.now())
    try:
        outcome = _dispatch(event)
    except Exception as exc:
        message = getattr(exc, "user_message", "") if isinstance(exc, gateway.StripeUnavailable) else ""
        webhook_event_finish(event_pk=event.pk, status=WebhookEvent.Status.FAILED, message=message or repr(exc))
        raise
    webhook_event_finish(event_pk=event.pk, status=outcome.status, message=outcome.message)
    return outcome


def _connected_account_id(event: WebhookEvent) -> str | None:
    """The event's account, when the platform handles this type of event for it: events about
    the account itself for any connected account (the creator's or a partner's), every other
    event (payments, subscriptions, refunds) only for the creator's, where offers are sold."""
    if not event.account:
        return None
    accounts = StripeAccount.objects.connected() if event.type in ANY_ACCOUNT_TYPES else StripeAccount.objects.creator()
    if accounts.filter(account_id=event.account).exists():
        return event.account
    return None


def _dispatch(event: WebhookEvent) -> Outcome:
    handler = EVENT_HANDLERS.get(event.type)
    if handler is None:
        return Outcome(WebhookEvent.Status.IGNORED, f"type {event.type} is not handled")
    account_id = _connected_account_id(event)
    if account_id is None:
        return Outcome(
            WebhookEvent.Status.IGNORED, f"account {event.account or '(platform)'} is not connected for this event"
        )
    data = event.payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id", ""), str):
        # Signed by Stripe yet not shaped like its events: keep it, failed, for a person to read.
        return Outcome(WebhookEvent.Status.FAILED, "the event's data.object is not a Stripe object with an id")
    object_id = obj.get("id") or ""
    if not object_id:
        return Outcome(WebhookEvent.Status.IGNORED, "the event carries no object id")
    return handler(event, account_id, object_id)


# --- The handlers: (event, connected account id, the event's object id) -> Outcome ------------
def _account_deauthorized(event: WebhookEvent, account_id: str, object_id: str) -> Outcome:
    account = StripeAccount.objects.connected().get(account_id=account_id)
    # Stripe's timestamps are whole seconds: allow one.
    if event.stripe_created_at is not None and event.stripe_created_at < account.connected_at - timedelta(seconds=1):
        return Outcome(WebhookEvent.Status.IGNORED, "about an earlier connection of this account")
    # Anyone holding the signing secret could send this; Stripe itself must confirm it.
    if not gateway.account_access_revoked(account_id=account_id):
        return Outcome(
            WebhookEvent.Status.FLAGGED, "not confirmed: Stripe still gives the platform access to this account"
        )
    stripe_account_disconnect(account_id=account_id, by=None)
    return Outcome(WebhookEvent.Status.PROCESSED, "disconnected from Stripe's side")


def _account_updated(event: WebhookEvent, account_id: str, object_id: str) -> Outcome:
    stripe_account_refresh_from_stripe(account_id=account_id)
    return Outcome(WebhookEvent.Status.PROCESSED)


def _attempt_for(account_id: str, reference: str) -> CheckoutAttempt | None:
    try:
        attempt_id = uuid.UUID(reference)
    except ValueError:
        return None
    return CheckoutAttempt.objects.filter(pk=attempt_id, stripe_account_id=account_id).first()


def _invoice_charge(account_id: str, invoice_id: str) -> tuple[str, lifecycle.ChargeFacts | None]:
    payment_intent_id = gateway.invoice_payment_intent_id(account_id=account_id, invoice_id=invoice_id)
    if not payment_intent_id:
        return "", None
    return payment_intent_id, lifecycle.charge_facts(account_id=account_id, payment_intent_id=payment_intent_id)


def _checkout_session_event(event: WebhookEvent, account_id: str, session_id: str) -> Outcome:
    session = gateway.checkout_session_retrieve(account_id=account_id, session_id=session_id)
    attempt = _attempt_for(account_id, session.client_reference_id)
    if attempt is None:
        return Outcome(WebhookEvent.Status.IGNORED, "the session was not started by this platform")
    if not session.is_paid:
        if event.type == "checkout.session.async_payment_failed":
            checkout_attempt_mark(
                attempt_id=attempt.pk, status=CheckoutAttempt.Status.FAILED, error="the delayed payment failed"
            )
            return Outcome(WebhookEvent.Status.PROCESSED, "payment failed: nothing granted")
        checkout_attempt_mark(attempt_id=attempt.pk, status=CheckoutAttempt.Status.PROCESSING)
        return Outcome(
            WebhookEvent.Status.PROCESSED, f"payment {session.payment_status or None}: waiting for it to clear"
        )
    if session.is_subscription:
        facts = subscription_facts(account_id=account_id, subscription_id=session.subscription_id)
        invoice, payment_intent_id, charge = None, "", None
        if session.invoice_id:
            invoice = gateway.invoice_retrieve(account_id=account_id, invoice_id=session.invoice_id)
            payment_intent_id, charge = _invoice_charge(account_id, session.invoice_id)
        return checkout_attempt_fulfil(
            attempt_id=attempt.pk,
            paid=session.paid(facts.subscription, invoice),
            payment_intent_id=payment_intent_id,
            charge=charge,
            subscription=facts,
            event_id=event.event_id,
        )
    charge = (
        lifecycle.charge_facts(account_id=account_id, payment_intent_id=session.payment_intent_id)
        if session.payment_intent_id
        else None
    )
    return checkout_attempt_fulfil(
        attempt_id=attempt.pk,
        paid=session.paid(),
        payment_intent_id=session.payment_intent_id,
        charge=charge,
        event_id=event.event_id,
    )


def _payment_intent_succeeded(event: WebhookEvent, account_id: str, payment_intent_id: str) -> Outcome:
    """A one-click purchase's payment, recorded already by the request that charged the card
    unless that request did not finish. (A Checkout's payment is fulfilled from its session.)"""
    obj = event.payload["data"]["object"]
    # Only the platform's one-click charges are read again: nothing else is fulfilled here.
    if not (isinstance(obj.get("metadata"), dict) and obj["metadata"].get("one_click")):
        return Outcome(WebhookEvent.Status.IGNORED, "not a one-click purchase")
    intent = gateway.payment_intent_retrieve(account_id=account_id, payment_intent_id=payment_intent_id)
    attempt = _attempt_for(account_id, intent.checkout_attempt)
    if attempt is None or not OneClickPurchase.objects.filter(attempt=attempt).exists():
        return Outcome(WebhookEvent.Status.IGNORED, "the payment was not started by this platform")
    if not intent.succeeded:
        return Outcome(WebhookEvent.Status.IGNORED, f"the payment is {intent.status or None}, not succeeded")
    charge = lifecycle.charge_facts(account_id=account_id, payment_intent_id=payment_intent_id)
    return checkout_attempt_fulfil(
        attempt_id=attempt.pk,
        paid=intent.paid(),
        payment_intent_id=payment_intent_id,
        charge=charge,
        event_id=event.event_id,
    )


def _subscription_attempt(account_id: str, subscription: gateway.Subscription) -> CheckoutAttempt | None:
    attempt = CheckoutAttempt.objects.filter(
        stripe_account_id=account_id, stripe_subscription_id=subscription.subscription_id
    ).first()
    # An event can arrive before checkout.session.completed: the subscription's metadata, set
    # at checkout, leads back to the attempt.
    return attempt or _attempt_for(account_id, subscription.checkout_attempt)


def _invoice_paid(event: WebhookEvent, account_id: str, invoice_id: str) -> Outcome:
    invoice = gateway.invoice_retrieve(account_id=account_id, invoice_id=invoice_id)
    if invoice.status != "paid":
        return Outcome(WebhookEvent.Status.IGNORED, f"the invoice is {invoice.status or None}, not paid")
    if not invoice.subscription_id:
        return Outcome(WebhookEvent.Status.IGNORED, "the invoice belongs to no subscription")
    facts = subscription_facts(account_id=account_id, subscription_id=invoice.subscription_id)
    attempt = _subscription_attempt(account_id, facts.subscription)
    if attempt is None:
        return Outcome(WebhookEvent.Status.IGNORED, "the subscription was not started by this platform")
    payment_intent_id, charge = _invoice_charge(account_id, invoice_id)
    return checkout_attempt_fulfil(
        attempt_id=attempt.pk,
        paid=invoice.paid(),
        payment_intent_id=payment_intent_id,
        charge=charge,
        subscription=facts,
        event_id=event.event_id,
    )


def _subscription_refresh(event: WebhookEvent, account_id: str, subscription_id: str) -> Outcome:
    """Store the subscription as Stripe has it now and bring the entitlement up to date."""
    facts = subscription_facts(account_id=account_id, subscription_id=subscription_id)
    attempt = _subscription_attempt(account_id, facts.subscription)
    if attempt is None:
        return Outcome(WebhookEvent.Status.IGNORED, "the subscription was not started by this platform")
    if attempt.user is None:
        # Nothing paid yet: the payment's fulfilment reads the subscription itself.
        return Outcome(WebhookEvent.Status.IGNORED, "no payment is recorded for this subscription yet")
    lifecycle.subscription_store(
        account_id=account_id,
        facts=facts,
        user=attempt.user,
        offer=attempt.offer,
        attempt=attempt,
    )
    entitlement = lifecycle.entitlement_converge(
        user=attempt.user, offer=attempt.offer, cause=lifecycle.Cause(event_id=event.event_id)
    )
    status = entitlement.status if entitlement else "unchanged"
    return Outcome(WebhookEvent.Status.PROCESSED, f"subscription {facts.subscription.status}: entitlement {status}")


def _subscription_event(event: WebhookEvent, account_id: str, subscription_id: str) -> Outcome:
    return _subscription_refresh(event, account_id, subscription_id)


def _invoice_failed(event: WebhookEvent, account_id: str, invoice_id: str) -> Outcome:
    invoice = gateway.invoice_retrieve(account_id=account_id, invoice_id=invoice_id)
    if not invoice.subscription_id:
        return Outcome(WebhookEvent.Status.IGNORED, "the invoice belongs to no subscription")
    outcome = _subscription_refresh(event, account_id, invoice.subscription_id)
    if invoice.status == "open":
        lifecycle.payment_failed_record(subscription_id=invoice.subscription_id, invoice_id=invoice.invoice_id)
    return outcome


def _payment_refresh(event: WebhookEvent, account_id: str, payment_intent_id: str) -> Outcome:
    """Store a payment's charge (refunds, dispute) as Stripe has it now; update the entitlement."""
    if not payment_intent_id:
        return Outcome(WebhookEvent.Status.IGNORED, "the charge belongs to no payment intent")
    payment = Payment.objects.filter(stripe_account_id=account_id, payment_intent_id=payment_intent_id).first()
    if payment is None:
        # Either not a sale of this platform's, or one not fulfilled yet, whose fulfilment
        # reads the charge itself.
        return Outcome(WebhookEvent.Status.IGNORED, f"no payment is recorded for {payment_intent_id}")
    facts = lifecycle.charge_facts(account_id=account_id, payment_intent_id=payment_intent_id)
    if facts.charge is None:
        return Outcome(WebhookEvent.Status.IGNORED, "the payment intent has no charge")
    message = lifecycle.payment_charge_apply(payment_pk=payment.pk, facts=facts, event_id=event.event_id)
    return Outcome(WebhookEvent.Status.PROCESSED, message)


def _charge_event(event: WebhookEvent, account_id: str, charge_id: str) -> Outcome:
    charge = gateway.charge_retrieve(account_id=account_id, charge_id=charge_id)
    return _payment_refresh(event, account_id, charge.payment_intent_id)


def _refund_event(event: WebhookEvent, account_id: str, refund_id: str) -> Outcome:
    charge_id = gateway.refund_charge_id(account_id=account_id, refund_id=refund_id)
    if not charge_id:
        return Outcome(WebhookEvent.Status.IGNORED, "the refund belongs to no charge")
    return _charge_event(event, account_id, charge_id)


def _dispute_event(event: WebhookEvent, account_id: str, dispute_id: str) -> Outcome:
    dispute = gateway.dispute_retrieve(account_id=account_id, dispute_id=dispute_id)
    if dispute.payment_intent_id:
        return _payment_refresh(event, account_id, dispute.payment_intent_id)
    return _charge_event(event, account_id, dispute.charge_id)


EventHandler = Callable[[WebhookEvent, str, str], Outcome]
EVENT_HANDLERS: dict[str, EventHandler] = {
    "checkout.session.completed": _checkout_session_event,
    "checkout.session.async_payment_succeeded": _checkout_session_event,
    "checkout.session.async_payment_failed": _checkout_session_event,
    "payment_intent.succeeded": _payment_intent_succeeded,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_failed,
    "invoice.payment_action_required": _invoice_failed,
    "customer.subscription.created": _subscription_event,
    "customer.subscription.updated": _subscription_event,
    "customer.subscription.deleted": _subscription_event,
    "customer.subscription.paused": _subscription_event,
    "customer.subscription.resumed": _subscription_event,
    "charge.refunded": _charge_event,
    "charge.refund.updated": _refund_event,
    "refund.created": _refund_event,
    "refund.updated": _refund_event,
    "refund.failed": _refund_event,
    "charge.dispute.created": _dispute_event,
    "charge.dispute.updated": _dispute_event,
    "charge.dispute.closed": _dispute_event,
    "charge.dispute.funds_withdrawn": _dispute_event,
    "charge.dispute.funds_reinstated": _dispute_event,
    "account.updated": _account_updated,
    "account.application.deauthorized": _account_deauthorized,
}
# The types handled for partners' connected accounts too; all others only for the creator's.
ANY_ACCOUNT_TYPES = frozenset({"account.updated", "account.application.deauthorized"})
