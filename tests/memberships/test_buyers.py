"""The Users screen's buyers and their memberships, and its streamed export."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from typing import Any

import pytest
import time_machine
from django.http import StreamingHttpResponse
from django.test import Client

from accounts.models import User
from core.csv_export import safe_cell
from memberships.models import Entitlement
from tests.billing.metrics_history import NOW, TIME_ZONE, History, at, build_history, entitle

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


def rows(html: str) -> list[str]:
    table = html.split('<table class="list buyers">', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in cells]


def test_the_users_screen_links_to_the_buyers(staff: Client) -> None:
    page = staff.get("/dashboard/users/").content.decode()
    assert '<a href="/dashboard/users/buyers/">Buyers and their memberships</a>' in page


def test_buyers_are_listed_with_their_memberships_tests_aside(history: History, staff: Client) -> None:
    listed = rows(get(staff, "/dashboard/users/buyers/").content.decode())
    assert len(listed) == 11  # every entitlement but the tester's two
    assert listed[0] == "Ivy ivy@example.com Free Active Mar 12, 2026 —"
    assert "Dan dan@example.com Course Ended: dispute lost Mar 6, 2026 —" in listed
    assert not [row for row in listed if "tester" in row]


def test_filters_by_offer_and_by_status_as_shown(history: History, staff: Client) -> None:
    club = rows(get(staff, "/dashboard/users/buyers/", offer=str(history.club.pk)).content.decode())
    assert [row.split()[0] for row in club] == ["Finn", "Ben", "Ana"]
    past_due = rows(get(staff, "/dashboard/users/buyers/", status="past_due").content.decode())
    assert past_due == ["Finn finn@example.com Club Past due (grace period) Mar 10, 2026 Mar 20, 2026"]
    # An active entitlement whose paid period ran out shows (and filters) as ended.
    entitle(User.objects.create_user("old@example.com", full_name="Old"), history.half, at(1, 2), access_until=at(3, 1))
    ended = rows(get(staff, "/dashboard/users/buyers/", status="expired").content.decode())
    assert ended == ["Old old@example.com Half Ended Jan 2, 2026 Mar 1, 2026"]
    assert not [
        row for row in rows(get(staff, "/dashboard/users/buyers/", status="active").content.decode()) if "Old" in row
    ]


def test_a_bad_filter_says_so_and_is_left_off(history: History, staff: Client) -> None:
    response = get(staff, "/dashboard/users/buyers/", offer="12345678901234567890", status="gone")
    assert response.status_code == 400
    page = " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())
    assert "Choose an offer from the list. Showing all offers instead." in page
    assert "Choose a status from the list. Showing any status instead." in page
    assert len(rows(response.content.decode())) == 11


def test_the_export_streams_every_buyer_of_the_filters(history: History, staff: Client) -> None:
    response = get(staff, "/dashboard/users/buyers/export.csv", offer=str(history.club.pk))
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"].startswith('attachment; filename="buyers-')
    with time_machine.travel(NOW, tick=False):
        body = b"".join(response.streaming_content).decode()
    assert list(csv.reader(io.StringIO(body))) == [
        ["Name", "Email", "Offer", "Status", "Source", "Started", "Access until", "Renews"],
        ["Ana", "ana@example.com", "Club", "Canceled", "Subscription", "2025-12-01T07:00:00-05:00", "", ""],
        [
            "Ben",
            "ben@example.com",
            "Club",
            "Active",
            "Subscription",
            "2026-02-03T10:00:00-05:00",
            "2026-04-03T11:00:00-04:00",
            "",
        ],
        [
            "Finn",
            "finn@example.com",
            "Club",
            "Past due (grace period)",
            "Subscription",
            "2026-03-10T11:00:00-04:00",
            "2026-03-20T11:00:00-04:00",
            "",
        ],
    ]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_cells_a_spreadsheet_would_run_as_a_formula_are_quoted(start: str) -> None:
    assert safe_cell(f"{start}SUM(A1:A9)") == f"'{start}SUM(A1:A9)"
    assert safe_cell(f"Bea {start}") == f"Bea {start}"


def test_the_export_quotes_a_buyers_formula_name(history: History, staff: Client) -> None:
    sly = User.objects.create_user("sly@example.com", full_name="@SUM(1+1)*cmd|' /C calc'!A0")
    entitle(sly, history.free, at(3, 13))
    response = get(staff, "/dashboard/users/buyers/export.csv", offer=str(history.free.pk))
    body = b"".join(response.streaming_content).decode()
    assert list(csv.reader(io.StringIO(body)))[-1][0] == "'@SUM(1+1)*cmd|' /C calc'!A0"


def _many(count: int, history: History) -> None:
    users = User.objects.bulk_create(User(email=f"many{n}@example.com", full_name=f"Many {n}") for n in range(count))
    Entitlement.objects.bulk_create(
        Entitlement(user=user, offer=history.course, source=Entitlement.Source.PURCHASE, started_at=at(3, 1))
        for user in users
    )


@pytest.mark.parametrize("count", [10, 1000])
def test_the_buyers_page_runs_a_fixed_number_of_queries(
    history: History, staff: Client, count: int, django_assert_num_queries: Any
) -> None:
    _many(count, history)
    # The session, the user, the filter's offer, the count and the page: the same for any count.
    with django_assert_num_queries(5):
        response = get(staff, "/dashboard/users/buyers/", offer=str(history.course.pk), status="active")
    assert response.status_code == 200


@pytest.mark.parametrize("count", [10, 1000])
def test_the_export_runs_a_query_per_chunk(
    history: History, staff: Client, count: int, django_assert_max_num_queries: Any
) -> None:
    _many(count, history)
    response = get(staff, "/dashboard/users/buyers/export.csv")
    with django_assert_max_num_queries(1):
        lines = sum(1 for _ in response.streaming_content)
    assert lines == 1 + 11 + count
