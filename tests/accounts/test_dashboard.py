from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User

DASHBOARD_PAGES = [
    ("accounts:dashboard", "Welcome"),
    ("memberships:dashboard_offers", "Digital Offers"),
    ("hubs:dashboard_community", "Community"),
    ("hubs:dashboard_users", "Users"),
    ("billing:dashboard_sales", "Sales"),
    ("affiliates:dashboard_affiliates", "Affiliates"),
    ("billing:dashboard_integrations", "Integrations"),
]


@pytest.mark.parametrize(("name", "heading"), DASHBOARD_PAGES)
def test_a_creator_opens_every_dashboard_page(client: Client, owner: User, name: str, heading: str) -> None:
    client.force_login(owner)
    response = client.get(reverse(name))
    assert response.status_code == 200
    body = response.content.decode()
    assert heading in body
    # The sidebar is on every page, with the page marked current.
    for label in ("Digital Offers", "Community", "Users", "Sales", "Affiliates", "Integrations"):
        assert label in body
    assert 'aria-current="page"' in body


@pytest.mark.parametrize(("name", "heading"), DASHBOARD_PAGES)
def test_a_member_gets_a_clear_403(client: Client, member: User, name: str, heading: str) -> None:
    client.force_login(member)
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert "have access to this page" in response.content.decode()


@pytest.mark.parametrize(("name", "heading"), DASHBOARD_PAGES)
def test_an_anonymous_visitor_is_sent_to_login(client: Client, db: None, name: str, heading: str) -> None:
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login") + "?next=")


def test_a_member_has_a_home_page(client: Client, member: User) -> None:
    client.force_login(member)
    response = client.get(reverse("accounts:home"))
    assert response.status_code == 200
    assert "Your communities" in response.content.decode()


def test_an_unknown_page_is_a_friendly_404(client: Client, db: None, settings) -> None:
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_the_overview_lists_each_layers_first_steps_in_order(client: Client, owner: User) -> None:
    client.force_login(owner)
    page = client.get(reverse("accounts:dashboard")).content.decode()
    steps = ["Connect Stripe under", "Create a Membership under"]
    assert all(step in page for step in steps), page
    assert page.index(steps[0]) < page.index(steps[1])
