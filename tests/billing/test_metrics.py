"""The figures of docs/METRICS.md, checked against a known history worked out by hand
(tests/billing/metrics_history.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing import metrics
from billing.metrics import Revenue
from tests.billing.metrics_history import NOW, TIME_ZONE, History, build_history

pytestmark = pytest.mark.django_db
NEW_YORK = ZoneInfo(TIME_ZONE)


@pytest.fixture
def history(settings: Any) -> History:
    settings.TIME_ZONE = TIME_ZONE
    return build_history()


def month(year: int, number: int) -> datetime:
    return datetime(year, number, 1, tzinfo=NEW_YORK)


def figures(revenue: Revenue) -> tuple[int, int, int, int]:
    return (revenue.gross, revenue.refunds, revenue.disputes, revenue.net)


def monthly(**filters: Any) -> dict[str, metrics.Series]:
    bounds = metrics.buckets(bucket="month", count=12, now=NOW)
    series = metrics.revenue_series(metrics.sales_days(**filters), bounds=bounds, bucket="month")
    return {one.currency: one for one in series}


def test_months_start_at_midnight_in_the_deployments_time_zone(history: History) -> None:
    bounds = metrics.buckets(bucket="month", count=12, now=NOW)
    assert bounds[0] == month(2025, 4)
    assert bounds[-2] == month(2026, 3)
    assert bounds[-1] == month(2026, 4)
    assert len(bounds) == 13


def test_revenue_per_month_is_gross_less_refunds_and_lost_disputes_per_currency(history: History) -> None:
    series = monthly()
    assert list(series) == ["eur", "usd"]
    usd = series["usd"].points
    # Nov: Jo's $50.00, refunded in full. Jan: Ana's $50.00.
    assert figures(usd[7]) == (5000, 5000, 0, 0)
    assert figures(usd[8]) == (0, 0, 0, 0)
    assert figures(usd[9]) == (5000, 0, 0, 5000)
    # Feb: Ben's $10.00 and Finn's late event, paid at 22:00 on Feb 28 in New York.
    assert figures(usd[10]) == (2000, 0, 0, 2000)
    # Mar: Ben's renewal 1000, Cleo 5000 (2000 refunded), Dan 5000 (lost), Gus and Hal 51 each,
    # Jo again 5000; the test purchase's 5000 is not a sale.
    assert figures(usd[11]) == (16102, 2000, 5000, 9102)
    eur = series["eur"].points
    assert figures(eur[11]) == (1000, 0, 0, 1000)
    assert eur[11].open_disputes == 1
    assert [point.gross for point in eur[:11]] == [0] * 11


def test_the_total_of_the_months_and_the_commissions(history: History) -> None:
    usd = monthly()["usd"].total
    assert figures(usd) == (28102, 7000, 5000, 16102)
    assert usd.commissions == 500
    assert usd.stripe_fees == 234  # shown apart, like commissions: net is before both
    assert usd.payments == 10


def test_a_late_event_counts_in_the_month_stripe_charged_in_not_when_it_was_recorded(history: History) -> None:
    feb = metrics.sales_payments(start=month(2026, 2), end=month(2026, 3))
    assert sorted(payment.user.email for payment in feb) == ["ben@example.com", "finn@example.com"]


def test_test_purchases_are_counted_apart(history: History) -> None:
    tests = metrics.revenue_totals(metrics.sales_days(is_test=True))
    assert [(revenue.currency, figures(revenue)) for revenue in tests] == [("usd", (5000, 0, 0, 5000))]


def test_filters_by_offer_and_status(history: History) -> None:
    march = {"start": month(2026, 3), "end": month(2026, 4)}
    course = metrics.revenue_totals(metrics.sales_days(offer_id=history.course.pk, **march))
    assert [figures(revenue) for revenue in course] == [(15000, 2000, 5000, 8000)]
    refunded = metrics.revenue_totals(metrics.sales_days(status=metrics.Status.REFUNDED))
    assert [figures(revenue) for revenue in refunded] == [(10000, 7000, 0, 3000)]
    disputed = metrics.revenue_totals(metrics.sales_days(status=metrics.Status.DISPUTED))
    assert [(revenue.currency, revenue.gross) for revenue in disputed] == [("eur", 1000), ("usd", 5000)]
    paid = metrics.revenue_totals(metrics.sales_days(status=metrics.Status.PAID, **march))
    assert [(revenue.currency, revenue.gross) for revenue in paid] == [("usd", 6102)]


def test_revenue_by_offer(history: History) -> None:
    rows = metrics.revenue_by_offer(metrics.sales_days())
    found = {(row.title, revenue.currency): figures(revenue) for row in rows for revenue in row.revenue}
    assert found == {
        ("Club", "usd"): (3000, 0, 0, 3000),
        ("Club EU", "eur"): (1000, 0, 0, 1000),
        ("Course", "usd"): (25000, 7000, 5000, 13000),
        ("Half", "usd"): (102, 0, 0, 102),
    }


def test_days_follow_the_time_zone(history: History) -> None:
    bounds = metrics.buckets(bucket="day", count=30, now=NOW)
    assert bounds[0] == datetime(2026, 2, 14, tzinfo=NEW_YORK)
    assert bounds[-1] == datetime(2026, 3, 16, tzinfo=NEW_YORK)
    usd = {one.currency: one for one in metrics.revenue_series(metrics.sales_days(), bounds=bounds, bucket="day")}[
        "usd"
    ]
    by_day = {
        start.date().isoformat(): point.gross
        for start, point in zip(usd.starts, usd.points, strict=True)
        if point.gross
    }
    assert by_day == {
        "2026-02-28": 1000,
        "2026-03-03": 1000,
        "2026-03-05": 5000,
        "2026-03-06": 5000,
        "2026-03-09": 102,
        "2026-03-11": 5000,
    }


def test_monthly_amounts_round_half_to_even() -> None:
    assert metrics.monthly_amount(1000, "week") == 4333
    assert metrics.monthly_amount(1000, "month") == 1000
    assert metrics.monthly_amount(1000, "quarter") == 333
    assert metrics.monthly_amount(1001, "half_year") == 167
    assert metrics.monthly_amount(51, "half_year") == 8
    assert metrics.monthly_amount(57, "half_year") == 10
    assert metrics.monthly_amount(12000, "year") == 1000
    assert metrics.monthly_amount(54, "year") == 4


def test_mrr_counts_active_and_past_due_subscriptions_rounded_before_summing(history: History) -> None:
    # Ben 1000 (the price he was sold), Finn 1200 (past due, no checkout: the offer's price),
    # Gus and Hal 8 each (8.5 rounded to even: 17 if summed first). Eve: 1000 a week.
    assert metrics.mrr() == {"eur": 4333, "usd": 2216}


def test_mrr_history_counts_subscriptions_started_and_not_ended(history: History) -> None:
    ends = [month(2025, 12), month(2026, 1), month(2026, 2), month(2026, 3)]
    # Ana's from Dec 1 to Mar 2 at the offer's $12.00; by Feb's end Ben and Finn too.
    assert metrics.mrr_history(ends) == [{}, {"usd": 1200}, {"usd": 1200}, {"usd": 3400}]


def test_members(history: History) -> None:
    # Ana, Ben, Cleo, Eve, Finn (past due, in grace), Gus, Hal, Ivy (free), Jo: not Dan, not tests.
    assert metrics.active_members(NOW) == 9
    ends = [month(2025, 12), month(2026, 1), month(2026, 2), month(2026, 3)]
    assert metrics.active_members_history(ends) == [0, 1, 1, 2]


def test_a_new_member_is_one_whose_first_entitlement_started_in_the_period(history: History) -> None:
    bounds = metrics.buckets(bucket="month", count=12, now=NOW)
    joined = metrics.new_members(bounds=bounds, bucket="month")
    # Nov: Jo (whose entitlement restarted in March). Dec: Ana. Feb: Ben, and Finn by his payment.
    # Mar: Cleo, Dan, Eve, Gus, Hal, Ivy.
    assert joined[7:] == [1, 1, 0, 2, 6]
    assert sum(joined) == 10


def test_cancellations(history: History) -> None:
    bounds = metrics.buckets(bucket="month", count=12, now=NOW)
    assert metrics.cancellations(bounds=bounds, bucket="month")[-3:] == [0, 0, 1]


def test_the_overview_figures_take_a_fixed_number_of_queries(history: History, django_assert_num_queries: Any) -> None:
    from billing.panels import overview_figures

    with django_assert_num_queries(7):
        overview_figures(now=NOW)
