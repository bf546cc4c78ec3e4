"""Writes for billing: the connected account, checkout attempts, the webhook log and payments.

Functions that must talk to Stripe (``offer_stripe_sync``, ``webhook_event_process``,
``stripe_account_*_from_stripe``) are deliberately *not* atomic: they call the gateway first,
outside any transaction, then hand the result to a small atomic service. Everything else
follows the usual shape: keyword-only, ``@transaction.atomic``, side effects on commit.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from accounts.services import user_get_or_create
from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, Payment, StripeAccount, WebhookEvent
from memberships.models import Entitlement, Offer
from memberships.services import entitlement_grant

logger = logging.getLogger(__name__)

# Stripe renews a subscription at the period's end but charges its invoice up to about an hour
# later; the leeway keeps a paying member's access from blinking out in between.
RENEWAL_LEEWAY = timedelta(hours=2)
HANDLED_EVENT_TYPES = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "invoice.paid",
        "account.updated",
        "account.application.deauthorized",
    }
)


def browser_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# --- The connected account -----------------------------------------------------------------
@transaction.atomic
def stripe_account_connect(*, status: gateway.AccountStatus, by: User) -> StripeAccount:
    """Record a newly connected account, replacing the one connected before (if any)."""
    now = timezone.now()
    StripeAccount.objects.select_for_update().connected().update(disconnected_at=now, disconnected_by=by)
    return StripeAccount.objects.create(
        account_id=status.account_id,
        livemode=status.livemode,
        charges_enabled=status.charges_enabled,
        payouts_enabled=status.payouts_enabled,
        details_submitted=status.details_submitted,
        display_name=status.display_name[:255],
        connected_at=now,
        connected_by=by,
        refreshed_at=now,
    )


@transaction.atomic
def stripe_account_update(*, account_id: str, status: gateway.AccountStatus) -> int:
    """Store the account's current capabilities (after a refresh or an ``account.updated``)."""
    return (
        StripeAccount.objects.connected()
        .filter(account_id=account_id)
        .update(
            livemode=status.livemode,
            charges_enabled=status.charges_enabled,
            payouts_enabled=status.payouts_enabled,
            details_submitted=status.details_submitted,
            display_name=status.display_name[:255],
            refreshed_at=timezone.now(),
        )
    )


@transaction.atomic
def stripe_account_disconnect(*, account_id: str, by: User | None) -> int:
    return (
        StripeAccount.objects.connected()
        .filter(account_id=account_id)
        .update(disconnected_at=timezone.now(), disconnected_by=by)
    )


def stripe_account_refresh_from_stripe(*, account_id: str) -> gateway.AccountStatus:
    status = gateway.account_retrieve(account_id=account_id)
    stripe_account_update(account_id=account_id, status=status)
    return status


# --- Offers on Stripe ----------------------------------------------------------------------
def offer_price_matches(price: dict[str, Any], offer: Offer) -> bool:
    recurring = price.get("recurring") or None
    wanted = offer.stripe_recurring
    same_recurring = (recurring is None and wanted is None) or (
        recurring is not None
        and wanted is not None
        and recurring.get("interval") == wanted["interval"]
        and int(recurring.get("interval_count") or 1) == wanted["interval_count"]
    )
    return (
        bool(price.get("active"))
        and price.get("unit_amount") == offer.price_amount
        and str(price.get("currency", "")).lower() == offer.currency.lower()
        and same_recurring
    )


def offer_stripe_sync(*, offer_id: int) -> Offer | None:
    """Make the offer's Stripe product and price on the connected account match the offer.

    Creates the product the first time, renames it when the title changes, and when the
    price, currency or interval changed creates a new price and archives the old one (Stripe
    prices are immutable). Retries are safe: creations carry idempotency keys derived from the
    offer's state. Returns the offer, or None when there is nothing to sync to.
    """
    offer = Offer.objects.filter(pk=offer_id).first()
    account = StripeAccount.objects.connected().first()
    if offer is None or account is None or offer.is_free:
        return offer
    # The old price is part of the key: if it was archived in Stripe's dashboard since, the
    # replacement is a new request, not a replay of the answer that returned the old price.
    key = (
        f"offer-{offer.pk}-{account.account_id}-{int(offer.updated_at.timestamp() * 1000)}"
        f"-{offer.stripe_price_id or 'none'}"
    )
    metadata = {"offer_id": str(offer.pk), "offer_slug": offer.slug}
    product_id = offer.stripe_product_id
    old_price_id = offer.stripe_price_id
    if old_price_id:
        try:
            current = gateway.price_retrieve(account_id=account.account_id, price_id=old_price_id)
        except gateway.StripeGatewayError as exc:
            if exc.code != "resource_missing":
                raise
            # Made on an account that is no longer connected: start afresh on this one.
            product_id, old_price_id, current = "", "", {}
        if current and offer_price_matches(current, offer):
            gateway.product_upsert(
                account_id=account.account_id, product_id=product_id, name=offer.title, metadata=metadata, key=key
            )
            return offer
    try:
        product_id = gateway.product_upsert(
            account_id=account.account_id, product_id=product_id, name=offer.title, metadata=metadata, key=key
        )
    except gateway.StripeGatewayError as exc:
        if exc.code != "resource_missing":
            raise
        product_id = gateway.product_upsert(
            account_id=account.account_id, product_id="", name=offer.title, metadata=metadata, key=key
        )
    price_id = gateway.price_create(
        account_id=account.account_id,
        product_id=product_id,
        amount=offer.price_amount,
        currency=offer.currency.lower(),
        recurring=offer.stripe_recurring,
        metadata=metadata,
        key=key,
    )
    offer_stripe_ids_set(offer=offer, product_id=product_id, price_id=price_id)
    if old_price_id and old_price_id != price_id:
        gateway.price_archive(account_id=account.account_id, price_id=old_price_id)
    offer.refresh_from_db()
    return offer


def offer_stripe_price_ensure(*, offer: Offer, account_id: str) -> Offer:
    """The offer with a Stripe price that matches it, synced now if the editor's sync lags."""
    if offer.stripe_price_id:
        try:
            price = gateway.price_retrieve(account_id=account_id, price_id=offer.stripe_price_id)
        except gateway.StripeGatewayError as exc:
            if exc.code != "resource_missing":
                raise
            price = {}
        if price and offer_price_matches(price, offer):
            return offer
    synced = offer_stripe_sync(offer_id=offer.pk)
    if synced is None or not synced.stripe_price_id:
        raise gateway.StripeGatewayError("the offer has no Stripe price")
    return synced


@transaction.atomic
def offer_stripe_ids_set(*, offer: Offer, product_id: str, price_id: str) -> None:
    # A plain UPDATE: it must not bump ``updated_at`` (the key of the next sync) nor re-queue
    # the sync the offer editor queues on save.
    Offer.objects.filter(pk=offer.pk).update(stripe_product_id=product_id, stripe_price_id=price_id)


# --- Checkout ------------------------------------------------------------------------------
@transaction.atomic
def checkout_attempt_create(
    *, offer: Offer, account: StripeAccount, email: str, full_name: str, browser_key: str
) -> CheckoutAttempt:
    """Start an attempt with a snapshot of the price the buyer is shown."""
    return CheckoutAttempt.objects.create(
        offer=offer,
        stripe_account_id=account.account_id,
        stripe_price_id=offer.stripe_price_id,
        amount=offer.price_amount,
        currency=offer.currency.lower(),
        pricing=offer.pricing,
        interval=offer.interval,
        email=email,
        full_name=full_name,
        browser_key=browser_key_hash(browser_key),
    )


@transaction.atomic
def checkout_attempt_open(*, attempt: CheckoutAttempt, session_id: str) -> None:
    CheckoutAttempt.objects.filter(pk=attempt.pk, status=CheckoutAttempt.Status.STARTED).update(
        stripe_session_id=session_id, status=CheckoutAttempt.Status.OPEN
    )


@transaction.atomic
def checkout_attempt_fail(*, attempt: CheckoutAttempt, error: str) -> None:
    CheckoutAttempt.objects.filter(
        pk=attempt.pk, status__in=[CheckoutAttempt.Status.STARTED, CheckoutAttempt.Status.OPEN]
    ).update(status=CheckoutAttempt.Status.FAILED, error=error[:2000])


def checkout_session_params(*, attempt: CheckoutAttempt, success_url: str, cancel_url: str) -> dict[str, Any]:
    metadata = {"checkout_attempt": str(attempt.pk), "offer_id": str(attempt.offer_id)}
    params: dict[str, Any] = {
        "line_items": [{"price": attempt.stripe_price_id, "quantity": 1}],
        "client_reference_id": str(attempt.pk),
        "customer_email": attempt.email,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata,
    }
    if attempt.pricing == Offer.Pricing.RECURRING:
        params["mode"] = "subscription"
        # On the subscription, so that a renewal's invoice leads back to this attempt.
        params["subscription_data"] = {"metadata": metadata}
    else:
        params["mode"] = "payment"
        params["customer_creation"] = "always"
        params["payment_intent_data"] = {"metadata": metadata}
    return params


def checkout_session_start(
    *, offer: Offer, account: StripeAccount, email: str, full_name: str, browser_key: str, site_url: str
) -> tuple[CheckoutAttempt, str]:
    """Open a Stripe Checkout Session for a buyer; returns the attempt and the URL to send them to.

    Not atomic: the attempt (with its price snapshot) is committed first, then Stripe is
    called outside any transaction with the attempt's idempotency key, then the session is
    recorded. A failure marks the attempt failed and raises the gateway's error.
    """
    from django.urls import reverse

    offer = offer_stripe_price_ensure(offer=offer, account_id=account.account_id)
    attempt = checkout_attempt_create(
        offer=offer, account=account, email=email, full_name=full_name, browser_key=browser_key
    )
    kwargs = {"attempt_id": attempt.pk}
    params = checkout_session_params(
        attempt=attempt,
        success_url=f"{site_url}{reverse('billing:checkout_return', kwargs=kwargs)}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=site_url + reverse("billing:checkout_cancel", kwargs=kwargs),
    )
    try:
        session = gateway.checkout_session_create(
            account_id=account.account_id, params=params, idempotency_key=f"checkout-{attempt.pk}"
        )
    except gateway.StripeGatewayError as exc:
        logger.warning("checkout session for attempt %s failed: %s", attempt.pk, exc)
        checkout_attempt_fail(attempt=attempt, error=str(exc))
        if isinstance(exc, gateway.StripeAccountNotReady):
            try:  # so that the dashboard shows it and paid offers cannot be published meanwhile
                stripe_account_refresh_from_stripe(account_id=account.account_id)
            except gateway.StripeGatewayError:
                logger.warning("the Stripe account %s could not be refreshed", account.account_id)
        raise
    checkout_attempt_open(attempt=attempt, session_id=session.session_id)
    return attempt, session.url


@transaction.atomic
def checkout_attempt_login_use(*, attempt: CheckoutAttempt) -> bool:
    """Use up the one automatic login an attempt gives. Exactly one caller gets True."""
    return (
        CheckoutAttempt.objects.filter(pk=attempt.pk, login_used_at__isnull=True).update(login_used_at=timezone.now())
        == 1
    )


# --- Fulfilment ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PaidObject:
    """What Stripe says was paid, read from Stripe itself (never from an event's old copy)."""

    stripe_object_id: str
    kind: str
    amount: int
    currency: str
    customer_id: str = ""
    subscription_id: str = ""
    period_end: datetime | None = None
    # A renewal invoice may be lower than the first price (a coupon, account credit): it is
    # checked by currency, and the amount Stripe collected is recorded.
    is_renewal: bool = False


@dataclass(frozen=True)
class Outcome:
    status: str
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
        access_until = (paid.period_end + RENEWAL_LEEWAY) if paid.period_end else None
        current = Entitlement.objects.filter(user=user, offer=attempt.offer).first()
        # Invoices may be processed out of order: an older one never shortens access.
        if access_until and current and current.access_until and current.access_until > access_until:
            access_until = current.access_until
        entitlement_grant(
            user=user,
            offer=attempt.offer,
            source=Entitlement.Source.SUBSCRIPTION,
            access_until=access_until,
            new_account=created,
        )
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
def checkout_attempt_mark(*, attempt_id: uuid.UUID, status: str, error: str = "") -> None:
    """Record a payment still processing or failed. Never downgrades a paid or flagged attempt,
    and a late "still processing" never hides a failure that was already recorded."""
    attempts = CheckoutAttempt.objects.filter(pk=attempt_id).exclude(
        status__in=[CheckoutAttempt.Status.PAID, CheckoutAttempt.Status.FLAGGED]
    )
    if status == CheckoutAttempt.Status.PROCESSING:
        attempts = attempts.filter(status__in=[CheckoutAttempt.Status.STARTED, CheckoutAttempt.Status.OPEN])
    attempts.update(status=status, error=error[:2000])


# --- The webhook log -----------------------------------------------------------------------
def webhook_event_record(*, event: dict[str, Any]) -> tuple[WebhookEvent, bool]:
    """Store a verified event by its Stripe id and queue its processing after commit.

    A duplicate delivery finds the stored row and queues nothing. The one atomic block is the
    whole transaction (or a savepoint inside a caller's): the webhook's hot path spends no
    round trips on an outer transaction around a single INSERT.
    """
    from billing.tasks import process_webhook_event

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
                stripe_created_at=_event_created_at(created_ts),
            )
    except IntegrityError:
        return WebhookEvent.objects.get(event_id=event["id"]), False
    # Robust: when tasks run in-process, a failure to process must not turn Stripe's delivery
    # into an error (the event is stored; retries and the sweep take it from here).
    transaction.on_commit(lambda: process_webhook_event.delay(row.pk), robust=True)
    return row, True


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
    from billing.tasks import process_webhook_event

    queued = (
        WebhookEvent.objects.filter(pk=event.pk)
        .exclude(status__in=WebhookEvent.DONE_STATUSES)
        .update(status=WebhookEvent.Status.PENDING)
    )
    if queued:
        pk = event.pk
        transaction.on_commit(lambda: process_webhook_event.delay(pk), robust=True)
    return bool(queued)


@transaction.atomic
def webhook_event_finish(*, event_pk: int, status: str, message: str = "") -> None:
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
    return min(SWEEP_AFTER * 2 ** max(0, attempts - 6), SWEEP_LONGEST_WAIT)


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


def webhook_events_reconcile(*, now: datetime | None = None) -> int:
    """Record events Stripe has but never delivered (an endpoint down for longer than Stripe
    retries, a delivery lost): list the connected account's recent events of the handled
    types and store the missing ones, which queues their processing. Returns how many."""
    account = StripeAccount.objects.connected().first()
    if account is None:
        return 0
    now = now or timezone.now()
    events = gateway.events_list(
        account_id=account.account_id,
        types=sorted(HANDLED_EVENT_TYPES),
        created_gte=int((now - RECONCILE_WINDOW).timestamp()),
    )
    known = set(WebhookEvent.objects.filter(event_id__in=[e["id"] for e in events]).values_list("event_id", flat=True))
    missing = [event for event in reversed(events) if event["id"] not in known]  # oldest first
    for event in missing:
        event.setdefault("account", account.account_id)
        webhook_event_record(event=event)
    if missing:
        logger.warning("recovered %d Stripe events that were never delivered", len(missing))
    return len(missing)


def webhook_event_process(*, event_pk: int) -> Outcome:
    """Process one stored event. Idempotent, and safe in any order: it re-reads the current
    object from Stripe instead of trusting the event's copy.

    Not atomic on purpose: Stripe is called first, outside any transaction. A failure is
    recorded on the event and raised again, so the task retries it.
    """
    event = WebhookEvent.objects.filter(pk=event_pk).first()
    if event is None or event.status in WebhookEvent.DONE_STATUSES:
        return Outcome(event.status if event else "missing")
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
    if event.account and StripeAccount.objects.connected().filter(account_id=event.account).exists():
        return event.account
    return None


def _dispatch(event: WebhookEvent) -> Outcome:
    if event.type not in HANDLED_EVENT_TYPES:
        return Outcome(WebhookEvent.Status.IGNORED, f"type {event.type} is not handled")
    account_id = _connected_account_id(event)
    if account_id is None:
        return Outcome(WebhookEvent.Status.IGNORED, f"account {event.account or '(platform)'} is not connected")
    data = event.payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id", ""), str):
        # Signed by Stripe yet not shaped like its events: keep it, failed, for a person to read.
        return Outcome(WebhookEvent.Status.FAILED, "the event's data.object is not a Stripe object with an id")
    object_id = obj.get("id") or ""
    if not object_id:
        return Outcome(WebhookEvent.Status.IGNORED, "the event carries no object id")
    if event.type == "account.application.deauthorized":
        account = StripeAccount.objects.connected().get(account_id=account_id)
        # Stripe's timestamps are whole seconds: allow one.
        if event.stripe_created_at is not None and event.stripe_created_at < account.connected_at - timedelta(
            seconds=1
        ):
            return Outcome(WebhookEvent.Status.IGNORED, "about an earlier connection of this account")
        # Anyone holding the signing secret could send this; Stripe itself must confirm it.
        if not gateway.account_access_revoked(account_id=account_id):
            return Outcome(
                WebhookEvent.Status.FLAGGED, "not confirmed: Stripe still gives the platform access to this account"
            )
        stripe_account_disconnect(account_id=account_id, by=None)
        return Outcome(WebhookEvent.Status.PROCESSED, "disconnected from Stripe's side")
    if event.type == "account.updated":
        stripe_account_refresh_from_stripe(account_id=account_id)
        return Outcome(WebhookEvent.Status.PROCESSED)
    if event.type == "invoice.paid":
        return _invoice_paid(account_id=account_id, invoice_id=object_id)
    return _checkout_session_event(account_id=account_id, session_id=object_id, event_type=event.type)


def _id(value: Any) -> str:
    """A Stripe reference, whether expanded into an object or left as its id."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _attempt_for(account_id: str, reference: str) -> CheckoutAttempt | None:
    try:
        attempt_id = uuid.UUID(reference)
    except ValueError:
        return None
    return CheckoutAttempt.objects.filter(pk=attempt_id, stripe_account_id=account_id).first()


def _subscription_period_end(subscription: dict[str, Any]) -> datetime | None:
    ends = [item.get("current_period_end") for item in (subscription.get("items") or {}).get("data") or []]
    ends.append(subscription.get("current_period_end"))
    values = [end for end in ends if isinstance(end, int)]
    return datetime.fromtimestamp(max(values), tz=UTC) if values else None


def _checkout_session_event(*, account_id: str, session_id: str, event_type: str) -> Outcome:
    session = gateway.checkout_session_retrieve(account_id=account_id, session_id=session_id)
    attempt = _attempt_for(account_id, str(session.get("client_reference_id") or ""))
    if attempt is None:
        return Outcome(WebhookEvent.Status.IGNORED, "the session was not started by this platform")
    payment_status = session.get("payment_status")
    if payment_status not in ("paid", "no_payment_required"):
        if event_type == "checkout.session.async_payment_failed":
            checkout_attempt_mark(
                attempt_id=attempt.pk, status=CheckoutAttempt.Status.FAILED, error="the delayed payment failed"
            )
            return Outcome(WebhookEvent.Status.PROCESSED, "payment failed: nothing granted")
        checkout_attempt_mark(attempt_id=attempt.pk, status=CheckoutAttempt.Status.PROCESSING)
        return Outcome(WebhookEvent.Status.PROCESSED, f"payment {payment_status}: waiting for it to clear")
    amount = int(session.get("amount_total") or 0)
    currency = str(session.get("currency") or "")
    customer_id = _id(session.get("customer"))
    if session.get("mode") == "subscription":
        subscription_id = _id(session.get("subscription"))
        invoice_id = _id(session.get("invoice"))
        subscription = gateway.subscription_retrieve(account_id=account_id, subscription_id=subscription_id)
        paid = PaidObject(
            stripe_object_id=invoice_id or f"{subscription_id}:first",
            kind=Payment.Kind.INVOICE,
            amount=amount,
            currency=currency,
            customer_id=customer_id,
            subscription_id=subscription_id,
            period_end=_subscription_period_end(subscription),
        )
    else:
        payment_intent_id = _id(session.get("payment_intent")) or session_id
        paid = PaidObject(
            stripe_object_id=payment_intent_id,
            kind=Payment.Kind.ONE_TIME,
            amount=amount,
            currency=currency,
            customer_id=customer_id,
        )
    return checkout_attempt_fulfil(attempt_id=attempt.pk, paid=paid)


def _invoice_subscription_id(invoice: dict[str, Any]) -> str:
    # The pinned API version has no invoice.subscription: only parent.subscription_details.
    details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
    return _id(details.get("subscription"))


def _invoice_period_end(invoice: dict[str, Any]) -> datetime | None:
    ends = [(line.get("period") or {}).get("end") for line in ((invoice.get("lines") or {}).get("data") or [])]
    values = [end for end in ends if isinstance(end, int)]
    return datetime.fromtimestamp(max(values), tz=UTC) if values else None


def _invoice_paid(*, account_id: str, invoice_id: str) -> Outcome:
    invoice = gateway.invoice_retrieve(account_id=account_id, invoice_id=invoice_id)
    if invoice.get("status") != "paid":
        return Outcome(WebhookEvent.Status.IGNORED, f"the invoice is {invoice.get('status')}, not paid")
    subscription_id = _invoice_subscription_id(invoice)
    if not subscription_id:
        return Outcome(WebhookEvent.Status.IGNORED, "the invoice belongs to no subscription")
    attempt = CheckoutAttempt.objects.filter(
        stripe_account_id=account_id, stripe_subscription_id=subscription_id
    ).first()
    if attempt is None:
        # invoice.paid can arrive before checkout.session.completed: the subscription's
        # metadata, set at checkout, leads back to the attempt.
        subscription = gateway.subscription_retrieve(account_id=account_id, subscription_id=subscription_id)
        attempt = _attempt_for(account_id, str((subscription.get("metadata") or {}).get("checkout_attempt") or ""))
    if attempt is None:
        return Outcome(WebhookEvent.Status.IGNORED, "the subscription was not started by this platform")
    paid = PaidObject(
        stripe_object_id=invoice_id,
        kind=Payment.Kind.INVOICE,
        amount=int(invoice.get("amount_paid") or 0),
        currency=str(invoice.get("currency") or ""),
        customer_id=_id(invoice.get("customer")),
        subscription_id=subscription_id,
        period_end=_invoice_period_end(invoice),
        is_renewal=invoice.get("billing_reason") == "subscription_cycle",
    )
    return checkout_attempt_fulfil(attempt_id=attempt.pk, paid=paid)
