"""Membership reconciliation: compare Stripe's current state of every purchase that still
matters with the membership it backs, and repair what disagrees.

Webhooks can be lost for longer than the events reconciliation looks back (two days), or
processed against a copy that later went stale. This reads each purchase from Stripe again and
hands it to the same code the webhooks use (``lifecycle.subscription_store``,
``lifecycle.payment_charge_apply``, ``lifecycle.entitlement_converge``), so a repair is exactly
what the lost event would have done, emails included, and running it twice changes nothing.

What is read, on each connected account: every subscription that is live in billing's copy or
backs a membership that gives access; every one-time payment that backs a membership giving
access, every payment with an open dispute, and the latest payment of each subscription read;
and Stripe's list of the account's subscriptions, for those the platform's checkout started
but nothing here recorded. Each kind is capped (newest first), and Stripe is only called
outside transactions. A dry run does the same work in transactions it rolls back, so it
reports exactly what a repair would change.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet

from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, Payment, StripeAccount, StripeSubscription
from billing.services import lifecycle
from billing.services.fulfilment import checkout_attempt_fulfil
from billing.services.lifecycle import subscription_facts
from memberships.models import Entitlement, Offer, format_money

logger = logging.getLogger(__name__)

# The most of each kind one run reads from Stripe, newest first.
SUBSCRIPTIONS_CAP = 500
PAYMENTS_CAP = 500
STRIPE_LIST_CAP = 1000
LIVE_STATUSES = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")
# Subscriptions listed from Stripe that took (or may take) money; ``incomplete`` ones are
# checkouts still open or abandoned.
CHARGING_STATUSES = ("active", "trialing", "past_due", "unpaid", "paused")


@dataclass(frozen=True)
class Finding:
    """One purchase whose Stripe state disagreed with the platform's."""

    object_id: str
    email: str
    offer: str
    stripe_says: str
    we_said: str
    now: str
    repaired: bool

    @property
    def line(self) -> str:
        head = f"{self.object_id} ({self.email}, {self.offer}): Stripe says {self.stripe_says}, {self.we_said}"
        if self.repaired:
            return f"{head} -> repaired (now {self.now})"
        return f"{head} -> not repaired (dry run; a repair makes it {self.now})"


@dataclass
class AccountReport:
    account_id: str
    repair: bool
    subscriptions_checked: int = 0
    payments_checked: int = 0
    subscriptions_listed: int = 0
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be read or repaired
    capped: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return [finding.line for finding in self.findings] + self.problems + self.capped

    @property
    def summary(self) -> str:
        outcome = f"{sum(f.repaired for f in self.findings)} repaired" if self.repair else "dry run: nothing repaired"
        text = (
            f"Stripe account {self.account_id}: checked {_count(self.subscriptions_checked, 'subscription')}, "
            f"{_count(self.payments_checked, 'payment')} and {_count(self.subscriptions_listed, 'subscription')} "
            f"listed by Stripe; {len(self.findings)} disagreed with Stripe ({outcome})"
        )
        if self.problems:
            text += f"; {len(self.problems)} could not be checked"
        return text + "."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass
class Report:
    accounts: list[AccountReport]


def memberships_reconcile(*, repair: bool, now: datetime | None = None) -> Report:
    """Check every purchase that still matters against Stripe, on every connected account,
    and repair each disagreement (unless ``repair`` is false: a dry run)."""
    return Report(
        accounts=[
            _account_reconcile(account.account_id, repair=repair, now=now)
            for account in StripeAccount.objects.creator().order_by("connected_at")
        ]
    )


def _account_reconcile(account_id: str, *, repair: bool, now: datetime | None) -> AccountReport:
    report = AccountReport(account_id=account_id, repair=repair)
    subscriptions = _subscriptions_to_check(account_id)
    if len(subscriptions) > SUBSCRIPTIONS_CAP:
        report.capped.append(f"Only the newest {SUBSCRIPTIONS_CAP} subscriptions were checked; run it again later.")
    subscriptions = subscriptions[:SUBSCRIPTIONS_CAP]
    for row in subscriptions:
        _check_subscription(report, row, repair=repair, now=now)
    payments = _payments_to_check(account_id, [row.subscription_id for row in subscriptions])
    if len(payments) > PAYMENTS_CAP:
        report.capped.append(f"Only the newest {PAYMENTS_CAP} payments were checked; run it again later.")
    for payment in payments[:PAYMENTS_CAP]:
        _check_payment(report, payment, repair=repair, now=now)
    _check_unrecorded_subscriptions(report, repair=repair, now=now)
    return report


# --- What to read ----------------------------------------------------------------------------
def _backings_with_access() -> QuerySet[Entitlement]:
    """Memberships stored as giving access, including those whose paid period has run out
    since (a renewal Stripe took and the platform never heard of)."""
    return Entitlement.objects.filter(status__in=Entitlement.ACCESS_STATUSES).exclude(backed_by="")


def _subscriptions_to_check(account_id: str) -> list[StripeSubscription]:
    backing = _backings_with_access().filter(backed_by__startswith="sub_").values("backed_by")
    rows = (
        StripeSubscription.objects.filter(stripe_account_id=account_id)
        .filter(Q(status__in=LIVE_STATUSES) | Q(subscription_id__in=backing))
        .select_related("user", "offer", "attempt")
        .order_by("-created")
    )
    return list(rows[: SUBSCRIPTIONS_CAP + 1])


def _payments_to_check(account_id: str, subscription_ids: list[str]) -> list[Payment]:
    backing = _backings_with_access().filter(backed_by__startswith="pi_").values("backed_by")
    latest_of_subscriptions: dict[str, int] = {}
    for subscription_id, pk in (
        Payment.objects.filter(stripe_subscription_id__in=subscription_ids)
        .order_by("-period_end", "-paid_at", "-pk")
        .values_list("stripe_subscription_id", "pk")
    ):
        latest_of_subscriptions.setdefault(subscription_id, pk)
    rows = (
        Payment.objects.filter(stripe_account_id=account_id)
        .exclude(payment_intent_id="")
        .filter(
            Q(kind=Payment.Kind.ONE_TIME, payment_intent_id__in=backing)
            | Q(dispute_status=Payment.DisputeStatus.OPEN)
            | Q(pk__in=latest_of_subscriptions.values())
        )
        .select_related("user", "offer")
        .order_by("-created_at")
    )
    return list(rows[: PAYMENTS_CAP + 1])


# --- Words ---------------------------------------------------------------------------------
def _membership_words(entitlement: Entitlement | None, now: datetime | None) -> str:
    if entitlement is None:
        return "none"
    label = entitlement.effective_status_label(now)
    return label[:1].lower() + label[1:]


def _subscription_words(status: str, cancel_at_period_end: bool) -> str:
    words = status.replace("_", " ") or "unknown"
    if cancel_at_period_end and status in ("active", "trialing"):
        words += ", set to cancel at the end of the period"
    return words


def _charge_words(payment: Payment) -> str:
    amount, refunded, dispute, currency = (
        payment.amount,
        payment.amount_refunded,
        payment.dispute_status,
        payment.currency,
    )
    if dispute == Payment.DisputeStatus.LOST:
        return "dispute lost"
    if dispute == Payment.DisputeStatus.OPEN:
        return "disputed"
    if refunded >= amount:
        return f"refunded in full ({format_money(refunded, currency)})"
    if refunded:
        return f"refunded {format_money(refunded, currency)} of {format_money(amount, currency)}"
    return "dispute won" if dispute == Payment.DisputeStatus.WON else "paid"


def _state(entitlement: Entitlement | None) -> tuple[object, ...]:
    if entitlement is None:
        return ()
    return (
        entitlement.status,
        entitlement.access_until,
        entitlement.backed_by,
        entitlement.renews_at,
        entitlement.cancel_at_period_end,
    )


def _entitlement(user_id: int, offer: Offer) -> Entitlement | None:
    return Entitlement.objects.filter(user_id=user_id, offer=offer).first()


# --- Checking and repairing ------------------------------------------------------------------
def _settle(repair: bool, work: Callable[[], Finding | None]) -> Finding | None:
    """Run ``work`` in a transaction, kept when repairing, rolled back in a dry run (its emails
    and Stripe writes, recorded in the outbox, go with it)."""
    with transaction.atomic():
        finding = work()
        if not repair:
            transaction.set_rollback(True)
    return finding


def _check_subscription(report: AccountReport, row: StripeSubscription, *, repair: bool, now: datetime | None) -> None:
    try:
        facts = subscription_facts(account_id=report.account_id, subscription_id=row.subscription_id)
    except gateway.StripeGatewayError as exc:
        report.problems.append(f"{row.subscription_id} ({row.user.email}): Stripe could not be read: {exc}")
        return
    report.subscriptions_checked += 1

    def work() -> Finding | None:
        copy = StripeSubscription.objects.get(pk=row.pk)
        before = _entitlement(row.user_id, row.offer)
        lifecycle.subscription_store(
            account_id=report.account_id,
            facts=facts,
            user=row.user,
            offer=row.offer,
            attempt=row.attempt,
        )
        lifecycle.entitlement_converge(user=row.user, offer=row.offer)
        after = _entitlement(row.user_id, row.offer)
        stored = StripeSubscription.objects.get(pk=row.pk)
        fields = ("status", "current_period_end", "cancel_at_period_end", "failing_invoice_id")
        copy_changed = any(getattr(copy, name) != getattr(stored, name) for name in fields)
        if _state(before) == _state(after) and not copy_changed:
            return None
        return _finding(
            object_id=row.subscription_id,
            email=row.user.email,
            offer=row.offer,
            stripe_says=_subscription_words(stored.status, stored.cancel_at_period_end),
            copy_said=_subscription_words(copy.status, copy.cancel_at_period_end),
            before=before,
            after=after,
            repair=repair,
            now=now,
        )

    _record(report, _settle(repair, work))


def _check_payment(report: AccountReport, payment: Payment, *, repair: bool, now: datetime | None) -> None:
    try:
        facts = lifecycle.charge_facts(account_id=report.account_id, payment_intent_id=payment.payment_intent_id)
    except gateway.StripeGatewayError as exc:
        report.problems.append(f"{payment.payment_intent_id} ({payment.user.email}): Stripe could not be read: {exc}")
        return
    if facts.charge is None:
        return
    report.payments_checked += 1

    def work() -> Finding | None:
        copy = Payment.objects.get(pk=payment.pk)
        before = _entitlement(payment.user_id, payment.offer)
        lifecycle.payment_charge_apply(payment_pk=payment.pk, facts=facts)
        after = _entitlement(payment.user_id, payment.offer)
        stored = Payment.objects.get(pk=payment.pk)
        copy_changed = (copy.amount_refunded, copy.dispute_status) != (stored.amount_refunded, stored.dispute_status)
        if _state(before) == _state(after) and not copy_changed:
            return None
        return _finding(
            object_id=payment.payment_intent_id,
            email=payment.user.email,
            offer=payment.offer,
            stripe_says=_charge_words(stored),
            copy_said=_charge_words(copy),
            before=before,
            after=after,
            repair=repair,
            now=now,
        )

    _record(report, _settle(repair, work))


def _finding(
    *,
    object_id: str,
    email: str,
    offer: Offer,
    stripe_says: str,
    copy_said: str,
    before: Entitlement | None,
    after: Entitlement | None,
    repair: bool,
    now: datetime | None,
) -> Finding:
    if _state(before) != _state(after):
        we_said = f"the membership said {_membership_words(before, now)}"
    else:
        # The membership was right; billing's copy of the purchase was behind.
        we_said = f"the platform's copy said {copy_said} (the membership stays {_membership_words(after, now)})"
    return Finding(
        object_id=object_id,
        email=email,
        offer=offer.title,
        stripe_says=stripe_says,
        we_said=we_said,
        now=_membership_words(after, now),
        repaired=repair,
    )


def _record(report: AccountReport, finding: Finding | None) -> None:
    if finding is None:
        return
    report.findings.append(finding)
    if finding.repaired:
        logger.warning("membership reconciliation: %s", finding.line)


# --- Subscriptions Stripe has and the platform never recorded --------------------------------
def _attempt(account_id: str, reference: str) -> CheckoutAttempt | None:
    try:
        attempt_id = uuid.UUID(reference)
    except ValueError:
        return None
    return CheckoutAttempt.objects.filter(pk=attempt_id, stripe_account_id=account_id).select_related("offer").first()


def _check_unrecorded_subscriptions(report: AccountReport, *, repair: bool, now: datetime | None) -> None:
    try:
        listed, more = gateway.subscriptions_list(account_id=report.account_id, cap=STRIPE_LIST_CAP)
    except gateway.StripeGatewayError as exc:
        report.problems.append(f"Stripe's list of subscriptions could not be read: {exc}")
        return
    report.subscriptions_listed = len(listed)
    if more:
        report.capped.append(f"Only the newest {STRIPE_LIST_CAP} of Stripe's subscriptions were listed.")
    ours = [sub for sub in listed if sub.checkout_attempt and sub.status in CHARGING_STATUSES]
    known = set(
        StripeSubscription.objects.filter(subscription_id__in=[sub.subscription_id for sub in ours]).values_list(
            "subscription_id", flat=True
        )
    )
    for subscription in ours:
        if subscription.subscription_id in known:
            continue
        attempt = _attempt(report.account_id, subscription.checkout_attempt)
        if attempt is None:
            report.problems.append(
                f"{subscription.subscription_id}: Stripe says {_subscription_words(subscription.status, False)} and "
                f"names checkout {subscription.checkout_attempt}, which this platform has no record of: look at it "
                "in Stripe's dashboard."
            )
            continue
        _check_unrecorded(report, subscription, attempt, repair=repair, now=now)


def _check_unrecorded(
    report: AccountReport,
    subscription: gateway.Subscription,
    attempt: CheckoutAttempt,
    *,
    repair: bool,
    now: datetime | None,
) -> None:
    """Record a subscription the platform's checkout started but whose events all went
    missing: through fulfilment, from its paid first invoice, as ``invoice.paid`` would."""
    account_id = report.account_id
    try:
        facts = subscription_facts(account_id=account_id, subscription_id=subscription.subscription_id)
        invoice = (
            gateway.invoice_retrieve(account_id=account_id, invoice_id=subscription.latest_invoice_id)
            if subscription.latest_invoice_id
            else None
        )
        payment_intent_id = (
            gateway.invoice_payment_intent_id(account_id=account_id, invoice_id=invoice.invoice_id)
            if invoice is not None and invoice.status == "paid"
            else ""
        )
        charge = (
            lifecycle.charge_facts(account_id=account_id, payment_intent_id=payment_intent_id)
            if payment_intent_id
            else None
        )
    except gateway.StripeGatewayError as exc:
        report.problems.append(f"{subscription.subscription_id} ({attempt.email}): Stripe could not be read: {exc}")
        return
    words = _subscription_words(subscription.status, subscription.cancel_at_period_end)
    if invoice is None or invoice.status != "paid":
        report.problems.append(
            f"{subscription.subscription_id} ({attempt.email}, {attempt.offer.title}): Stripe says {words}, but no "
            "paid invoice was found for it and the platform has no record of it: look at it in Stripe's dashboard."
        )
        return
    paid_invoice = invoice

    def work() -> Finding | None:
        before = _entitlement(attempt.user_id, attempt.offer) if attempt.user_id else None
        outcome = checkout_attempt_fulfil(
            attempt_id=attempt.pk,
            paid=paid_invoice.paid(),
            payment_intent_id=payment_intent_id,
            charge=charge,
            subscription=facts,
        )
        fulfilled = CheckoutAttempt.objects.get(pk=attempt.pk)
        after = _entitlement(fulfilled.user_id, attempt.offer) if fulfilled.user_id else None
        if after is None:
            report.problems.append(
                f"{subscription.subscription_id} ({attempt.email}): Stripe says {words}, and recording it failed: "
                f"{outcome.message}"
            )
            return None
        return Finding(
            object_id=subscription.subscription_id,
            email=attempt.email,
            offer=attempt.offer.title,
            stripe_says=words,
            we_said="the platform had no record of it"
            + (f" (the membership said {_membership_words(before, now)})" if before else ""),
            now=_membership_words(after, now),
            repaired=repair,
        )

    _record(report, _settle(repair, work))
