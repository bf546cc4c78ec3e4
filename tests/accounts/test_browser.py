from __future__ import annotations

import pytest

from accounts.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_creator_logs_in_and_reaches_the_dashboard(page, log_in, owner: User) -> None:
    log_in(page, owner)
    page.wait_for_url("**/dashboard/")
    assert page.get_by_role("heading", name="Welcome, Olive").is_visible()
    page.get_by_label("Dashboard").get_by_role("link", name="Digital Offers").click()
    page.wait_for_url("**/dashboard/offers/")
    assert page.get_by_role("heading", name="Digital Offers").is_visible()


def test_a_member_cannot_reach_the_dashboard(page, log_in, member: User) -> None:
    log_in(page, member)
    page.wait_for_url("**/home/")
    response = page.goto("/dashboard/")
    assert response.status == 403
    assert page.get_by_role("heading", name="You don't have access to this page").is_visible()
