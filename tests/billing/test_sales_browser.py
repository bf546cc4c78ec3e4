"""The Sales chart in a real browser, with JavaScript on and off: its points are the known
history's months (tests/billing/metrics_history.py), and the table beside it says the same."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine

from accounts.models import User
from tests.billing.metrics_history import NOW, TIME_ZONE, build_history
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Net revenue in USD per month, Apr 2025 to Mar 2026, worked out in metrics_history.py.
USD_NET = [0, 0, 0, 0, 0, 0, 0, 0, 0, 5000, 2000, 9102]
MONTHS = ["Apr 2025", "May 2025", "Jun 2025", "Jul 2025", "Aug 2025", "Sep 2025", "Oct 2025", "Nov 2025"]
MONTHS += ["Dec 2025", "Jan 2026", "Feb 2026", "Mar 2026"]


@pytest.fixture
def history(settings: Any) -> None:
    settings.TIME_ZONE = TIME_ZONE
    # The clock runs from NOW; a session cookie dated from it would look long expired to the
    # browser, which keeps the real time, so it is one that lasts until the browser closes.
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    build_history()


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
def test_the_sales_chart_shows_the_known_months(
    history: None, browser: Any, live_server: Any, owner: User, javascript: bool
) -> None:
    context = browser.new_context(base_url=live_server.url, java_script_enabled=javascript)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        with time_machine.travel(NOW, tick=True):
            page.goto("/accounts/login/")
            page.get_by_label("Email address").fill(owner.email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(lambda url: "/accounts/login/" not in url)
            page.goto("/dashboard/sales/?period=12m")
            circles = page.locator('svg.chart[data-currency="usd"] circle')
            assert circles.count() == 12
            points = [
                (circles.nth(n).get_attribute("data-label"), int(circles.nth(n).get_attribute("data-value") or "x"))
                for n in range(12)
            ]
            assert points == list(zip(MONTHS, USD_NET, strict=True))
            assert circles.nth(11).locator("title").text_content() == "Mar 2026: $91.02"
            # The figures in a table, opened without a script.
            section = page.locator("section.revenue", has=page.locator("#revenue-usd"))
            section.get_by_text("By month").click()
            row = section.get_by_role("row", name="Mar 2026")
            assert row.get_by_role("cell").all_text_contents() == ["Mar 2026", "$161.02", "$20.00", "$50.00", "$91.02"]
            assert section.locator('[data-figure="net"]').text_content() == "$161.02"
    finally:
        context.close()
