from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.models import User
from hubs.models import HubGroup
from hubs.selectors import accessible_group_ids
from memberships.models import Entitlement, Offer
from tests import factories
from tests.conftest import body_text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_creator_builds_and_publishes_a_free_offer_and_a_buyer_claims_it(
    page, new_page, log_in, owner: User, celery_worker, settings, tmp_path
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    morning = HubGroup.objects.create(name="Morning Yoga", slug="morning-yoga", permission="private")
    evening = HubGroup.objects.create(name="Evening Yoga", slug="evening-yoga", permission="private")

    # The creator logs in and starts a membership from Digital Offers.
    log_in(page, owner)
    page.get_by_label("Dashboard").get_by_role("link", name="Digital Offers").click()
    page.get_by_role("link", name="New offer").click()
    page.get_by_role("link", name=re.compile(r"^Membership")).click()

    page.get_by_label("Title").fill("Yoga Circle")
    # Price fields show only for paid pricing models (the editor's script, deferred, hides them:
    # wait for it rather than look once).
    expect(page.locator("#id_price")).to_be_hidden()
    page.get_by_label("One-Time Payment").check()
    expect(page.locator("#id_price")).to_be_visible()
    page.get_by_label("Free").check()
    expect(page.locator("#id_price")).to_be_hidden()

    page.get_by_label("Morning Yoga").check()
    page.get_by_label("Evening Yoga").check()
    page.set_input_files(
        "#id_thumbnail",
        files=[{"name": "thumb.png", "mimeType": "image/png", "buffer": factories.image_bytes(size=(800, 800))}],
    )
    page.set_input_files(
        "#id_cover",
        files=[{"name": "cover.jpg", "mimeType": "image/jpeg", "buffer": factories.image_bytes("JPEG", (1600, 500))}],
    )
    # The live email preview follows the title.
    assert page.locator("#email-preview-subject").text_content() == "You're in: Yoga Circle"
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("“Yoga Circle” is saved as a draft.").wait_for()

    # A preview of the draft, clearly marked.
    with page.expect_popup() as popup:
        page.locator(".actions").get_by_role("link", name="View offer page").click()
    preview = popup.value
    preview.wait_for_load_state()
    assert "/offers/yoga-circle/checkout/" in preview.url
    assert preview.get_by_text("This offer is draft: only staff can see this page.").is_visible()
    assert preview.locator("img.thumbnail").evaluate("img => img.naturalWidth") == 600
    assert preview.locator("img.cover").evaluate("img => img.naturalWidth") == 1600
    preview.close()

    page.get_by_role("button", name="Publish", exact=True).click()
    page.get_by_text("“Yoga Circle” is published.").wait_for()
    assert Offer.objects.get(slug="yoga-circle").status == "published"

    # A buyer in a fresh browser claims it.
    buyer_page = new_page()
    buyer_page.goto("/offers/yoga-circle/")
    buyer_page.wait_for_url("**/offers/yoga-circle/checkout/")
    assert buyer_page.get_by_role("heading", name="Yoga Circle").is_visible()
    assert buyer_page.get_by_text("Free", exact=True).is_visible()
    assert buyer_page.get_by_text("Preview").count() == 0
    buyer_page.get_by_label("Your name").fill("Bea Buyer")
    buyer_page.get_by_label("Email address").fill("bea@example.com")
    buyer_page.get_by_role("button", name="Join for free").click()
    buyer_page.wait_for_url(re.compile(r".*/community/[^/]+/$"))  # inside the first group it grants
    assert buyer_page.get_by_text("Welcome! You have joined Yoga Circle.").is_visible()
    assert buyer_page.get_by_text("bea@example.com").is_visible()  # logged in

    buyer = User.objects.get(email="bea@example.com")
    assert Entitlement.objects.filter(user=buyer, offer__slug="yoga-circle", status="active").exists()
    assert {morning.pk, evening.pk} <= accessible_group_ids(user=buyer)
    [message] = celery_worker.wait_for(1)
    assert message["To"] == "bea@example.com"
    assert message["Subject"] == "You're in: Yoga Circle"
    assert "Hi Bea Buyer," in body_text(message)


def test_a_creator_gives_past_buyers_a_new_group_after_seeing_how_many_it_affects(
    page, log_in, owner: User, settings, tmp_path
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    weights, yoga = factories.group("Weight Training"), factories.group("Yoga")
    offer = factories.offer(title="Weight Training", groups=[weights])
    buyers = [factories.buyer(offer) for _ in range(2)]

    log_in(page, owner)
    page.goto("/dashboard/offers/")
    page.get_by_role("link", name="Weight Training").first.click()
    page.get_by_label("Yoga").check()
    live = page.locator("#groups-live-notice")
    live.filter(has_text="gives 1 more group to 2 existing buyers").wait_for()  # the notice may be fetched
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("This change affects 2 buyers.").wait_for()
    page.get_by_role("button", name="Save and update 2 buyers").click()
    page.get_by_text("“Weight Training” is saved.").wait_for()
    assert all(yoga.pk in accessible_group_ids(user=User.objects.get(pk=b.pk)) for b in buyers)


# --- What a save that needs attention shows ----------------------------------------------------
def in_viewport(page: Any, locator: Any) -> bool:
    """Whether the element is wholly on screen, without scrolling."""
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= page.evaluate("window.innerHeight")


def focused_id(page: Any) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def test_a_price_under_the_minimum_is_shown_at_the_top_with_a_link_to_the_field(page, log_in, owner: User) -> None:
    offer = factories.offer(title="Yoga Club", pricing="one_time", price_amount=900)
    log_in(page, owner)
    page.goto(f"/dashboard/offers/{offer.pk}/")
    page.locator("#id_price").fill("0.49")
    page.get_by_role("button", name="Save", exact=True).click()  # the sticky one, at the bottom

    summary = page.locator("#error-summary")
    summary.wait_for()
    assert "Price: The minimum price is $0.50 (Stripe's minimum)." in summary.text_content()
    assert in_viewport(page, summary)
    assert focused_id(page) == "error-summary"
    # Its link puts the cursor in the price field.
    summary.get_by_role("link", name=re.compile(r"^Price:")).click()
    assert focused_id(page) == "id_price"
    assert in_viewport(page, page.locator("#id_price"))
    page.locator("#id_price").fill("0.50")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("“Yoga Club” is saved.").wait_for()
    offer.refresh_from_db()
    assert offer.price_amount == 50


def test_without_javascript_the_editor_still_opens_on_what_needs_attention(
    browser, live_server, log_in, owner: User
) -> None:
    offer = factories.offer(title="Yoga Club", pricing="one_time", price_amount=900)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, owner)
        page.goto(f"/dashboard/offers/{offer.pk}/")
        page.locator("#id_price").fill("0.49")
        page.get_by_role("button", name="Save", exact=True).click()
        page.wait_for_load_state()
        summary = page.locator("#error-summary")
        assert "Price: The minimum price is $0.50" in summary.text_content()
        assert in_viewport(page, summary)
    finally:
        context.close()
    offer.refresh_from_db()
    assert offer.price_amount == 900


def test_removing_a_group_from_an_offer_with_buyers_asks_at_the_top_of_the_page(page, log_in, owner: User) -> None:
    weights, yoga = factories.group("Weight Training"), factories.group("Yoga")
    offer = factories.offer(title="Strength", groups=[weights, yoga])
    buyers = [factories.buyer(offer) for _ in range(2)]
    log_in(page, owner)
    page.goto(f"/dashboard/offers/{offer.pk}/")
    page.get_by_label("Yoga", exact=True).uncheck()
    page.get_by_role("button", name="Save", exact=True).click()

    confirmation = page.locator("#groups-impact")
    confirmation.wait_for()
    assert "This change affects 2 buyers." in confirmation.text_content()
    assert "2 lose Yoga" in confirmation.text_content()
    assert in_viewport(page, confirmation)
    assert focused_id(page) == "groups-impact"
    button = page.get_by_role("button", name="Save and update 2 buyers")
    assert in_viewport(page, button)
    # The sticky Save asks again rather than saving: the question stays where it is seen.
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    assert in_viewport(page, page.locator("#groups-impact"))
    assert list(offer.hub_groups.all()) == [weights, yoga]

    page.get_by_role("button", name="Save and update 2 buyers").click()
    page.get_by_text("“Strength” is saved.").wait_for()
    assert list(offer.hub_groups.all()) == [weights]
    assert not any(yoga.pk in accessible_group_ids(user=User.objects.get(pk=b.pk)) for b in buyers)
