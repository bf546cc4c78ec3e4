from __future__ import annotations

import dataclasses
import re
from unittest.mock import patch

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from billing.models import StripeAccount
from hubs.models import HubGroup
from memberships.models import Offer
from tests import factories


def offer_url(offer: Offer) -> str:
    return reverse("memberships:offer_page", kwargs={"slug": offer.slug})


def checkout_url(offer: Offer) -> str:
    return reverse("billing:checkout", kwargs={"slug": offer.slug})


PIXEL = '<script id="fb-pixel">window.pixelFired = true;</script>'


def test_without_a_landing_page_the_offer_page_goes_to_checkout_keeping_the_query(db: None, client: Client) -> None:
    offer = factories.offer()
    response = client.get(offer_url(offer) + "?ref=amy")
    assert response.status_code == 302
    assert response.url == checkout_url(offer) + "?ref=amy"


def test_the_checkout_page_shows_thumbnail_cover_title_and_price(db: None, client: Client) -> None:

    offer = factories.offer(title="Yoga Club")
    Offer.objects.filter(pk=offer.pk).update(cover=factories.stored_image("cover"))
    offer.refresh_from_db()
    body = client.get(checkout_url(offer)).content.decode()
    assert "<h1>Yoga Club</h1>" in body
    assert offer.thumbnail.url in body
    assert offer.cover.url in body
    assert '<p class="price-label">Free</p>' in body
    assert "Join for free" in body


def test_the_checkout_page_says_what_the_offer_is_what_it_includes_and_its_terms(
    client: Client, stripe_account: StripeAccount
) -> None:
    lounge = factories.group("Members' Lounge")
    HubGroup.objects.filter(pk=lounge.pk).update(description="Weekly threads.\nAnd <b>questions</b>.")
    staff_room = factories.group("Staff Room", permission="hidden")
    offer = factories.offer(
        title="Yoga Club",
        groups=[lounge, staff_room],
        pricing="recurring",
        price_amount=2900,
        interval="month",
        description="Classes every morning.\n\nFor <all> levels.",
    )
    body = client.get(checkout_url(offer)).content.decode()
    assert (
        '<div class="offer-description"><p>Classes every morning.</p>\n\n<p>For &lt;all&gt; levels.</p></div>' in body
    )
    assert "<h2>What's included</h2>" in body
    assert (
        "<li><strong>Members&#x27; Lounge</strong><br>"
        '<span class="muted">Weekly threads.<br>And &lt;b&gt;questions&lt;/b&gt;.</span></li>' in body
    )
    assert "Staff Room" not in body
    assert '<p class="billing-terms">$29.00 every month, cancel any time</p>' in body


@pytest.mark.parametrize(
    ("fields", "terms"),
    [
        ({"pricing": "one_time", "price_amount": 4900}, "$49.00 one-time payment"),
        ({"pricing": "recurring", "price_amount": 1000, "interval": "year"}, "$10.00 every year, cancel any time"),
        ({"pricing": "recurring", "price_amount": 1000, "interval": "week"}, "$10.00 every week, cancel any time"),
        (
            {"pricing": "recurring", "price_amount": 1250, "interval": "half_year", "currency": "eur"},
            "€12.50 every 6 months, cancel any time",
        ),
        ({}, "Free, no payment needed"),
    ],
)
def test_the_billing_terms_follow_the_pricing(
    client: Client, stripe_account: StripeAccount, fields: dict[str, object], terms: str
) -> None:
    offer = factories.offer(**fields)
    assert f'<p class="billing-terms">{terms}</p>' in client.get(checkout_url(offer)).content.decode()


def test_an_offer_with_only_hidden_groups_lists_nothing_included(db: None, client: Client) -> None:
    offer = factories.offer(groups=[factories.group("Staff Room", permission="hidden")])
    body = client.get(checkout_url(offer)).content.decode()
    assert "What's included" not in body
    assert "Staff Room" not in body


def test_a_paid_checkout_posts_the_buyer_details_to_billing(client: Client, stripe_account: StripeAccount) -> None:
    offer = factories.offer(pricing="recurring", price_amount=1900, interval="quarter")
    body = client.get(checkout_url(offer)).content.decode()
    assert f'action="{reverse("billing:checkout_start", kwargs={"slug": offer.slug})}"' in body
    assert 'name="email"' in body
    assert 'name="full_name"' in body
    assert "$19.00 every 3 months" in body


@pytest.mark.parametrize("status", ["draft", "archived"])
def test_unpublished_offers_are_a_404_to_the_public(client: Client, member: User, status: str) -> None:
    offer = factories.offer(landing_enabled=True)
    Offer.objects.filter(pk=offer.pk).update(status=status)
    for url in (offer_url(offer), checkout_url(offer)):
        assert client.get(url).status_code == 404
    client.force_login(member)
    for url in (offer_url(offer), checkout_url(offer)):
        assert client.get(url).status_code == 404
    assert client.post(checkout_url(offer), {"email": "x@example.com", "full_name": "X"}).status_code == 404


def test_an_unknown_offer_is_a_404(client: Client, db: None) -> None:
    assert client.get(reverse("billing:checkout", kwargs={"slug": "nope"})).status_code == 404


def test_staff_preview_a_draft_clearly_marked(client: Client, owner: User) -> None:
    offer = factories.offer(status=Offer.Status.DRAFT, landing_enabled=True, landing_headline="Come in")
    client.force_login(owner)
    for url in (offer_url(offer), checkout_url(offer)):
        response = client.get(url)
        assert response.status_code == 200
        assert "<strong>Preview</strong> · This offer is draft: only staff can see this page." in (
            response.content.decode()
        )
    claim = client.post(checkout_url(offer), {"email": "x@example.com", "full_name": "X"}, follow=True)
    assert "This is a preview: publish the offer to let people claim it." in claim.content.decode()
    assert not offer.entitlements.exists()


def test_a_published_offer_shows_no_preview_banner(client: Client, owner: User) -> None:
    offer = factories.offer()
    client.force_login(owner)
    assert "Preview" not in client.get(checkout_url(offer)).content.decode()


def test_the_landing_page_renders_sanitised_markdown_includes_and_the_button(db: None, client: Client) -> None:
    offer = factories.offer(
        groups=[factories.group("Yoga"), factories.group("Weights")],
        landing_enabled=True,
        landing_headline="Get strong",
        landing_body=(
            "**Bold** claim\n\n<script>alert(1)</script>\n\n[bad](javascript:alert(2)) <img src=x onerror=alert(3)>"
        ),
        landing_cta_label="Sign me up",
    )
    body = client.get(offer_url(offer) + "?ref=amy").content.decode()
    assert "<h1>Get strong</h1>" in body
    assert "<strong>Bold</strong> claim" in body
    assert "<script>alert(1)</script>" not in body
    assert "javascript:" not in body
    assert "onerror" not in body
    assert "<li>Yoga</li>" in body
    assert "<li>Weights</li>" in body
    assert f'href="{checkout_url(offer)}?ref=amy">Sign me up</a>' in body


def test_a_second_view_of_the_landing_page_does_not_render_the_markdown_again(db: None, client: Client) -> None:
    from core.markdown import render_markdown

    offer = factories.offer(landing_enabled=True, landing_body="**Strong** words")
    with patch("memberships.views.render_markdown", wraps=render_markdown) as renderer:
        first = client.get(offer_url(offer)).content.decode()
        second = client.get(offer_url(offer)).content.decode()
    assert renderer.call_count == 1
    assert "<strong>Strong</strong> words" in first
    assert "<strong>Strong</strong> words" in second


def test_the_landing_page_shows_new_text_as_soon_as_it_is_saved(db: None, client: Client) -> None:
    offer = factories.offer(landing_enabled=True, landing_body="Old *text*")
    assert "Old <em>text</em>" in client.get(offer_url(offer)).content.decode()
    Offer.objects.filter(pk=offer.pk).update(landing_body="New *text*")
    body = client.get(offer_url(offer)).content.decode()
    assert "New <em>text</em>" in body
    assert "Old" not in body


def test_the_landing_page_lists_the_creators_own_includes(db: None, client: Client) -> None:
    offer = factories.offer(landing_enabled=True, landing_includes="Weekly calls\n\nA private forum\n")
    body = client.get(offer_url(offer)).content.decode()
    assert "<li>Weekly calls</li>" in body
    assert "<li>A private forum</li>" in body
    assert "<li>Group" not in body


def test_custom_code_appears_only_in_the_checkout_pages_sandboxed_frame(
    client: Client, owner: User, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    offer = factories.offer(custom_code=PIXEL, landing_enabled=True)
    frame_url = reverse("memberships:custom_code", kwargs={"slug": offer.slug})
    assert PIXEL in client.get(frame_url).content.decode()
    checkout = client.get(checkout_url(offer)).content.decode()
    assert PIXEL not in checkout
    assert f'<iframe class="custom-code" src="{frame_url}" sandbox="allow-scripts allow-forms"' in checkout
    assert PIXEL not in client.get(offer_url(offer)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        claim = client.post(checkout_url(offer), {"email": "new@example.com", "full_name": "Nia New"}, follow=True)
    assert PIXEL not in claim.content.decode()
    assert all(PIXEL not in message.body for message in mailoutbox)
    assert all(PIXEL not in message.alternatives[0][0] for message in mailoutbox)
    client.force_login(owner)
    for url in (
        reverse("memberships:dashboard_offers"),
        reverse("memberships:offer_edit", kwargs={"pk": offer.pk}),
    ):
        page = client.get(url).content.decode()
        assert PIXEL not in page  # in the editor it is only ever escaped text in its box
    editor = client.get(reverse("memberships:offer_edit", kwargs={"pk": offer.pk})).content.decode()
    assert "&lt;script id=&quot;fb-pixel&quot;&gt;" in editor
    assert "it cannot read the checkout page, what buyers type into its" in editor


@pytest.mark.parametrize("offers", [1, 30])
def test_the_offer_and_checkout_pages_run_a_fixed_number_of_queries(
    db: None, client: Client, django_assert_num_queries, offers: int
) -> None:
    groups = [factories.group() for _ in range(offers)]
    target = None
    for _ in range(offers):
        target = factories.offer(groups=groups, landing_enabled=True)
        for _ in range(offers):
            factories.buyer(target)
    assert target is not None
    with django_assert_num_queries(2):  # the offer, its groups
        assert client.get(offer_url(target)).status_code == 200
    with django_assert_num_queries(2):  # the offer, its groups; the page is then cached
        assert client.get(checkout_url(target)).status_code == 200
    with django_assert_num_queries(0):
        assert client.get(checkout_url(target)).status_code == 200


def test_a_logged_in_visitor_adds_the_user_and_whether_they_have_the_offer(
    client: Client, member: User, django_assert_num_queries
) -> None:
    offer = factories.offer(landing_enabled=True)
    client.force_login(member)
    # The session comes from the cache (cached_db sessions).
    with django_assert_num_queries(4):  # user, offer, their entitlement, groups
        assert client.get(checkout_url(offer)).status_code == 200
    with django_assert_num_queries(3):  # user, offer, groups
        assert client.get(offer_url(offer)).status_code == 200


def test_each_visitor_of_the_cached_page_gets_a_working_csrf_token(db: None, client: Client) -> None:
    offer = factories.offer()
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    tokens = []
    for visitor in (first, second):
        page = visitor.get(checkout_url(offer)).content.decode()
        tokens.append(re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1))
    assert tokens[0] != tokens[1]
    claim = second.post(
        checkout_url(offer), {"csrfmiddlewaretoken": tokens[1], "full_name": "Sam", "email": "sam@example.com"}
    )
    assert claim.status_code == 302
    forged = first.post(checkout_url(offer), {"full_name": "Eve", "email": "eve@example.com"})
    assert forged.status_code == 403


def test_edits_and_unpublishing_reach_the_cached_page_at_once(
    db: None, client: Client, django_capture_on_commit_callbacks
) -> None:
    from memberships import services

    offer = factories.offer(title="Old Title")
    assert "Old Title" in client.get(checkout_url(offer)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        services.offer_update(
            offer=offer,
            fields=dataclasses.replace(services.OfferFields.of(offer), title="New Title"),
            hub_groups=list(offer.hub_groups.all()),
        )
    assert "New Title" in client.get(checkout_url(offer)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        services.offer_unpublish(offer=offer)
    assert client.get(checkout_url(offer)).status_code == 404


def test_hidden_groups_are_never_named_on_public_pages_nor_used_as_the_landing(db: None, client: Client) -> None:
    from memberships.selectors import community_path

    team = factories.group("Secret Team Room", permission="hidden")
    lounge = factories.group("Open Lounge")
    offer = factories.offer(groups=[team, lounge], landing_enabled=True)
    body = client.get(offer_url(offer)).content.decode()
    assert "Open Lounge" in body
    assert "Secret Team Room" not in body
    assert community_path(groups=[team, lounge]) == reverse("hubs:group", kwargs={"group_slug": lounge.slug})
