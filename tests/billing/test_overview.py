"""The Overview's figures, as the creator reads them, for the known history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from core import figures as figures_module
from memberships.models import Entitlement
from tests.billing.metrics_history import NOW, TIME_ZONE, History, build_history, pay

pytestmark = pytest.mark.django_db


def cards(html: str) -> dict[str, str]:
    """Each figure's title and its card's text (the trend tables left out)."""
    found = {}
    section = html.split('<section class="insights"', 1)[1].split("</section>", 1)[0]
    for chunk in section.split('<div class="card figure">')[1:]:
        chunk = re.sub(r"<details.*?</details>|<svg.*?</svg>", " ", chunk, flags=re.S)
        text = " ".join(unescape(re.sub(r"<[^>]+>", " ", chunk)).split())
        match = re.match(r"<h3[^>]*>(.*?)</h3>", chunk.strip())
        assert match is not None
        title = match.group(1)
        found[title] = text[len(title) :].strip()
    return found


@pytest.fixture
def overview(client: Client, owner: User, settings: Any) -> str:
    settings.TIME_ZONE = TIME_ZONE
    build_history()
    client.force_login(owner)
    with time_machine.travel(NOW, tick=False):
        response = client.get("/dashboard/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_overview_shows_each_figure_per_currency(overview: str) -> None:
    figures = cards(overview)
    assert figures["Revenue this month"] == "€10.00 EUR $91.02 USD"
    assert figures["Revenue last month"] == "€0.00 EUR $20.00 USD"
    assert figures["MRR"] == "€43.33 EUR $22.16 USD"
    assert figures["Active members"] == "9"
    assert figures["New members this month"] == "6"
    assert figures["Cancellations this month"] == "1"
    assert figures["Refunds this month"] == "€0.00 EUR $20.00 USD"
    assert figures["Disputes lost this month"] == "€0.00 EUR $50.00 USD 1 open"


def test_each_trend_line_has_twelve_months_with_their_values(overview: str) -> None:
    usd_revenue = overview.split('<div class="card figure">')[1].split('<div class="figure-line">')[2]
    points = re.findall(r'<circle [^>]*data-label="([^"]+)" data-value="(-?\d+)"><title>([^<]+)</title>', usd_revenue)
    assert len(points) == 12
    assert points[0] == ("Apr 2025", "0", "Apr 2025: $0.00")
    assert points[-5:] == [
        ("Nov 2025", "0", "Nov 2025: $0.00"),
        ("Dec 2025", "0", "Dec 2025: $0.00"),
        ("Jan 2026", "5000", "Jan 2026: $50.00"),
        ("Feb 2026", "2000", "Feb 2026: $20.00"),
        ("Mar 2026", "9102", "Mar 2026: $91.02"),
    ]
    # The same figures in text, for anyone without the picture.
    assert "<tr><td>Mar 2026</td><td>$91.02</td></tr>" in usd_revenue


def test_getting_started_stays_below_the_figures(overview: str) -> None:
    assert overview.index("At a glance") < overview.index("Getting started")


def test_without_sales_the_overview_says_so(client: Client, owner: User) -> None:
    client.force_login(owner)
    figures = cards(client.get("/dashboard/").content.decode())
    assert figures["Revenue this month"] == "— No sales yet"
    assert figures["MRR"] == "— No subscriptions yet"
    assert figures["Active members"] == "0"


# --- Freshness (docs/METRICS.md): cached, forgotten by every write that changes a figure ------------
def _look(client: Client) -> tuple[dict[str, str], list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/dashboard/")
    assert response.status_code == 200
    return cards(response.content.decode()), [query["sql"] for query in queries.captured_queries]


@dataclass
class Looking:
    history: History
    client: Client
    clock: time_machine.Traveller


@pytest.fixture
def looking(client: Client, owner: User, settings: Any) -> Iterator[Looking]:
    settings.TIME_ZONE = TIME_ZONE
    history = build_history()
    client.force_login(owner)
    with time_machine.travel(NOW, tick=False) as clock:
        yield Looking(history, client, clock)


def test_a_second_look_reads_the_cached_figures(looking: Looking) -> None:
    client = looking.client
    first, computed = _look(client)
    again, read = _look(client)
    assert again == first
    assert any("billing_salesday" in sql for sql in computed)
    assert not any("billing_salesday" in sql or "memberships_entitlement" in sql for sql in read)


def test_a_sale_recorded_through_the_platform_shows_on_the_next_look(
    looking: Looking, django_capture_on_commit_callbacks: Any
) -> None:
    history, client = looking.history, looking.client
    assert _look(client)[0]["Revenue this month"] == "€10.00 EUR $91.02 USD"
    with django_capture_on_commit_callbacks(execute=True):
        pay(history.users["ben"], history.club, NOW, amount=1000, renewal=True)
    assert _look(client)[0]["Revenue this month"] == "€10.00 EUR $101.02 USD"


def test_what_no_write_announces_shows_within_the_cache_lifetime(looking: Looking) -> None:
    history, client = looking.history, looking.client
    # Ivy's free claim gets an end 45 seconds from now, written behind the services' back.
    Entitlement.objects.filter(user=history.users["ivy"]).update(access_until=NOW + timedelta(seconds=45))
    assert _look(client)[0]["Active members"] == "9"
    looking.clock.shift(timedelta(seconds=50))
    assert _look(client)[0]["Active members"] == "9"  # cached
    looking.clock.shift(timedelta(seconds=11))
    assert _look(client)[0]["Active members"] == "8"


class _Unreachable:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> None:
            raise ConnectionError("the cache is down")

        return fail


def test_without_the_cache_the_figures_are_computed_on_each_look(
    looking: Looking, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = looking.client
    monkeypatch.setattr(figures_module, "cache", _Unreachable())
    figures, computed = _look(client)
    assert figures["Revenue this month"] == "€10.00 EUR $91.02 USD"
    assert any("billing_salesday" in sql for sql in computed)
    assert "the figures cache cannot be read" in caplog.text
