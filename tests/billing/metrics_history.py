"""A known history for the figures' tests, in America/New_York (UTC-5 until March 8, then UTC-4), with ``NOW``
on March 15, 2026. The tests work out each figure by hand.

Offers: Course (one-time, $50.00), Club (monthly, now $12.00, sold at $10.00 before), Club EU
(weekly, €10.00), Half (every 6 months, $0.51: 8.5 ¢ a month, an exact half), Free (free).

Payments (Stripe's time):
  p1  Ana     Course  $50.00  Jan 10         $5.00 commission, $1.75 Stripe fee
  p2  Ben     Club    $10.00  Feb 3          first payment
  p7  Finn    Club    $10.00  Feb 28 22:00   (Mar 1 03:00 UTC), recorded Mar 10: a late event
  p3  Ben     Club    $10.00  Mar 3          renewal, $0.59 Stripe fee
  p4  Cleo    Course  $50.00  Mar 5          $20.00 refunded
  p5  Dan     Course  $50.00  Mar 6          dispute lost
  p6  Eve     Club EU €10.00  Mar 7          dispute open
  p8  tester  Course  $50.00  Mar 8          a test purchase
  p11 Gus     Half    $0.51   Mar 9
  p12 Hal     Half    $0.51   Mar 9
  p9  Jo      Course  $50.00  Nov 20, 2025   fully refunded
  p10 Jo      Course  $50.00  Mar 11         bought again
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction

from accounts.models import User
from billing.models import CheckoutAttempt, Payment, StripeSubscription
from billing.services import sales_days
from memberships.models import Entitlement, Offer
from memberships.services import member_joined
from tests import factories
from tests.factories import ACCOUNT_ID

TIME_ZONE = "America/New_York"
NOW = datetime(2026, 3, 15, 16, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int = 15, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


@dataclass
class History:
    course: Offer
    club: Offer
    club_eu: Offer
    half: Offer
    free: Offer
    users: dict[str, User]


def _offer(title: str, *, pricing: str, amount: int = 0, currency: str = "usd", interval: str = "") -> Offer:
    return factories.offer(title, pricing=pricing, price_amount=amount, currency=currency, interval=interval)


def _attempt(offer: Offer, user: User, *, amount: int, interval: str, is_test: bool = False) -> CheckoutAttempt:
    return CheckoutAttempt.objects.create(
        offer=offer,
        stripe_account_id=ACCOUNT_ID,
        stripe_price_id="price_test",
        amount=amount,
        currency=offer.currency,
        pricing=offer.pricing,
        interval=interval,
        email=user.email,
        browser_key="key",
        status=CheckoutAttempt.Status.PAID,
        user=user,
        is_test=is_test,
    )


_serial = iter(range(1, 1_000_000))


def pay(
    user: User,
    offer: Offer,
    paid_at: datetime,
    *,
    amount: int | None = None,
    refunded: int = 0,
    dispute: str = "",
    fee: int = 0,
    stripe_fee: int = 0,
    is_test: bool = False,
    renewal: bool = False,
    created_at: datetime | None = None,
) -> Payment:
    number = next(_serial)
    payment = Payment(
        stripe_object_id=f"pi_history_{number}",
        kind=Payment.Kind.INVOICE if offer.pricing == Offer.Pricing.RECURRING else Payment.Kind.ONE_TIME,
        stripe_account_id=ACCOUNT_ID,
        amount=offer.price_amount if amount is None else amount,
        currency=offer.currency,
        user=user,
        offer=offer,
        amount_refunded=refunded,
        dispute_status=dispute,
        application_fee_amount=fee,
        stripe_fee_amount=stripe_fee,
        is_test=is_test,
        is_renewal=renewal,
        paid_at=paid_at,
        created_at=created_at or paid_at,
    )
    # As billing's services do when they record a payment, in its transaction: its share of the
    # daily rollup, and a first payment's time for the new members.
    with transaction.atomic():
        payment.save()
        sales_days.sales_day_move(before=None, after=sales_days.share_of(payment))
        if not is_test and not renewal:
            member_joined(user_id=user.pk, at=paid_at)
    return payment


def subscribe(
    user: User,
    offer: Offer,
    created: datetime,
    *,
    status: str = "active",
    attempt: CheckoutAttempt | None = None,
    canceled_at: datetime | None = None,
    ended_at: datetime | None = None,
) -> StripeSubscription:
    return StripeSubscription.objects.create(
        subscription_id=f"sub_history_{next(_serial)}",
        stripe_account_id=ACCOUNT_ID,
        user=user,
        offer=offer,
        attempt=attempt,
        status=status,
        canceled_at=canceled_at,
        ended_at=ended_at,
        created=created,
        synced_at=created,
    )


def entitle(
    user: User,
    offer: Offer,
    started_at: datetime,
    *,
    status: str = Entitlement.Status.ACTIVE,
    access_until: datetime | None = None,
    ended_at: datetime | None = None,
    is_test: bool = False,
) -> Entitlement:
    source = {
        Offer.Pricing.FREE: Entitlement.Source.FREE,
        Offer.Pricing.ONE_TIME: Entitlement.Source.PURCHASE,
        Offer.Pricing.RECURRING: Entitlement.Source.SUBSCRIPTION,
    }[Offer.Pricing(offer.pricing)]
    entitlement = Entitlement.objects.create(
        user=user,
        offer=offer,
        status=status,
        source=source,
        started_at=started_at,
        access_until=access_until,
        ended_at=ended_at,
        is_test=is_test,
    )
    if not is_test:  # as memberships' services note a new entitlement
        member_joined(user_id=user.pk, at=started_at)
    return entitlement


def build_history() -> History:
    course = _offer("Course", pricing=Offer.Pricing.ONE_TIME, amount=5000)
    club = _offer("Club", pricing=Offer.Pricing.RECURRING, amount=1200, interval=Offer.Interval.MONTH)
    club_eu = _offer("Club EU", pricing=Offer.Pricing.RECURRING, amount=1000, currency="eur", interval="week")
    half = _offer("Half", pricing=Offer.Pricing.RECURRING, amount=51, interval=Offer.Interval.HALF_YEAR)
    free = _offer("Free", pricing=Offer.Pricing.FREE)
    names = ["ana", "ben", "cleo", "dan", "eve", "finn", "gus", "hal", "ivy", "jo", "tester"]
    users = {name: User.objects.create_user(f"{name}@example.com", full_name=name.title()) for name in names}
    u = users

    # Ana: a Club subscription from December, cancelled on March 2; the Course in January.
    entitle(u["ana"], club, at(12, 1, 12, 2025), status="canceled", ended_at=at(3, 2))
    subscribe(u["ana"], club, at(12, 1, 12, 2025), status="canceled", canceled_at=at(3, 2), ended_at=at(3, 2))
    entitle(u["ana"], course, at(1, 10))
    pay(u["ana"], course, at(1, 10), fee=500, stripe_fee=175)

    # Ben: Club at the old price, $10.00 (the checkout's snapshot), renewed in March.
    entitle(u["ben"], club, at(2, 3), access_until=at(4, 3))
    subscribe(u["ben"], club, at(2, 3), attempt=_attempt(club, u["ben"], amount=1000, interval="month"))
    pay(u["ben"], club, at(2, 3), amount=1000)
    pay(u["ben"], club, at(3, 3), amount=1000, renewal=True, stripe_fee=59)

    # Cleo: partly refunded; Dan: lost a dispute; Eve: an open dispute, in euros.
    entitle(u["cleo"], course, at(3, 5))
    pay(u["cleo"], course, at(3, 5), refunded=2000)
    entitle(u["dan"], course, at(3, 6), status="dispute_lost", ended_at=at(3, 10))
    pay(u["dan"], course, at(3, 6), dispute=Payment.DisputeStatus.LOST)
    entitle(u["eve"], club_eu, at(3, 7), access_until=at(3, 21))
    subscribe(u["eve"], club_eu, at(3, 7), attempt=_attempt(club_eu, u["eve"], amount=1000, interval="week"))
    pay(u["eve"], club_eu, at(3, 7), dispute=Payment.DisputeStatus.OPEN)

    # Finn: paid on Feb 28 at 22:00 New York time (March 1 in UTC); the event arrived on March 10,
    # which is when the entitlement started. No checkout recorded: the offer's price now, $12.00.
    entitle(u["finn"], club, at(3, 10), status="past_due", access_until=at(3, 20))
    subscribe(u["finn"], club, at(3, 1, 3), status="past_due")
    pay(u["finn"], club, at(3, 1, 3), amount=1000, created_at=at(3, 10))

    # Gus and Hal: 51 ¢ every 6 months each.
    for name in ("gus", "hal"):
        entitle(u[name], half, at(3, 9), access_until=at(9, 9))
        subscribe(u[name], half, at(3, 9), attempt=_attempt(half, u[name], amount=51, interval="half_year"))
        pay(u[name], half, at(3, 9))

    # Ivy claimed the free offer.
    entitle(u["ivy"], free, at(3, 12))

    # Jo bought in November, was refunded in full, and bought again on March 11.
    pay(u["jo"], course, at(11, 20, 15, 2025), refunded=5000)
    entitle(u["jo"], course, at(3, 11))
    pay(u["jo"], course, at(3, 11))

    # The creator's test purchases: the Course, and a Club subscription.
    entitle(u["tester"], course, at(3, 8), is_test=True)
    pay(u["tester"], course, at(3, 8), is_test=True)
    entitle(u["tester"], club, at(3, 8), is_test=True)
    subscribe(
        u["tester"], club, at(3, 8), attempt=_attempt(club, u["tester"], amount=1200, interval="month", is_test=True)
    )
    return History(course=course, club=club, club_eu=club_eu, half=half, free=free, users=users)
