"""Test purchases: a creator buys their own offer through a signed, single-use link, and a
checklist shows whether each part of a sale worked (the help page's "Before selling, it's
crucial to test the checkout process").

The link opens the offer's checkout as a buyer sees it, drafts included; its checkout attempt
and payments are marked ``is_test`` and kept out of sales figures and buyer counts. The
checklist reads the platform's own rows, and Stripe (the Checkout Session, the charge and its
balance transaction) for what the rows cannot say: that a payment was made before any webhook
told the platform, and what reached the connected account's balance. Once the check is done,
``checkout_test_close`` refunds the test through the outbox (``payment_refund_request``) and
hides it: its rows stay, marked as tests, and the test buyer's access ends.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import OutboxMessage, User
from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, Payment, StripeAccount, TestPurchase, WebhookEvent, WebhookRefusal
from billing.models import checkout_test_key_hash as _hash
from billing.services import lifecycle
from billing.services.catalog import offer_stripe_price_ensure
from billing.services.checkout import checkout_attempt_create, checkout_session_open
from core.figures import figures_forget
from memberships.models import Entitlement, Offer, format_money

logger = logging.getLogger(__name__)

TEST_LINK_SALT = "billing.checkout_test"
TEST_LINK_MAX_AGE = timedelta(hours=24)
# How long a step may wait on something outside the platform before the checklist says what
# to fix: Stripe delivers a webhook within seconds of a payment, the worker takes it at once.
WEBHOOK_PATIENCE = timedelta(seconds=30)
WORKER_PATIENCE = timedelta(seconds=60)
# Stripe is asked again at most this often while a payment is awaited (the page polls).
STRIPE_READ_EVERY_SECONDS = 3

WEBHOOK_SECRET_FIX = (
    "Stripe is sending, but the signature does not match: the site's signing secret is not this "
    "endpoint's. In Stripe's dashboard open Developers > Webhooks > your endpoint, reveal its "
    "Signing secret (whsec_…), put it in STRIPE_WEBHOOK_SECRET and restart the site. Stripe "
    "retries the delivery, so the purchase completes once the secrets match."
)
SMTP_FIX = (
    "Check the SMTP settings (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, "
    "EMAIL_USE_TLS) and DEFAULT_FROM_EMAIL. The email is tried again by itself; Settings > "
    "Integrations > Stripe events lists it with a Retry button."
)
WORKER_FIX = (
    "The background worker does not seem to be running: start it (celery -A config worker) and "
    "the beat (celery -A config beat). Waiting work is picked up as soon as it runs."
)
VERIFICATION_FIX = (
    "Stripe needs more information before your account can take payments. Open your Stripe "
    "dashboard, complete the verification steps it lists, then click Refresh status under "
    "Settings > Integrations and make a new test purchase."
)


class CheckoutTestLinkInvalid(Exception):
    """The link is not one this site signed (``invalid``), too old (``expired``) or was used."""

    __test__ = False

    def __init__(self, reason: Literal["invalid", "expired", "used"]) -> None:
        super().__init__(reason)
        self.reason = reason


def webhook_endpoint_url() -> str:
    return settings.SITE_URL + reverse("billing:stripe_webhook")


def endpoint_fix() -> str:
    return (
        f"No webhook from Stripe has arrived. In Stripe's dashboard open Developers > Webhooks and "
        f"add an endpoint at {webhook_endpoint_url()} that listens to events on connected accounts "
        "(the event types are listed in the README), then put its signing secret in "
        "STRIPE_WEBHOOK_SECRET. If the endpoint is there, check that the site is reachable from "
        "the internet at that address."
    )


# --- The link ------------------------------------------------------------------------------------
def checkout_test_email_suggestion(*, user: User) -> str:
    """A plus-address of the creator's own email that no account or earlier test uses:
    ``casey+test1@example.com``, then ``+test2``... ("" when the address has no room for one)."""
    local, at, domain = user.email.rpartition("@")
    if not at:
        return ""
    number = TestPurchase.objects.filter(created_by=user).count() + 1
    for candidate_number in range(number, number + 100):
        candidate = f"{local}+test{candidate_number}@{domain}"
        if len(candidate) > 254 or len(candidate.partition("@")[0]) > 64:
            return ""
        taken = (
            User.objects.filter(email__iexact=candidate).exists()
            or TestPurchase.objects.filter(email__iexact=candidate).exists()
        )
        if not taken:
            return candidate
    return ""


@transaction.atomic
def checkout_test_create(*, offer: Offer, by: User, email: str) -> tuple[TestPurchase, str]:
    """A new test of ``offer``'s checkout; returns it and the path of its signed link."""
    key = secrets.token_urlsafe(32)
    test = TestPurchase.objects.create(offer=offer, created_by=by, email=email, key=_hash(key))
    return test, checkout_test_link_path(key)


def checkout_test_link_path(key: str) -> str:
    link = signing.TimestampSigner(salt=TEST_LINK_SALT).sign(key)
    return reverse("billing:checkout_test_link", kwargs={"link": link})


def checkout_test_link_check(*, link: str, allow_used: bool = False) -> TestPurchase:
    """The test a link opens, or ``CheckoutTestLinkInvalid``."""
    try:
        key = signing.TimestampSigner(salt=TEST_LINK_SALT).unsign(link, max_age=TEST_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise CheckoutTestLinkInvalid("expired") from None
    except signing.BadSignature:
        raise CheckoutTestLinkInvalid("invalid") from None
    test = TestPurchase.objects.select_related("offer").filter(key=_hash(key)).first()
    if test is None or test.closed_at is not None or test.offer.is_free:
        raise CheckoutTestLinkInvalid("invalid")
    if test.used_at is not None and not allow_used:
        raise CheckoutTestLinkInvalid("used")
    return test


@transaction.atomic
def checkout_test_link_consume(
    *, test: TestPurchase, account: StripeAccount, email: str, full_name: str, browser_key: str
) -> CheckoutAttempt:
    """Use the link up and start its checkout attempt, marked as a test: exactly one of any
    number of concurrent calls succeeds (one conditional UPDATE)."""
    used = TestPurchase.objects.filter(pk=test.pk, used_at__isnull=True).update(used_at=timezone.now())
    if used != 1:
        raise CheckoutTestLinkInvalid("used")
    attempt = checkout_attempt_create(
        offer=test.offer, account=account, email=email, full_name=full_name, browser_key=browser_key, is_test=True
    )
    TestPurchase.objects.filter(pk=test.pk).update(attempt=attempt, problem="")
    return attempt


@transaction.atomic
def checkout_test_problem_record(*, test: TestPurchase, problem: str) -> None:
    TestPurchase.objects.filter(pk=test.pk).update(problem=problem[:2000])


def checkout_test_start(
    *, test: TestPurchase, account: StripeAccount, email: str, full_name: str, browser_key: str, site_url: str
) -> tuple[CheckoutAttempt, str]:
    """Start the test's checkout: the offer's price on Stripe, the link used up with its attempt,
    then the Checkout Session; returns the attempt and Stripe's URL.

    Not atomic: Stripe is called outside any transaction. No referral is attributed (there is no
    buyer's request to read it from), so a test never pays a partner a commission. A failure is
    noted on the test in the creator's words and raised again.
    """
    try:
        offer_stripe_price_ensure(offer=test.offer, account_id=account.account_id)
    except gateway.StripeGatewayError as exc:
        checkout_test_problem_record(test=test, problem=_start_problem(exc))
        raise
    attempt = checkout_test_link_consume(
        test=test, account=account, email=email, full_name=full_name, browser_key=browser_key
    )
    try:
        url = checkout_session_open(attempt=attempt, account=account, site_url=site_url)
    except gateway.StripeGatewayError as exc:
        checkout_test_problem_record(test=test, problem=_start_problem(exc))
        raise
    return attempt, url


def _start_problem(exc: gateway.StripeGatewayError) -> str:
    if isinstance(exc, gateway.StripeAccountNotReady):
        return VERIFICATION_FIX
    if isinstance(exc, gateway.StripeConfigurationError):
        return "Stripe refused the platform's keys: check STRIPE_SECRET_KEY and STRIPE_CONNECT_CLIENT_ID."
    return f"Stripe could not start the checkout: {exc.user_message}"


# --- Refund and hide -----------------------------------------------------------------------------
class CheckoutTestNotClosable(Exception):
    __test__ = False


@transaction.atomic
def checkout_test_close(*, test: TestPurchase, by: User) -> int:
    """Refund the test's payments in full (through the outbox, as the creator's Refund does) and
    hide them; returns how many refunds were requested. The payments stay, marked as tests and
    hidden; the test buyer's access ends at once (``lifecycle.target_state``), and a test
    subscription is canceled with it. Closing again does nothing."""
    test = TestPurchase.objects.select_for_update().get(pk=test.pk)
    if test.closed_at is not None:
        return 0
    payments = list(Payment.objects.select_for_update().filter(attempt_id=test.attempt_id, is_test=True))
    if test.attempt_id is None or not payments:
        raise CheckoutTestNotClosable("Nothing was paid with this test link yet, so there is nothing to refund.")
    now = timezone.now()
    refunds = 0
    for payment in payments:
        if payment.refundable_amount > 0 and payment.payment_intent_id:
            lifecycle.payment_refund_request(
                payment=payment,
                amount=payment.refundable_amount,
                by=by,
                request_key=f"test-purchase-{test.pk}-{payment.pk}",
            )
            refunds += 1
    Payment.objects.filter(pk__in=[payment.pk for payment in payments]).update(hidden_at=now)
    figures_forget()  # Sales lists the test purchases not yet hidden
    TestPurchase.objects.filter(pk=test.pk).update(closed_at=now, closed_by=by)
    for user_id, offer_id in {(payment.user_id, payment.offer_id) for payment in payments}:
        lifecycle.entitlement_converge(
            user=User.objects.get(pk=user_id), offer=Offer.objects.get(pk=offer_id), cause=lifecycle.Cause(by=by)
        )
    return refunds


# --- The checklist -------------------------------------------------------------------------------
State = Literal["done", "failed", "waiting"]


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    state: State
    detail: str
    # What to do, in the creator's words, when the step failed or is taking too long.
    fix: str = ""
    link_url: str = ""
    link_text: str = ""

    @property
    def state_label(self) -> str:
        return {"done": "Done", "failed": "Needs attention", "waiting": "Waiting"}[self.state]


@dataclass(frozen=True)
class Checklist:
    steps: list[Step]
    closed: bool
    can_close: bool
    summary: str

    @property
    def complete(self) -> bool:
        return all(step.state == "done" for step in self.steps)

    def as_json(self) -> dict[str, object]:
        return {
            "complete": self.complete,
            "closed": self.closed,
            "can_close": self.can_close,
            "summary": self.summary,
            "steps": [
                {
                    "number": step.number,
                    "title": step.title,
                    "state": step.state,
                    "state_label": step.state_label,
                    "detail": step.detail,
                    "fix": step.fix,
                    "link_url": step.link_url,
                    "link_text": step.link_text,
                }
                for step in self.steps
            ],
        }


@dataclass(frozen=True)
class StripeCharge:
    """What Stripe says of the test's payment before (or without) any webhook."""

    paid: bool
    charge_id: str = ""
    paid_at: datetime | None = None
    error: str = ""


@dataclass
class _Facts:
    test: TestPurchase
    account: StripeAccount | None
    attempt: CheckoutAttempt | None
    payment: Payment | None
    stripe: StripeCharge | None
    delivered: WebhookEvent | None
    recovered: WebhookEvent | None
    refusal: WebhookRefusal | None
    entitlement: Entitlement | None
    email: OutboxMessage | None
    now: datetime
    notes: list[str] = field(default_factory=list)

    @property
    def charge_id(self) -> str:
        if self.payment is not None and self.payment.charge_id:
            return self.payment.charge_id
        return self.stripe.charge_id if self.stripe else ""

    @property
    def paid_at(self) -> datetime | None:
        if self.payment is not None:
            return self.payment.paid_at or self.payment.created_at
        return self.stripe.paid_at if self.stripe and self.stripe.paid else None


def checkout_test_checklist(*, test: TestPurchase, now: datetime | None = None) -> Checklist:
    """The six steps of the test's sale, each done, waiting, or failed with what to fix.

    Reads Stripe only while the platform's rows cannot answer (a payment no webhook has reported
    yet; the charge's balance transaction), outside any transaction, and keeps what Stripe said
    once it cannot change any more.
    """
    now = now or timezone.now()
    test = TestPurchase.objects.select_related("offer", "attempt", "attempt__user").get(pk=test.pk)
    attempt = test.attempt
    payment = attempt.payments.order_by("created_at", "pk").first() if attempt else None
    stripe_charge = None
    if attempt is not None and attempt.stripe_session_id and payment is None:
        stripe_charge = _stripe_charge(attempt)
    facts = _Facts(
        test=test,
        account=StripeAccount.objects.creator().first(),
        attempt=attempt,
        payment=payment,
        stripe=stripe_charge,
        delivered=None,
        recovered=None,
        refusal=None,
        entitlement=None,
        email=None,
        now=now,
    )
    if attempt is not None:
        facts.delivered, facts.recovered = _purchase_events(attempt, payment)
        if facts.delivered is None:
            facts.refusal = WebhookRefusal.objects.filter(received_at__gte=attempt.created_at).first()
        if attempt.user_id is not None:
            facts.entitlement = Entitlement.objects.filter(user_id=attempt.user_id, offer_id=attempt.offer_id).first()
    if facts.entitlement is not None and payment is not None:
        backing = payment.stripe_subscription_id or payment.payment_intent_id
        if facts.entitlement.backed_by == backing:
            facts.email = OutboxMessage.objects.filter(key=f"confirmation:{facts.entitlement.pk}:{backing}").first()
        else:
            facts.entitlement = None  # another purchase backs it: not this test's doing
    steps = [
        _session_step(facts),
        _payment_step(facts),
        _webhook_step(facts),
        _access_step(facts),
        _email_step(facts),
        _funds_step(facts),
    ]
    closed = test.closed_at is not None
    if closed:
        summary = (
            f"Refunded and hidden on {timezone.localtime(test.closed_at):%b %-d, %Y at %H:%M}. The payment stays in "
            "the ledger, marked as a test."
        )
    elif all(step.state == "done" for step in steps):
        summary = "Everything works: buyers can pay, get access and their email, and the money reaches your account."
    elif any(step.state == "failed" for step in steps):
        summary = "Something needs your attention: see the steps marked below."
    else:
        summary = "Waiting for the test purchase: this list updates by itself."
    return Checklist(steps=steps, closed=closed, can_close=payment is not None and not closed, summary=summary)


def _cached(key: str) -> object:
    try:
        return cache.get(key)
    except Exception:  # the cache is down: ask Stripe again
        return None


def _keep(key: str, value: object, seconds: int) -> None:
    try:
        cache.set(key, value, seconds)
    except Exception:
        logger.warning("the cache is unavailable: the checklist asks Stripe again next time")


def _stripe_charge(attempt: CheckoutAttempt) -> StripeCharge:
    """Whether the test's Checkout Session is paid, and by which charge, as Stripe says."""
    key = f"billing:test-purchase:charge:{attempt.pk}"
    known = _cached(key)
    if isinstance(known, StripeCharge):
        return known
    account_id = attempt.stripe_account_id
    try:
        session = gateway.checkout_session_retrieve(account_id=account_id, session_id=str(attempt.stripe_session_id))
        if not session.is_paid:
            charge = StripeCharge(paid=False)
        else:
            payment_intent_id = session.payment_intent_id
            if session.is_subscription and session.invoice_id:
                payment_intent_id = gateway.invoice_payment_intent_id(
                    account_id=account_id, invoice_id=session.invoice_id
                )
            found = (
                gateway.payment_intent_charge(account_id=account_id, payment_intent_id=payment_intent_id)
                if payment_intent_id
                else None
            )
            charge = StripeCharge(
                paid=True, charge_id=found.charge_id if found else "", paid_at=found.created if found else None
            )
    except gateway.StripeGatewayError as exc:
        return StripeCharge(paid=False, error=exc.user_message)
    # Once paid it stays paid; until then Stripe is asked again every few seconds at most.
    _keep(key, charge, 24 * 60 * 60 if charge.paid and charge.charge_id else STRIPE_READ_EVERY_SECONDS)
    return charge


def _purchase_events(attempt: CheckoutAttempt, payment: Payment | None) -> tuple[WebhookEvent | None, ...]:
    """The first delivered event about the test's purchase, and the first one only the
    reconciliation brought (found by the ids of its session, payment, invoice and charge)."""
    ids = {str(attempt.stripe_session_id or "")}
    if payment is not None:
        ids |= {payment.stripe_object_id, payment.payment_intent_id, payment.charge_id}
    ids.discard("")
    events = list(
        WebhookEvent.objects.filter(
            account=attempt.stripe_account_id,
            received_at__gte=attempt.created_at - timedelta(minutes=1),
            payload__data__object__id__in=sorted(ids),
        )
        .defer("payload")
        .order_by("received_at", "pk")[:50]
    )
    # The events that fulfil a purchase first (the checklist names the one that mattered).
    events.sort(key=lambda event: event.type not in FULFILLING_TYPES)
    delivered = next((event for event in events if not event.recovered), None)
    recovered = next((event for event in events if event.recovered), None)
    return delivered, recovered


FULFILLING_TYPES = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded", "invoice.paid"})


def _local(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%H:%M:%S}"


def _session_step(facts: _Facts) -> Step:
    title = "Checkout Session created"
    attempt, account = facts.attempt, facts.account
    if attempt is not None and attempt.stripe_session_id:
        return Step(1, title, "done", f"Stripe opened its payment page ({attempt.stripe_session_id}).")
    if account is None:
        return Step(
            1,
            title,
            "failed",
            "No Stripe account is connected, so the checkout cannot start.",
            fix="Connect your Stripe account under Settings > Integrations, then make a new test purchase.",
            link_url=reverse("billing:dashboard_integrations"),
            link_text="Settings > Integrations",
        )
    if not account.charges_enabled:
        return Step(
            1,
            title,
            "failed",
            "Your Stripe account cannot take payments yet.",
            fix=VERIFICATION_FIX,
            link_url=reverse("billing:dashboard_integrations"),
            link_text="Settings > Integrations",
        )
    if facts.test.problem:
        return Step(1, title, "failed", "Stripe did not open its payment page.", fix=facts.test.problem)
    if attempt is not None:
        return Step(1, title, "waiting", "Asking Stripe for its payment page…")
    return Step(
        1,
        title,
        "waiting",
        "Open the test link in a private window, fill in the name and email, and click Continue to payment.",
    )


def _payment_step(facts: _Facts) -> Step:
    title = "Payment received"
    attempt, payment = facts.attempt, facts.payment
    if payment is not None:
        card = f" from the card ending {payment.card_last4}" if payment.card_last4 else ""
        return Step(2, title, "done", f"Stripe took {payment.amount_label}{card} ({payment.stripe_object_id}).")
    if facts.stripe is not None and facts.stripe.paid:
        return Step(
            2, title, "done", f"Stripe says the Checkout Session is paid ({facts.stripe.charge_id or 'no charge yet'})."
        )
    if attempt is not None and attempt.status == CheckoutAttempt.Status.FAILED and attempt.stripe_session_id:
        return Step(
            2, title, "failed", "The payment failed.", fix="Make a new test purchase and pay with another card."
        )
    if attempt is None or not attempt.stripe_session_id:
        return Step(2, title, "waiting", "Waiting for the checkout to start.")
    livemode = facts.account is not None and facts.account.livemode
    how = (
        "Pay on Stripe's page with a real card: you can refund it here afterwards."
        if livemode
        else "Pay on Stripe's page with the test card 4242 4242 4242 4242, any future expiry date and any CVC."
    )
    if facts.stripe is not None and facts.stripe.error:
        how += f" (Stripe could not be asked just now: {facts.stripe.error})"
    return Step(2, title, "waiting", how)


def _webhook_step(facts: _Facts) -> Step:
    title = "Webhook received and its signature verified"
    if facts.delivered is not None:
        event = facts.delivered
        return Step(
            3, title, "done", f"Stripe's {event.type} arrived at {_local(event.received_at)}, correctly signed."
        )
    if facts.refusal is not None:
        refusal = facts.refusal
        what = f" ({refusal.event_type})" if refusal.event_type else ""
        if refusal.reason == WebhookRefusal.Reason.STALE:
            fix = (
                "The signature was made more than five minutes before it arrived: the server's clock is off, or a "
                "proxy holds deliveries back. Set the clock right (NTP) and check the proxy."
            )
        elif refusal.reason in (WebhookRefusal.Reason.MISSING, WebhookRefusal.Reason.MALFORMED):
            fix = (
                "Deliveries arrive without a usable Stripe-Signature header: a proxy in front of the site may drop "
                "or change it. Let the header through to the site unchanged."
            )
        elif refusal.reason == WebhookRefusal.Reason.PAYLOAD:
            fix = "The body arrived changed (a proxy re-encoding it?): let requests to the endpoint through untouched."
        else:
            fix = WEBHOOK_SECRET_FIX
        return Step(
            3,
            title,
            "failed",
            f"A delivery{what} was refused at {_local(refusal.received_at)}: {refusal.get_reason_display().lower()}.",
            fix=fix,
        )
    if facts.recovered is not None:
        return Step(
            3,
            title,
            "failed",
            "The payment's event reached the site only through its catch-up job, not as a webhook.",
            fix=endpoint_fix(),
        )
    paid_at = facts.paid_at
    if paid_at is None:
        return Step(3, title, "waiting", "Stripe sends it once the payment is made.")
    if facts.now - paid_at > WEBHOOK_PATIENCE:
        return Step(3, title, "failed", "Stripe took the payment, but no webhook has arrived.", fix=endpoint_fix())
    return Step(3, title, "waiting", "The payment is made: waiting for Stripe's webhook…")


def _access_step(facts: _Facts) -> Step:
    title = "Access granted"
    attempt, entitlement = facts.attempt, facts.entitlement
    if attempt is not None and attempt.status == CheckoutAttempt.Status.FLAGGED:
        return Step(
            4,
            title,
            "failed",
            attempt.error,
            fix="The price changed while the test was paying: make a new test purchase.",
        )
    if entitlement is not None:
        assert attempt is not None
        assert attempt.user is not None
        if entitlement.has_access(facts.now):
            detail = f"{attempt.user.email} has access to {attempt.offer.title}."
        else:
            detail = f"{attempt.user.email} had access; now: {entitlement.effective_status_label(facts.now).lower()}."
        return Step(4, title, "done", detail)
    event = facts.delivered
    if event is not None and event.status == WebhookEvent.Status.FAILED:
        return Step(
            4,
            title,
            "failed",
            f"Processing Stripe's {event.type} failed: {event.error[:300]}",
            fix="It is tried again by itself; Settings > Integrations > Stripe events shows it with a Retry button.",
            link_url=reverse("billing:dashboard_webhook_events"),
            link_text="Stripe events",
        )
    if event is not None and facts.now - event.received_at > WORKER_PATIENCE:
        return Step(4, title, "failed", "Stripe's event arrived but has not been processed.", fix=WORKER_FIX)
    if event is not None:
        return Step(4, title, "waiting", "Stripe's event arrived: granting access…")
    return Step(4, title, "waiting", "Access is granted when Stripe's webhook arrives.")


def _email_step(facts: _Facts) -> Step:
    title = "Confirmation email sent"
    message, entitlement = facts.email, facts.entitlement
    if entitlement is None:
        return Step(5, title, "waiting", "Sent once access is granted.")
    if message is None:
        return Step(5, title, "waiting", "Recording the email…")
    view = {
        "link_url": reverse("billing:checkout_test_email", kwargs={"pk": facts.test.pk}),
        "link_text": "View the email",
    }
    if message.status == OutboxMessage.Status.SENT:
        sent_at = _local(message.sent_at) if message.sent_at else "—"
        return Step(5, title, "done", f"Sent to {entitlement.user.email} at {sent_at}.", **view)
    if message.status == OutboxMessage.Status.FAILED or message.last_error:
        error = message.last_error[:300] or "the mail server refused it"
        return Step(5, title, "failed", f"The email could not be sent: {error}", fix=SMTP_FIX, **view)
    if facts.now - message.created_at > WORKER_PATIENCE:
        return Step(5, title, "failed", "The email is waiting to be sent.", fix=WORKER_FIX, **view)
    return Step(5, title, "waiting", "Sending…")


def _funds_step(facts: _Facts) -> Step:
    title = "Funds recorded on your Stripe account"
    attempt, charge_id = facts.attempt, facts.charge_id
    if attempt is None or not charge_id:
        return Step(6, title, "waiting", "Read from Stripe once the payment is made.")
    key = f"billing:test-purchase:balance:{charge_id}"
    txn = _cached(key)
    if not isinstance(txn, gateway.BalanceTransaction):
        try:
            txn = gateway.charge_balance_transaction(account_id=attempt.stripe_account_id, charge_id=charge_id)
        except gateway.StripeGatewayError as exc:
            return Step(6, title, "waiting", f"Stripe could not be asked just now: {exc.user_message}")
        if txn is None:
            return Step(6, title, "waiting", "Stripe has not recorded the funds yet.")
        _keep(key, txn, 24 * 60 * 60)  # a charge's balance transaction never changes
    money = txn.currency
    parts = [
        f"Charge {format_money(txn.amount, money)}",
        f"Stripe's fee {format_money(txn.stripe_fee or txn.fee - txn.application_fee, money)}",
    ]
    if txn.application_fee:
        parts.append(f"platform fee {format_money(txn.application_fee, money)}")
    parts.append(f"net {format_money(txn.net, money)}")
    detail = " · ".join(parts) + f" on {attempt.stripe_account_id}"
    if txn.available_on:
        detail += f", available {timezone.localtime(txn.available_on):%b %-d, %Y}"
    detail += "."
    fix = ""
    if facts.account is not None and not facts.account.payouts_enabled:
        fix = "Stripe holds payouts until the account is verified: complete the steps your Stripe dashboard lists."
    return Step(6, title, "done", detail, fix=fix)
