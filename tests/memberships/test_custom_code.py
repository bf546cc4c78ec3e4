"""The offer's custom code at its own address: the creator's HTML alone, sandboxed by its own
policy, with the checkout page's visibility rule."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from accounts.models import User
from memberships import services
from memberships.models import Offer
from tests import factories

PIXEL = '<script id="fb-pixel">window.pixelFired = true;</script>'


def code_url(offer: Offer) -> str:
    return reverse("memberships:custom_code", kwargs={"slug": offer.slug})


def policy(response) -> dict[str, list[str]]:
    return {
        name: values
        for name, *values in (part.split() for part in response.headers["Content-Security-Policy"].split(";"))
    }


def test_the_custom_code_is_served_alone_in_a_sandbox_only_the_checkout_page_may_frame(
    db: None, client: Client
) -> None:
    offer = factories.offer(custom_code=PIXEL)
    response = client.get(code_url(offer), headers={"Sec-Fetch-Dest": "iframe"})
    assert response.status_code == 200
    assert PIXEL in response.content.decode()
    directives = policy(response)
    assert directives["sandbox"] == ["allow-scripts", "allow-forms"]
    assert directives["frame-ancestors"] == ["'self'"]
    assert "'unsafe-inline'" in directives["default-src"]
    assert "'self'" not in directives["default-src"]
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "Sec-Fetch-Dest" in response["Vary"]
    assert "csrftoken" not in response.cookies
    assert "csrfmiddlewaretoken" not in response.content.decode()


def test_the_checkout_pages_frame_has_the_same_sandbox_as_the_custom_codes_policy(db: None, client: Client) -> None:
    offer = factories.offer(custom_code=PIXEL)
    checkout = client.get(reverse("billing:checkout", kwargs={"slug": offer.slug})).content.decode()
    [sandbox] = re.findall(r'<iframe class="custom-code" src="[^"]+" sandbox="([^"]*)"', checkout)
    assert sandbox == django_settings.CUSTOM_CODE_SANDBOX
    assert not {"allow-same-origin", "allow-top-navigation", "allow-popups"} & set(sandbox.split())


def test_nothing_about_the_visitor_reaches_the_custom_code(client: Client, owner: User) -> None:
    offer = factories.offer(custom_code=PIXEL)
    client.force_login(owner)
    body = client.get(code_url(offer)).content.decode()
    assert owner.email not in body
    assert "csrfmiddlewaretoken" not in body


def test_a_checkout_page_without_custom_code_has_no_frame(db: None, client: Client) -> None:
    offer = factories.offer(custom_code="")
    checkout = client.get(reverse("billing:checkout", kwargs={"slug": offer.slug})).content.decode()
    assert "<iframe" not in checkout


def test_opened_in_a_tab_of_its_own_it_sends_the_visitor_to_the_checkout_page(db: None, client: Client) -> None:
    offer = factories.offer(custom_code=PIXEL)
    response = client.get(code_url(offer), headers={"Sec-Fetch-Dest": "document"})
    assert response.status_code == 302
    assert response.url == reverse("billing:checkout", kwargs={"slug": offer.slug})
    assert PIXEL not in response.content.decode()


@pytest.mark.parametrize("persona", ["anonymous", "member", "owner"])
def test_a_published_offers_custom_code_is_there_for_everyone_and_only_for_get(
    db: None, client: Client, persona: str, request: pytest.FixtureRequest
) -> None:
    offer = factories.offer(custom_code=PIXEL)
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    assert client.get(code_url(offer)).status_code == 200
    assert client.post(code_url(offer)).status_code == 405


@pytest.mark.parametrize(("persona", "status"), [("anonymous", 404), ("member", 404), ("owner", 200)])
def test_a_drafts_custom_code_is_a_preview_for_staff_only(
    db: None, client: Client, persona: str, status: int, request: pytest.FixtureRequest
) -> None:
    offer = factories.offer(custom_code=PIXEL, status=Offer.Status.DRAFT)
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    response = client.get(code_url(offer))
    assert response.status_code == status
    assert (PIXEL in response.content.decode()) == (status == 200)


def test_an_unpublished_offers_custom_code_is_gone_at_once(
    db: None, client: Client, django_capture_on_commit_callbacks
) -> None:
    offer = factories.offer(custom_code=PIXEL)
    client.get(reverse("billing:checkout", kwargs={"slug": offer.slug}))  # cached, with its code
    with django_capture_on_commit_callbacks(execute=True):
        services.offer_unpublish(offer=offer)
    assert client.get(code_url(offer)).status_code == 404


def test_after_the_cached_checkout_page_its_frame_runs_no_query(
    db: None, client: Client, django_assert_num_queries
) -> None:
    offer = factories.offer(custom_code=PIXEL)
    client.get(reverse("billing:checkout", kwargs={"slug": offer.slug}))
    with django_assert_num_queries(0):
        assert PIXEL in client.get(code_url(offer)).content.decode()
