"""The creator's figures: revenue, MRR, members, cancellations, refunds and disputes.

The definitions are docs/METRICS.md's; this module follows them. Every figure is aggregated in
SQL, a fixed number of queries whatever the history's size, in integer minor units per currency
(a ``dict`` keyed by currency, never one total across currencies). Periods are calendar days and
months in the deployment's ``TIME_ZONE``, and a payment counts on Stripe's time (``paid_at``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, DateField, F, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, NullIf, Trunc
from django.utils import timezone

from billing.models import Payment, SalesDay, StripeSubscription
from memberships.models import Entitlement, MemberJoin, Offer, format_money

Bucket = Literal["day", "month"]

# A subscription's price normalised to one month: weekly x 52 / 12, quarterly / 3, half-yearly / 6,
# yearly / 12. Exact fractions, rounded half to even once per subscription (``monthly_amount``).
MONTHLY_FACTORS: dict[str, Fraction] = {
    Offer.Interval.WEEK: Fraction(52, 12),
    Offer.Interval.MONTH: Fraction(1),
    Offer.Interval.QUARTER: Fraction(1, 3),
    Offer.Interval.HALF_YEAR: Fraction(1, 6),
    Offer.Interval.YEAR: Fraction(1, 12),
}
# The subscriptions MRR counts: Stripe still charges them and the buyer has access.
MRR_STATUSES = ("active", "past_due")


class Status:
    """The Sales filter's payment statuses."""

    ALL = "all"
    PAID = "paid"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    CHOICES = [(ALL, "All"), (PAID, "Paid"), (REFUNDED, "Refunded"), (DISPUTED, "Disputed")]


def zone() -> ZoneInfo:
    """The deployment's time zone: periods follow it, whoever is looking."""
    return ZoneInfo(settings.TIME_ZONE)


# --- Periods --------------------------------------------------------------------------------------
def day_start(moment: datetime) -> datetime:
    local = moment.astimezone(zone())
    return datetime(local.year, local.month, local.day, tzinfo=zone())


def month_start(moment: datetime, *, shift: int = 0) -> datetime:
    """The start of ``moment``'s month, ``shift`` months later (earlier when negative)."""
    local = moment.astimezone(zone())
    index = local.year * 12 + local.month - 1 + shift
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=zone())


def buckets(*, bucket: Bucket, count: int, now: datetime | None = None) -> list[datetime]:
    """The starts of the last ``count`` days or months, the current one last, then the end of
    the current one: ``count + 1`` bounds."""
    now = now or timezone.now()
    if bucket == "month":
        return [month_start(now, shift=shift) for shift in range(1 - count, 2)]
    today = day_start(now).date()
    return [
        datetime.combine(today + timedelta(days=shift), datetime.min.time(), zone()) for shift in range(1 - count, 2)
    ]


# --- Revenue --------------------------------------------------------------------------------------
@dataclass
class Revenue:
    """What a set of payments in one currency brought: gross, refunded, lost to disputes, and
    the net of those three, plus the application fees (commissions) Stripe took, shown apart."""

    currency: str
    gross: int = 0
    refunds: int = 0
    disputes: int = 0
    commissions: int = 0
    stripe_fees: int = 0
    payments: int = 0
    open_disputes: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.refunds - self.disputes

    def add(self, other: Revenue) -> None:
        self.gross += other.gross
        self.refunds += other.refunds
        self.disputes += other.disputes
        self.commissions += other.commissions
        self.stripe_fees += other.stripe_fees
        self.payments += other.payments
        self.open_disputes += other.open_disputes

    @property
    def gross_label(self) -> str:
        return format_money(self.gross, self.currency)

    @property
    def refunds_label(self) -> str:
        return format_money(self.refunds, self.currency)

    @property
    def disputes_label(self) -> str:
        return format_money(self.disputes, self.currency)

    @property
    def net_label(self) -> str:
        return format_money(self.net, self.currency)

    @property
    def commissions_label(self) -> str:
        return format_money(self.commissions, self.currency)

    @property
    def stripe_fees_label(self) -> str:
        return format_money(self.stripe_fees, self.currency)


# Over the rollup (``SalesDay``): a row per day, offer, currency and payment state.
_REVENUE = {
    "gross": Sum("amount"),
    "refunds": Sum("amount_refunded"),
    # A lost dispute takes what the refunds had left of the payment.
    "disputes": Sum(F("amount") - F("amount_refunded"), filter=Q(dispute_status=Payment.DisputeStatus.LOST)),
    "commissions": Sum("application_fee_amount"),
    "stripe_fees": Sum("stripe_fee_amount"),
    "payments": Sum("payments"),
    "open_disputes": Sum("payments", filter=Q(dispute_status=Payment.DisputeStatus.OPEN)),
}


# Annotated under names of their own: the rollup's columns have the plain ones.
_ANNOTATIONS = {f"total_{name}": aggregate for name, aggregate in _REVENUE.items()}


def _revenue(currency: str, row: Mapping[str, Any]) -> Revenue:
    return Revenue(currency=currency, **{name: row[f"total_{name}"] or 0 for name in _REVENUE})


def _by_status(queryset: QuerySet[Any], status: str, *, refunded: Q) -> QuerySet[Any]:
    """``queryset`` in one of the Sales filter's statuses; ``refunded`` says "refunded at all"
    in its model's terms."""
    if status == Status.PAID:
        return queryset.filter(~refunded, dispute_status=Payment.DisputeStatus.NONE)
    if status == Status.REFUNDED:
        return queryset.filter(refunded)
    if status == Status.DISPUTED:
        return queryset.exclude(dispute_status=Payment.DisputeStatus.NONE)
    return queryset


def sales_payments(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    offer_id: int | None = None,
    status: str = Status.ALL,
    is_test: bool = False,
) -> QuerySet[Payment]:
    """The payments the figures count: paid (by Stripe's time) in ``[start, end)``, of one offer
    or all, in one status; sales unless ``is_test`` (test purchases are never sales). The
    figures read their totals from ``sales_days``; the list and the export read these."""
    payments = Payment.objects.filter(is_test=is_test)
    if start is not None:
        payments = payments.filter(paid_at__gte=start)
    if end is not None:
        payments = payments.filter(paid_at__lt=end)
    if offer_id is not None:
        payments = payments.filter(offer_id=offer_id)
    return _by_status(payments, status, refunded=Q(amount_refunded__gt=0))


def sales_days(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    offer_id: int | None = None,
    status: str = Status.ALL,
    is_test: bool = False,
) -> QuerySet[SalesDay]:
    """The rollup's rows of the same payments as ``sales_payments`` with the same arguments:
    ``start`` and ``end`` are local midnights (the periods' bounds), so whole days."""
    days = SalesDay.objects.filter(is_test=is_test)
    if start is not None:
        days = days.filter(day__gte=start.astimezone(zone()).date())
    if end is not None:
        days = days.filter(day__lt=end.astimezone(zone()).date())
    if offer_id is not None:
        days = days.filter(offer_id=offer_id)
    return _by_status(days, status, refunded=Q(refunded=True))


@dataclass
class Series:
    """One currency's figures per period: ``points[i]`` covers ``[starts[i], starts[i + 1])``."""

    currency: str
    starts: list[datetime]
    points: list[Revenue]
    total: Revenue


def revenue_series(days: QuerySet[SalesDay], *, bounds: list[datetime], bucket: Bucket) -> list[Series]:
    """Per currency (in alphabetical order), the rollup ``days`` in each period of ``bounds``
    (local midnights): one query."""
    first, last = (bound.astimezone(zone()).date() for bound in (bounds[0], bounds[-1]))
    rows = (
        days.filter(day__gte=first, day__lt=last)
        .annotate(period=Trunc("day", bucket, output_field=DateField()))
        .values("currency", "period")
        .annotate(**_ANNOTATIONS)
        .order_by()
    )
    starts = bounds[:-1]
    index = {start.astimezone(zone()).date(): position for position, start in enumerate(starts)}
    found: dict[str, list[Revenue]] = {}
    for row in rows:
        currency = row["currency"]
        points = found.setdefault(currency, [Revenue(currency=currency) for _ in starts])
        position = index.get(row["period"])
        if position is not None:
            points[position] = _revenue(currency, row)
    series = []
    for currency in sorted(found):
        total = Revenue(currency=currency)
        for point in found[currency]:
            total.add(point)
        series.append(Series(currency=currency, starts=starts, points=found[currency], total=total))
    return series


def revenue_totals(days: QuerySet[SalesDay]) -> list[Revenue]:
    """Per currency (alphabetical), all of the rollup ``days``: one query."""
    rows = days.values("currency").annotate(**_ANNOTATIONS).order_by("currency")
    return [_revenue(row["currency"], row) for row in rows]


@dataclass
class OfferRevenue:
    offer_id: int
    title: str
    revenue: list[Revenue] = field(default_factory=list)


def revenue_by_offer(days: QuerySet[SalesDay]) -> list[OfferRevenue]:
    """Per offer (by title), per currency, from the rollup ``days``: one query."""
    rows = (
        days.values("offer_id", "offer__title", "currency")
        .annotate(**_ANNOTATIONS)
        .order_by("offer__title", "offer_id", "currency")
    )
    offers: dict[int, OfferRevenue] = {}
    for row in rows:
        entry = offers.setdefault(row["offer_id"], OfferRevenue(offer_id=row["offer_id"], title=row["offer__title"]))
        entry.revenue.append(_revenue(row["currency"], row))
    return list(offers.values())


# --- MRR ------------------------------------------------------------------------------------------
def monthly_amount(amount: int, interval: str) -> int:
    """One subscription's price per month in minor units, rounded half to even.

    >>> monthly_amount(1000, "week"), monthly_amount(1000, "quarter"), monthly_amount(1001, "half_year")
    (4333, 333, 167)
    """
    return round(amount * MONTHLY_FACTORS[interval])


def _subscription_prices() -> QuerySet[Any]:
    """Subscriptions (test purchases aside) with the price they were sold at: the checkout's
    snapshot, which Stripe keeps charging, or the offer's when no attempt is recorded."""
    return (
        StripeSubscription.objects.exclude(attempt__is_test=True)
        .annotate(
            price=Coalesce("attempt__amount", "offer__price_amount", output_field=IntegerField()),
            price_currency=Coalesce("attempt__currency", "offer__currency"),
            price_interval=Coalesce(NullIf("attempt__interval", Value("")), NullIf("offer__interval", Value(""))),
        )
        .filter(price_interval__isnull=False)
    )


def _sum_mrr(rows: Iterable[dict[str, Any]], count: str) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        if row[count]:
            totals[row["price_currency"]] += row[count] * monthly_amount(row["price"], row["price_interval"])
    return dict(sorted(totals.items()))


def mrr() -> dict[str, int]:
    """Monthly recurring revenue per currency: active and past-due subscriptions, each normalised
    to a month and rounded before summing. Grouped by price in SQL (one query), so the rounding
    runs once per distinct price, not per subscription."""
    rows = (
        _subscription_prices()
        .filter(status__in=MRR_STATUSES)
        .values("price_currency", "price", "price_interval")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return _sum_mrr(rows, "n")


def mrr_history(ends: list[datetime]) -> list[dict[str, int]]:
    """MRR per currency at each of ``ends``, from the subscriptions that had started and not yet
    ended then (Stripe's ``created`` and ``ended_at``): one query. The copy keeps no past
    statuses, so a past point cannot tell a past-due month from a paid one."""
    counts = {
        f"at{position}": Count("pk", filter=Q(created__lt=end) & (Q(ended_at__isnull=True) | Q(ended_at__gte=end)))
        for position, end in enumerate(ends)
    }
    rows = list(
        _subscription_prices().values("price_currency", "price", "price_interval").annotate(**counts).order_by()
    )
    return [_sum_mrr(rows, f"at{position}") for position in range(len(ends))]


# --- Members --------------------------------------------------------------------------------------
def active_members(now: datetime | None = None) -> int:
    """Users holding at least one entitlement that gives access now, test purchases aside."""
    return Entitlement.objects.buyers(now).values("user_id").distinct().count()


def active_members_history(ends: list[datetime]) -> list[int]:
    """Users whose entitlement had started and not ended at each of ``ends``: one query."""
    counts = {
        f"at{position}": Count(
            "user_id",
            distinct=True,
            filter=Q(started_at__lt=end) & (Q(ended_at__isnull=True) | Q(ended_at__gte=end)),
        )
        for position, end in enumerate(ends)
    }
    row = Entitlement.objects.filter(is_test=False).aggregate(**counts)
    return [row[f"at{position}"] or 0 for position in range(len(ends))]


def _counts_per_period(queryset: QuerySet[Any], column: str, *, bounds: list[datetime], bucket: Bucket) -> list[int]:
    """How many rows of ``queryset`` have ``column`` in each period of ``bounds``: one query."""
    rows = (
        queryset.filter(**{f"{column}__gte": bounds[0], f"{column}__lt": bounds[-1]})
        .annotate(period=Trunc(column, bucket, tzinfo=zone()))
        .values("period")
        .annotate(n=Count("pk"))
        .order_by()
    )
    index = {start: position for position, start in enumerate(bounds[:-1])}
    counts = [0] * (len(bounds) - 1)
    for row in rows:
        if (position := index.get(row["period"])) is not None:
            counts[position] = row["n"]
    return counts


def new_members(*, bounds: list[datetime], bucket: Bucket) -> list[int]:
    """Users whose first entitlement started (or whose first payment was made, when earlier) in
    each period of ``bounds`` (``MemberJoin``): one query."""
    return _counts_per_period(MemberJoin.objects.all(), "joined_at", bounds=bounds, bucket=bucket)


def cancellations(*, bounds: list[datetime], bucket: Bucket) -> list[int]:
    """Subscriptions cancelled in each period (Stripe's ``canceled_at``: when the cancellation
    was asked for, at once or at the period's end), test purchases aside: one query."""
    queryset = StripeSubscription.objects.exclude(attempt__is_test=True)
    return _counts_per_period(queryset, "canceled_at", bounds=bounds, bucket=bucket)


# --- The Sales page -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SalesFilters:
    offer: Offer | None = None
    monthly: bool = False
    status: str = Status.ALL

    @property
    def bucket(self) -> Bucket:
        return "month" if self.monthly else "day"

    @property
    def count(self) -> int:
        return 12 if self.monthly else 30

    @property
    def query(self) -> str:
        """The filters as a query string (the export link's)."""
        return urlencode(
            {
                "offer": self.offer.pk if self.offer else "",
                "period": "12m" if self.monthly else "30d",
                "status": self.status,
            }
        )

    def bounds(self, *, now: datetime) -> list[datetime]:
        return buckets(bucket=self.bucket, count=self.count, now=now)

    def _selected(self, bounds: list[datetime], is_test: bool) -> dict[str, Any]:
        return {
            "start": bounds[0],
            "end": bounds[-1],
            "offer_id": self.offer.pk if self.offer else None,
            "status": self.status,
            "is_test": is_test,
        }

    def payments(self, *, now: datetime, is_test: bool = False) -> QuerySet[Payment]:
        return sales_payments(**self._selected(self.bounds(now=now), is_test))

    def days(self, *, now: datetime, is_test: bool = False) -> QuerySet[SalesDay]:
        return sales_days(**self._selected(self.bounds(now=now), is_test))


@dataclass
class SalesReport:
    filters: SalesFilters
    starts: list[datetime]
    labels: list[str]
    series: list[Series]
    by_offer: list[OfferRevenue]
    tests: list[Revenue]


def period_label(start: datetime, bucket: Bucket) -> str:
    local = start.astimezone(zone())
    return f"{local:%b %Y}" if bucket == "month" else f"{local:%b} {local.day}"


def sales_report(*, filters: SalesFilters, now: datetime) -> SalesReport:
    """The Sales page's figures for ``filters``, from the rollup: three queries."""
    bounds = filters.bounds(now=now)
    days = filters.days(now=now)
    return SalesReport(
        filters=filters,
        starts=bounds[:-1],
        labels=[period_label(start, filters.bucket) for start in bounds[:-1]],
        series=revenue_series(days, bounds=bounds, bucket=filters.bucket),
        by_offer=revenue_by_offer(days),
        tests=revenue_totals(filters.days(now=now, is_test=True)),
    )


SALES_CSV_HEADER = (
    "Date",
    "Buyer email",
    "Buyer name",
    "Offer",
    "Kind",
    "Currency",
    "Amount",
    "Refunded",
    "Dispute",
    "Lost to dispute",
    "Net",
    "Commission",
    "Stripe fee",
    "Stripe id",
)


def major(amount: int) -> str:
    """``1250`` -> ``"12.50"``: exact, from integers."""
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    return f"{sign}{amount // 100}.{amount % 100:02d}"


EXPORT_CHUNK = 2000


def sales_csv_rows(*, filters: SalesFilters, now: datetime) -> Iterator[list[str]]:
    """The Sales export's rows for ``filters``, read in chunks (``iterator``): one query per
    chunk on SQLite, one server-side cursor on PostgreSQL, and constant memory."""
    rows = (
        filters.payments(now=now)
        .order_by("paid_at", "pk")
        .values_list(
            "paid_at",
            "user__email",
            "user__full_name",
            "offer__title",
            "kind",
            "currency",
            "amount",
            "amount_refunded",
            "dispute_status",
            "application_fee_amount",
            "stripe_fee_amount",
            "stripe_object_id",
        )
    )
    kinds = dict(Payment.Kind.choices)
    disputes = dict(Payment.DisputeStatus.choices)
    for (
        paid_at,
        email,
        name,
        title,
        kind,
        currency,
        amount,
        refunded,
        dispute,
        fee,
        stripe_fee,
        object_id,
    ) in rows.iterator(chunk_size=EXPORT_CHUNK):
        lost = amount - refunded if dispute == Payment.DisputeStatus.LOST else 0
        yield [
            paid_at.astimezone(zone()).isoformat(timespec="seconds") if paid_at else "",
            email,
            name,
            title,
            kinds.get(kind, kind),
            currency.upper(),
            major(amount),
            major(refunded),
            disputes.get(dispute, dispute) if dispute else "",
            major(lost),
            major(amount - refunded - lost),
            major(fee),
            major(stripe_fee),
            object_id,
        ]
