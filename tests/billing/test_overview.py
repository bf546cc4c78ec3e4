"""The Overview's figures, as the creator reads them, for the known history."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
import time_machine
from django.test import Client

from accounts.models import User
from tests.billing.metrics_history import NOW, TIME_ZONE, build_history

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
