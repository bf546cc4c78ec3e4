"""The Sales page and its export, for the known history (tests/billing/metrics_history.py)."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from typing import Any

import pytest
import time_machine
from django.test import Client

from accounts.models import User
from billing.models import Payment
from billing.services import sales_days
from tests.billing.metrics_history import NOW, TIME_ZONE, History, at, build_history, entitle, pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(settings: Any) -> History:
    settings.TIME_ZONE = TIME_ZONE
    return build_history()


@pytest.fixture
def staff(client: Client, owner: User) -> Client:
    client.force_login(owner)
    return client


def get(client: Client, url: str, **query: str) -> Any:
    with time_machine.travel(NOW, tick=False):
        return client.get(url, query)


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def totals(html: str, currency: str) -> dict[str, str]:
    section = html.split(f'id="revenue-{currency}"', 1)[1].split("</section>", 1)[0]
    return {name: text(value) for name, value in re.findall(r'data-figure="(\w+)">(.*?)</td>', section)}


def chart_points(html: str, currency: str) -> list[tuple[str, int]]:
    svg = html.split(f'<svg class="chart" data-currency="{currency}"', 1)[1].split("</svg>", 1)[0]
    return [(label, int(value)) for label, value in re.findall(r'data-label="([^"]+)" data-value="(-?\d+)"', svg)]


def test_the_last_30_days_per_currency(history: History, staff: Client) -> None:
    page = get(staff, "/dashboard/sales/").content.decode()
    # Feb 14 to Mar 15 in New York: Finn's late event (Feb 28), Ben's renewal, Cleo, Dan, Gus, Hal, Jo.
    assert totals(page, "usd") == {
        "gross": "$171.02",
        "refunds": "$20.00",
        "disputes": "$50.00",
        "net": "$101.02",
        "commissions": "$0.00",
        "stripe_fees": "$0.59",
    }
    assert totals(page, "eur") == {
        "gross": "€10.00",
        "refunds": "€0.00",
        "disputes": "€0.00 (1 open)",
        "net": "€10.00",
        "commissions": "€0.00",
        "stripe_fees": "€0.00",
    }
    points = chart_points(page, "usd")
    assert len(points) == 30
    assert [point for point in points if point[1]] == [
        ("Feb 28", 1000),
        ("Mar 3", 1000),
        ("Mar 5", 3000),
        ("Mar 9", 102),
        ("Mar 11", 5000),
    ]
    assert ("Mar 6", 0) in points  # Dan's payment, lost to the dispute


def test_the_last_12_months(history: History, staff: Client) -> None:
    page = get(staff, "/dashboard/sales/", period="12m").content.decode()
    assert totals(page, "usd")["gross"] == "$281.02"
    assert totals(page, "usd")["net"] == "$161.02"
    assert totals(page, "usd")["commissions"] == "$5.00"
    assert totals(page, "usd")["stripe_fees"] == "$2.34"
    points = dict(chart_points(page, "usd"))
    assert len(points) == 12
    assert (points["Nov 2025"], points["Jan 2026"], points["Feb 2026"], points["Mar 2026"]) == (0, 5000, 2000, 9102)
    assert '<tr><td>Mar 2026</td><td class="number">$161.02</td>' in page


def test_per_offer_and_filtered_by_offer_and_status(history: History, staff: Client) -> None:
    page = get(staff, "/dashboard/sales/", period="12m").content.decode()
    offers = page.split('class="list totals by-offer"', 1)[1].split("</table>", 1)[0]
    rows = [text(row) for row in re.findall(r"<tr>(.*?)</tr>", offers, flags=re.S)[1:]]
    assert rows == [
        "Club 3 $30.00 $0.00 $0.00 $30.00",
        "Club EU 1 €10.00 €0.00 €0.00 €10.00",
        "Course 5 $250.00 $70.00 $50.00 $130.00",
        "Half 2 $1.02 $0.00 $0.00 $1.02",
    ]
    course = get(staff, "/dashboard/sales/", period="12m", offer=str(history.course.pk)).content.decode()
    assert totals(course, "usd")["net"] == "$130.00"
    assert 'id="revenue-eur"' not in course
    refunded = get(staff, "/dashboard/sales/", period="12m", status="refunded").content.decode()
    assert totals(refunded, "usd")["gross"] == "$100.00"
    assert totals(refunded, "usd")["refunds"] == "$70.00"


def test_test_purchases_are_kept_apart(history: History, staff: Client) -> None:
    page = get(staff, "/dashboard/sales/").content.decode()
    tests = page.split('class="list totals test-totals"', 1)[1].split("</table>", 1)[0]
    assert text(tests).endswith("USD 1 $50.00 $0.00")
    listed = page.split("<h2>Payments</h2>", 1)[1].split("<h2>Test purchases</h2>", 1)[0]
    assert "tester@example.com" not in listed
    assert listed.count("<tr>") == 1 + 8  # the header and the 30 days' eight sales


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"offer": "999999"}, "Choose an offer from the list. Showing all offers instead."),
        ({"offer": "abc"}, "Choose an offer from the list. Showing all offers instead."),
        ({"period": "forever"}, "Choose a period from the list. Showing the last 30 days instead."),
        ({"status": "lost"}, "Choose a status from the list. Showing all statuses instead."),
    ],
)
def test_a_bad_filter_says_so_and_shows_the_default(history: History, staff: Client, query: Any, message: str) -> None:
    response = get(staff, "/dashboard/sales/", **query)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in text(page)
    assert totals(page, "usd")["gross"] == "$171.02"


def test_the_export_has_every_payment_of_the_filters(history: History, staff: Client) -> None:
    response = get(staff, "/dashboard/sales/export.csv", period="12m", offer=str(history.course.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["Date", "Buyer email", "Buyer name", "Offer"]
    assert [(row[0], row[1], row[6], row[7], row[9], row[10]) for row in rows[1:]] == [
        ("2025-11-20T10:00:00-05:00", "jo@example.com", "50.00", "50.00", "0.00", "0.00"),
        ("2026-01-10T10:00:00-05:00", "ana@example.com", "50.00", "0.00", "0.00", "50.00"),
        ("2026-03-05T10:00:00-05:00", "cleo@example.com", "50.00", "20.00", "0.00", "30.00"),
        ("2026-03-06T10:00:00-05:00", "dan@example.com", "50.00", "0.00", "50.00", "0.00"),
        ("2026-03-11T11:00:00-04:00", "jo@example.com", "50.00", "0.00", "0.00", "50.00"),
    ]
    # Ana's row: the commission and Stripe's fee, apart from the net.
    assert rows[0][11:13] == ["Commission", "Stripe fee"]
    assert rows[2][11:13] == ["5.00", "1.75"]


def test_a_bad_export_filter_is_refused_in_words(history: History, staff: Client) -> None:
    response = get(staff, "/dashboard/sales/export.csv", period="forever")
    assert response.status_code == 400
    assert response.content.decode() == "The export was not made: Choose a period from the list."


def test_export_cells_that_a_spreadsheet_would_run_are_quoted(history: History, staff: Client) -> None:
    sly = User.objects.create_user("sly@example.com", full_name='=HYPERLINK("http://evil.example","x")')
    entitle(sly, history.course, at(3, 12))
    pay(sly, history.course, at(3, 12))
    response = get(staff, "/dashboard/sales/export.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[-1][2] == '\'=HYPERLINK("http://evil.example","x")'


def _buyers(count: int, history: History) -> None:
    users = User.objects.bulk_create(User(email=f"many{n}@example.com", full_name=f"Many {n}") for n in range(count))
    Payment.objects.bulk_create(
        Payment(
            stripe_object_id=f"pi_many_{user.pk}",
            kind=Payment.Kind.ONE_TIME,
            stripe_account_id="acct",
            amount=5000,
            currency="usd",
            user=user,
            offer=history.course,
            paid_at=at(3, 1 + user.pk % 14),
        )
        for user in users
    )
    sales_days.sales_days_rebuild()


@pytest.mark.parametrize("count", [10, 1000])
def test_the_sales_page_runs_a_fixed_number_of_queries(
    history: History, staff: Client, count: int, django_assert_num_queries: Any
) -> None:
    _buyers(count, history)
    # The first look: session and user; the offer asked for; series, offers, tests' totals, the
    # listed payments, whether test purchases are listed; the offer choices; the test purchases.
    with django_assert_num_queries(9):
        response = get(staff, "/dashboard/sales/", period="12m", offer=str(history.course.pk))
    assert response.status_code == 200
    # The next one reads the figures and the list from the cache (docs/METRICS.md): the user,
    # the offer asked for, the test purchases with their forms.
    with django_assert_num_queries(3):
        again = get(staff, "/dashboard/sales/", period="12m", offer=str(history.course.pk))

    def page(answer: Any) -> str:  # the page's own content, without the per-response nonces
        return answer.content.decode().split("<h1>Sales</h1>", 1)[1].split("</main>", 1)[0]

    assert page(again) == page(response)
