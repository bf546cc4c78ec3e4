"""A phone's screen, 390 pixels wide: every main page fits it without scrolling sideways, the
top bar folds its links behind a Menu button, and a wide table scrolls inside its own box."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import DESKTOP, PHONE, Visit, Visitors, World

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGE_WIDTH = "document.documentElement.scrollWidth"


def test_every_main_page_fits_a_phone_screen(world: World, visitors: Visitors) -> None:
    too_wide = []
    for visit in world.visits():
        page = visitors.open(visit, PHONE)
        width = page.evaluate(PAGE_WIDTH)
        if width > PHONE["width"]:
            too_wide.append(f"{visit.name} ({visit.path}): {width}px")
    assert too_wide == [], "pages wider than the phone's 390px:\n" + "\n".join(too_wide)


def _same_row(first: dict[str, float], second: dict[str, float]) -> bool:
    return abs((first["y"] + first["height"] / 2) - (second["y"] + second["height"] / 2)) < first["height"] / 2


def test_on_a_phone_the_top_bar_is_one_row_with_a_menu_button(world: World, visitors: Visitors) -> None:
    page = visitors.open(Visit("member home", "/home/", "member"), PHONE)
    menu = page.get_by_role("button", name="Menu")
    link = page.get_by_role("navigation", name="Site").get_by_role("link", name="My memberships")
    expect(menu).to_be_visible()  # shown by the script, deferred
    assert menu.get_attribute("aria-expanded") == "false"
    assert link.is_hidden()
    assert _same_row(page.locator(".brand").bounding_box(), menu.bounding_box())

    menu.click()
    assert menu.get_attribute("aria-expanded") == "true"
    expect(link).to_be_visible()
    assert page.get_by_text(world.member.email).is_visible()
    assert page.evaluate(PAGE_WIDTH) <= PHONE["width"]

    page.keyboard.press("Escape")
    assert menu.get_attribute("aria-expanded") == "false"
    assert link.is_hidden()
    assert page.evaluate("document.activeElement.textContent") == "Menu"  # focus back on the button

    menu.click()
    link.click()
    page.wait_for_url("**/account/memberships/")


def test_on_a_wide_screen_the_top_bar_shows_its_links_and_no_menu(world: World, visitors: Visitors) -> None:
    page = visitors.open(Visit("member home", "/home/", "member"), DESKTOP)
    assert page.get_by_role("navigation", name="Site").get_by_role("link", name="My memberships").is_visible()
    assert page.get_by_role("button", name="Menu").count() == 0  # not in the accessibility tree


def test_without_javascript_the_phone_top_bar_keeps_its_links(browser: Any, live_server: Any, world: World) -> None:
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Email address").fill(world.member.email)
        page.get_by_label("Password").fill("correct-horse-battery")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/home/")
        assert page.get_by_role("link", name="My memberships", exact=True).is_visible()
        assert page.get_by_role("button", name="Menu").count() == 0
        assert page.evaluate(PAGE_WIDTH) <= PHONE["width"]
    finally:
        context.close()


def test_a_wide_table_scrolls_in_its_own_box_on_a_phone(world: World, visitors: Visitors) -> None:
    page = visitors.open(Visit("Sales", "/dashboard/sales/", "owner"), PHONE)
    region = page.get_by_role("region", name="Sales")
    sizes = region.evaluate("box => [box.scrollWidth, box.clientWidth]")
    assert sizes[0] > sizes[1]  # the table is wider than the screen ...
    assert page.evaluate(PAGE_WIDTH) <= PHONE["width"]  # ... and only its box scrolls
    region.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    # A keyboard reaches the far columns too (the box may scroll smoothly: wait for it).
    page.wait_for_function("box => box.scrollLeft > 0", arg=region.element_handle(), timeout=5000)
