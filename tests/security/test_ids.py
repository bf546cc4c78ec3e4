"""A number no row can have, sent as an id, is a form error or a 404, never a 500.

SQLite raises OverflowError on binding an integer over 2**63-1; PostgreSQL finds nothing.
Both must answer the same."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from hubs import services as hub_services
from hubs.models import HubGroup
from tests.memberships.test_editor import CREATE_URL, form_data

pytestmark = pytest.mark.django_db

HUGE = ["99999999999999999999999", str(2**63), "0", "-1", "1.5", "1e3", " 7", "٣"]


@pytest.fixture
def staff(client: Client, owner) -> Client:
    client.raise_request_exception = False
    client.force_login(owner)
    return client


@pytest.fixture
def group() -> HubGroup:
    return hub_services.hub_group_create(name="Inner Circle", permission=HubGroup.Permission.PRIVATE, description="")


@pytest.mark.parametrize("value", HUGE)
def test_the_offer_editor_refuses_a_hub_group_no_row_can_have(staff, group, value) -> None:
    response = staff.post(CREATE_URL, form_data(hub_groups=[str(group.pk), value]))
    assert response.status_code == 400
    assert "Select a valid choice" in str(response.context["form"].errors["hub_groups"])


@pytest.mark.parametrize("value", HUGE)
def test_the_group_editor_refuses_an_upsell_offer_no_row_can_have(staff, group, value) -> None:
    response = staff.post(
        f"/dashboard/community/groups/{group.pk}/",
        {"name": "Inner Circle", "permission": "private", "upsell": "popup", "upsell_offer": value, "upsell_cta": "Go"},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in str(response.context["form"].errors["upsell_offer"])


@pytest.mark.parametrize("value", HUGE)
def test_a_grant_of_a_group_no_row_can_have_is_a_form_error(staff, owner, value) -> None:
    response = staff.post(f"/dashboard/users/{owner.pk}/", {"group": value})
    assert response.status_code == 400
    assert "Choose one of the private groups" in str(response.context["form"].errors["group"])


def _id_routes() -> list[str]:
    routes: list[str] = []

    def walk(patterns: list, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.pattern.converters:
                routes.append(prefix + str(p.pattern))

    walk(get_resolver().url_patterns, "")
    return [route for route in routes if "<id:" in route or "<int:" in route]


def test_no_url_pattern_uses_the_int_converter() -> None:
    """<int:> lets any number of digits through to the query; <id:> keeps to real ids."""
    assert _id_routes(), "the walk found no id routes"
    assert [route for route in _id_routes() if "<int:" in route] == []


@pytest.mark.parametrize("route", _id_routes())
@pytest.mark.parametrize("number", ["99999999999999999999999", str(2**63), "0"])
def test_a_path_id_no_row_can_have_is_a_404(staff, route, number) -> None:
    import re

    path = "/" + re.sub(r"<(?:int|id):\w+>", number, route).replace("<slug:group_slug>", "g").replace(
        "<slug:hub_slug>", "h"
    )
    for method in ("get", "post"):
        assert getattr(staff, method)(path).status_code == 404, (method, path)
