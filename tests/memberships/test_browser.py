from __future__ import annotations

import re

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

    page.get_by_role("button", name="Publish").click()
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
    assert live.is_visible()
    assert "gives 1 more group to 2 existing buyers" in live.text_content()
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("This change affects 2 buyers.").wait_for()
    page.get_by_role("button", name="Save and update 2 buyers").click()
    page.get_by_text("“Weight Training” is saved.").wait_for()
    assert all(yoga.pk in accessible_group_ids(user=User.objects.get(pk=b.pk)) for b in buyers)
