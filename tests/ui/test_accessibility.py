"""The main pages, as the person each is for, scanned by axe-core on a wide screen and on a
phone: no serious or critical violation (missing names and labels, contrast, landmarks, ...)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.ui import axe
from tests.ui.conftest import DESKTOP, PHONE, Visit, Visitors, World

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["wide", "phone"])
def test_the_main_pages_have_no_serious_accessibility_violations(
    world: World, visitors: Visitors, viewport: dict[str, int]
) -> None:
    found: list[str] = []
    for visit in world.visits():
        page = visitors.open(visit, viewport)
        found += axe.blocking(page, visit.name)

    # The states a page reaches after a person acts: a checkout refused for its empty fields,
    # and on a phone the top bar's menu, open.
    checkout = visitors.open(Visit("checkout", f"/offers/{world.free_offer.slug}/checkout/", "anonymous"), viewport)
    checkout.get_by_role("button", name="Join for free").click()
    expect(checkout.get_by_role("alert").first).to_be_visible()
    found += axe.blocking(checkout, "checkout with errors")
    if viewport == PHONE:
        home = visitors.open(Visit("member home", "/home/", "member"), viewport)
        home.get_by_role("button", name="Menu").click()
        found += axe.blocking(home, "member home, menu open")

    assert found == [], "serious or critical accessibility violations:\n" + "\n".join(found)


def test_the_scan_reports_a_field_without_a_label(page) -> None:
    page.goto("/accounts/login/")
    assert axe.blocking(page, "login") == []
    page.evaluate("document.querySelectorAll('label').forEach(label => label.remove())")
    [line, *_] = axe.blocking(page, "login")
    assert line.startswith("login: label (critical)")
