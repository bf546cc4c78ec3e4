"""Affiliates benchmark: the commission pipeline, with a real Celery worker on Redis.

A creator and a partner connect sandbox accounts through Connect OAuth, and the partner joins
a monthly resell offer's program. ``SUBSCRIPTIONS`` buyers subscribe on the sandbox's hosted
checkout page, every other one after following the partner's link (the ``?ref=`` visit's
signed cookie, read by the checkout contributor as the checkout starts, so Stripe takes an
application fee on each of the subscription's invoices), the others without it. The sandbox's
clock moves ``STEP`` between purchases, so that each subscription renews at a moment of its own.

The clock is then moved past the next period end, again and again until every subscription
has renewed ``RENEWALS`` times: one renewal at a time, each once the previous one's webhooks
and outbox rows are all dealt with, on the billing benchmarks' platform (gunicorn taking the
webhooks, a real worker doing the work). Per renewal: from the sandbox delivering its
``invoice.paid`` until the Commission row for its payment exists (referred), or its Payment
row (not referred: the same pipeline with no commission to record, the baseline). The ledger
writes in billing's transaction, so both rows appear at its commit: the figure, the ratio of
the two p95s from the same run, is what the commission adds to that pipeline. The p50s and
p95s are in its note.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.bench_billing import (
    celery_worker,
    connected_account,
    form_post,
    live_platform,
    on_database,
    sandbox_control,
    wait_until,
)
from bench.harness import Figure

if TYPE_CHECKING:
    from affiliates.models import ReferralLink
    from billing.models import CheckoutAttempt, StripeAccount
    from memberships.models import Offer

# 24 subscriptions renewing 4 times each: 48 referred renewals and 48 not referred. Setting up
# a subscription costs the platform several times what a renewal does, hence few of them.
SUBSCRIPTIONS = 24
BASELINE_EVERY = 2
RENEWALS = 4
STEP = 600  # sandbox seconds between two purchases, and so between two renewals
CARD = {"card_number": "4242424242424242", "expiry": "12 / 34", "cvc": "123", "name": "Buyer"}


@dataclass
class Program:
    creator: StripeAccount
    offer: Offer
    link: ReferralLink


def run() -> list[Figure]:
    return on_database(_run)


def _run() -> list[Figure]:
    with live_platform(AFFILIATES_ENABLED="true") as stack, celery_worker(stack.data_dir):
        url = stack.sandbox_url
        sandbox_control(url, "POST", "/config", {"webhook_url": f"http://{stack.address}/stripe/webhook/"})
        program = _program(url)
        attempts = []
        for index in range(SUBSCRIPTIONS):
            referred = index % BASELINE_EVERY != BASELINE_EVERY - 1
            attempts.append((_subscribe(url, program, index, referred=referred), referred))
            sandbox_control(url, "POST", "/clock", {"seconds": STEP})
        _settle(url)
        _check_payments(attempts, renewals=0)
        samples = _renewals(url, attempts)
        _check_payments(attempts, renewals=RENEWALS)
    referred_samples, baseline_samples = samples[True], samples[False]
    ratio = _p95(referred_samples) / _p95(baseline_samples)
    note = (
        f"(commission recorded: p50 {statistics.median(referred_samples):.3f} s, p95 {_p95(referred_samples):.3f} s"
        f" over {len(referred_samples)} referred renewals; payment recorded: p50"
        f" {statistics.median(baseline_samples):.3f} s, p95 {_p95(baseline_samples):.3f} s"
        f" over {len(baseline_samples)} not referred)"
    )
    name = "commission latency p95, renewal's invoice.paid delivered to commission recorded, vs payment recorded"
    return [Figure(name, ratio, "x", "<=", 1.5, note)]


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _program(sandbox_url: str) -> Program:
    """Both accounts connected, a $25 monthly offer with 30% resell rights, the partner's link."""
    from django.utils import timezone

    from accounts.models import User
    from affiliates import services
    from billing.models import StripeAccount
    from billing.services import catalog
    from memberships.models import Offer

    owner = User.objects.create_user("owner@bench.example", "x" * 20, is_staff=True)
    connected_account(sandbox_url, by=owner)
    partner = User.objects.create_user("partner@bench.example", "x" * 20, email_verified_at=timezone.now())
    connected_account(sandbox_url, by=partner, partner=True, business_name="Bench partner")
    offer = Offer.objects.create(
        title="Bench Circle",
        slug="bench-circle",
        status=Offer.Status.PUBLISHED,
        pricing=Offer.Pricing.RECURRING,
        interval=Offer.Interval.MONTH,
        price_amount=2500,
        resell_enabled=True,
        resell_commission_percent=30,
        resell_description="Tell your friends.",
    )
    catalog.offer_stripe_sync(offer_id=offer.pk)
    link = services.partner_join(user=partner, offer=offer)
    return Program(creator=StripeAccount.objects.creator().get(), offer=offer, link=link)


def _subscribe(sandbox_url: str, program: Program, index: int, *, referred: bool) -> CheckoutAttempt:
    """A buyer starts the checkout (after following the partner's link, when ``referred``) and
    pays on the hosted page. Returns without waiting for the webhooks."""
    from django.conf import settings
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from affiliates import referrals
    from billing.models import CheckoutAttempt
    from billing.services import checkout

    offer_page = f"/offers/{program.offer.slug}/"
    request = RequestFactory().post(f"{offer_page}checkout/pay/")
    request.user = AnonymousUser()
    if referred:
        visit = referrals.referral_visit(RequestFactory().get(f"{offer_page}?ref={program.link.code}"))
        if visit is None:
            raise RuntimeError("the partner's link did not attribute")
        request.COOKIES[referrals.COOKIE_NAME] = visit.cookies[referrals.COOKIE_NAME].value
    email = f"{'referred' if referred else 'direct'}{index}@bench.example"
    started, _ = checkout.checkout_session_start(
        offer=program.offer,
        account=program.creator,
        email=email,
        full_name=f"Buyer {index}",
        browser_key=uuid.uuid4().hex,
        site_url=settings.SITE_URL,
        request=request,
    )
    attempt = CheckoutAttempt.objects.get(pk=started.pk)
    status, _ = form_post(sandbox_url, f"/c/pay/{attempt.stripe_session_id}", {**CARD, "email": email})
    if status != 303:
        raise RuntimeError(f"the hosted page answered {status}")
    return attempt


def _settle(sandbox_url: str, timeout: float = 120) -> None:
    """Wait until the sandbox has nothing left to deliver and every event and outbox row is
    dealt with, twice in a row (an outbox row's Stripe write makes new events)."""
    from accounts.models import OutboxMessage
    from billing.models import WebhookEvent

    def quiet() -> bool:
        return (
            sandbox_control(sandbox_url, "GET", "/deliveries")["pending"] == 0
            and not WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).exists()
            and not OutboxMessage.objects.filter(
                status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING]
            ).exists()
        )

    for _ in range(2):
        wait_until(quiet, timeout, "every delivery, event and outbox row to be dealt with", every=0.05)
    failed = WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED)
    if failed.exists() or OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED).exists():
        raise RuntimeError(f"events or outbox rows failed: {list(failed.values_list('type', 'error'))}")


def _check_payments(attempts: list[tuple[CheckoutAttempt, bool]], *, renewals: int) -> None:
    """Each subscription's first payment and ``renewals`` renewals are recorded, each with a
    commission when the subscription was referred, none otherwise."""
    from affiliates.models import Commission
    from billing.models import Payment

    for attempt, referred in attempts:
        paid = list(Payment.objects.filter(attempt=attempt).values_list("is_renewal", flat=True))
        earned = Commission.objects.filter(payment__attempt=attempt).count()
        if sorted(paid) != [False] + [True] * renewals or earned != (len(paid) if referred else 0):
            raise RuntimeError(f"{attempt.email}: payments {paid} (renewal or not), {earned} commissions")


def _renewals(sandbox_url: str, attempts: list[tuple[CheckoutAttempt, bool]]) -> dict[bool, list[float]]:
    """Renew the subscriptions one at a time, the next period end first, until each has renewed
    ``RENEWALS`` times; returns the latencies, referred (True) and not (False)."""
    from affiliates.models import Commission
    from billing.models import Payment, StripeSubscription

    referred_of = {attempt.pk: referred for attempt, referred in attempts}
    left = dict.fromkeys(referred_of, RENEWALS)
    samples: dict[bool, list[float]] = {True: [], False: []}
    seen = set(_invoice_paid_deliveries(sandbox_url))
    while renewing := [pk for pk, count in left.items() if count]:
        row = StripeSubscription.objects.filter(attempt__in=renewing).order_by("current_period_end").first()
        if row is None or row.attempt_id is None:
            raise RuntimeError("a subscription to renew is not stored")
        referred = referred_of[row.attempt_id]
        renewals = Payment.objects.filter(attempt=row.attempt_id, is_renewal=True)
        recorded = Commission.objects.filter(payment__in=renewals) if referred else renewals
        fresh = recorded.exclude(pk__in=list(recorded.values_list("pk", flat=True)))
        now = sandbox_control(sandbox_url, "GET", "/clock")["now"]
        assert isinstance(now, int)
        period_end = int(row.current_period_end.timestamp())
        sandbox_control(sandbox_url, "POST", "/clock", {"seconds": max(0, period_end - now + 60)})
        wait_until(fresh.exists, 30, f"the renewal of {row.subscription_id} to be recorded")
        finished = time.time()
        deliveries = _invoice_paid_deliveries(sandbox_url)
        new = [at for event_id, at in deliveries.items() if event_id not in seen]
        if len(new) != 1:
            raise RuntimeError(f"the renewal of {row.subscription_id} delivered {len(new)} invoice.paid events")
        samples[referred].append(finished - new[0])
        seen.update(deliveries)
        left[row.attempt_id] -= 1
        _settle(sandbox_url)
    return samples


def _invoice_paid_deliveries(sandbox_url: str) -> dict[str, float]:
    """When each ``invoice.paid`` in the sandbox's delivery log was first sent, by event id."""
    entries = sandbox_control(sandbox_url, "GET", "/deliveries")["deliveries"]
    assert isinstance(entries, list)
    first: dict[str, float] = {}
    for entry in entries:
        if entry["type"] == "invoice.paid":
            first[entry["event_id"]] = min(float(entry["at"]), first.get(entry["event_id"], float("inf")))
    return first
