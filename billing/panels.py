"""Billing's panels on lower layers' pages (``core.composition``), registered in ``BillingConfig.ready``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from billing import metrics, selectors
from core.charts import Chart, line_chart
from core.composition import Panel
from core.figures import figures_cached
from hubs.models import HubGroup
from memberships.models import Offer, format_money


def getting_started(*, request: HttpRequest) -> Panel:
    """The dashboard Overview's first step: paid offers need a connected Stripe account."""
    return Panel("billing/panels/getting_started.html", {"done": selectors.stripe_connected()})


def getting_started_test_purchase(*, request: HttpRequest) -> Panel:
    """The Overview's last step: a test purchase, done once one has been paid."""
    return Panel("billing/panels/getting_started_test_purchase.html", {"done": selectors.checkout_test_paid()})


def offer_test_purchase(*, request: HttpRequest, offer: Offer) -> Panel | None:
    """The offer editor's *Test purchase* button, on every paid offer, drafts included (a free
    offer takes no payment to test)."""
    if offer.is_free:
        return None
    return Panel("billing/panels/offer_test_purchase.html", {"offer": offer})


def user_memberships(*, request: HttpRequest, person: User) -> Panel | None:
    """A user's page's "Memberships": each one's status, payments and history, with the
    creator's Refund and Cancel buttons."""
    memberships = selectors.memberships_for(user=person)
    if not memberships:
        return None
    return Panel("billing/panels/user_memberships.html", {"memberships": memberships})


def member_home_memberships(*, request: HttpRequest) -> Panel:
    """The member home's link to *My memberships* (receipts, card, cancelling)."""
    return Panel("billing/panels/member_home_memberships.html")


def paywall_buy_now(request: HttpRequest, offer: Offer, group: HubGroup) -> str | None:
    """A popup upsell's *Buy now* for a member who paid here before (``memberships.hooks``):
    the one-click page, which asks Stripe for their saved card."""
    user = request.user
    if offer.is_free or not isinstance(user, User) or not selectors.card_on_file_likely(user=user):
        return None
    return reverse("billing:one_click", kwargs={"slug": offer.slug}) + "?" + urlencode({"group": group.slug})


# --- The Overview's figures ---------------------------------------------------------------------
@dataclass(frozen=True)
class FigureLine:
    """One figure's value (in one currency, for money) with its trend over the last months."""

    value_label: str
    chart: Chart
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    title: str
    lines: list[FigureLine]
    note: str = ""


TREND_MONTHS = 12


def _month_label(start: datetime) -> str:
    return f"{start:%b %Y}"


def _money_lines(values: dict[str, list[int]], labels: list[str], *, at: int = -1) -> list[FigureLine]:
    """One line per currency, the value at ``at`` (this month by default), its trend beside it."""
    lines = []
    for currency, points in values.items():
        money = [format_money(point, currency) for point in points]
        lines.append(
            FigureLine(value_label=money[at], chart=line_chart(points, labels, money), caption=currency.upper())
        )
    return lines


def _count_lines(points: list[int], labels: list[str]) -> list[FigureLine]:
    return [FigureLine(value_label=str(points[-1]), chart=line_chart(points, labels))]


def overview_figures(*, now: datetime | None = None) -> list[Figure]:
    """The Overview's figures, each with its trend over the last 12 months (docs/METRICS.md):
    a fixed number of queries."""
    now = now or timezone.now()
    bounds = metrics.buckets(bucket="month", count=TREND_MONTHS, now=now)
    labels = [_month_label(start) for start in bounds[:-1]]
    series = metrics.revenue_series(metrics.sales_days(), bounds=bounds, bucket="month")
    net = {one.currency: [point.net for point in one.points] for one in series}
    refunds = {one.currency: [point.refunds for point in one.points] for one in series}
    disputes = {one.currency: [point.disputes for point in one.points] for one in series}
    open_disputes = sum(one.total.open_disputes for one in series)
    # The past months' ends, then now.
    mrr_points = [*metrics.mrr_history(bounds[1:-1]), metrics.mrr()]
    currencies = sorted({currency for point in mrr_points for currency in point})
    mrr = {currency: [point.get(currency, 0) for point in mrr_points] for currency in currencies}
    members = [*metrics.active_members_history(bounds[1:-1]), metrics.active_members(now)]
    joined = metrics.new_members(bounds=bounds, bucket="month")
    cancelled = metrics.cancellations(bounds=bounds, bucket="month")
    none = "No sales yet"
    return [
        Figure("Revenue this month", _money_lines(net, labels), note="" if net else none),
        Figure("Revenue last month", _money_lines(net, labels, at=-2), note="" if net else none),
        Figure("MRR", _money_lines(mrr, labels), note="" if mrr else "No subscriptions yet"),
        Figure("Active members", _count_lines(members, labels)),
        Figure("New members this month", _count_lines(joined, labels)),
        Figure("Cancellations this month", _count_lines(cancelled, labels)),
        Figure("Refunds this month", _money_lines(refunds, labels), note="" if refunds else none),
        Figure(
            "Disputes lost this month",
            _money_lines(disputes, labels),
            note=f"{open_disputes} open" if open_disputes else ("" if disputes else none),
        ),
    ]


def overview_insights(*, request: HttpRequest) -> Panel:
    """The Overview's figures at a glance, with a link to Sales for the detail."""
    now = timezone.now()
    # Per local day: the months and the trend's points move at midnight.
    name = f"overview:{settings.TIME_ZONE}:{now.astimezone(metrics.zone()).date()}"
    html = figures_cached(
        name, lambda: render_to_string("billing/includes/overview_figures.html", {"figures": overview_figures(now=now)})
    )
    return Panel("billing/panels/overview_insights.html", {"figures_html": html})
