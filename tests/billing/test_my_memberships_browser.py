"""My memberships on a phone: a member with a subscription and a one-time purchase finds the
page in the top bar's menu and reads it at 390 pixels wide, without scrolling sideways."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from tests.billing.test_my_memberships import Subscription, one_time

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_reads_my_memberships_on_a_phone(page, log_in, settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    member = User.objects.create_user(
        "a.rather.long.address.for.a.phone@example.com", "correct-horse-battery", full_name="Mia Member"
    )
    subscription = Subscription(member, title="The Morning Yoga Circle for Early Risers and Friends")
    one_time(member)
    page.set_viewport_size({"width": 390, "height": 844})

    log_in(page, member)
    page.get_by_role("button", name="Menu").click()
    page.get_by_role("link", name="My memberships", exact=True).click()
    page.wait_for_url("**/account/memberships/")

    assert page.get_by_role("heading", name="My memberships").is_visible()
    for name in ("Update card", "Cancel"):
        button = page.get_by_role("link", name=name, exact=True)
        assert button.is_visible()
        box: dict[str, Any] = button.bounding_box()
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390
    assert page.get_by_text("Renews on").is_visible()
    assert page.get_by_text("Card ending 4444").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide at 390px"
    page.screenshot(path=str(tmp_path / "my-memberships-390.png"), full_page=True)
    assert subscription.entitlement.offer.title in page.content()
