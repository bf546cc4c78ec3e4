from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User
from memberships.models import Offer
from memberships.services import offer_claim_free
from tests import factories
from tests.memberships.conftest import upload

CREATE_URL = reverse("memberships:offer_create", kwargs={"kind": "membership"})


def form_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "Inner Circle",
        "slug": "",
        "pricing": "free",
        "price": "",
        "currency": "usd",
        "interval": "",
        "grace_period_days": "3",
        "refund_policy": "revoke",
        "renewal_receipts": "on",
        "confirmation_subject": "",
        "confirmation_body": "",
        "redirect_url": "",
        "resell_description": "",
        "custom_code": "",
        "landing_headline": "",
        "landing_body": "",
        "landing_includes": "",
        "landing_cta_label": "",
        "action": "save",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def staff_client(client: Client, owner: User) -> Client:
    client.force_login(owner)
    return client


def errors_of(response: Any) -> dict[str, list[str]]:
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


# --- Creating and validating --------------------------------------------------------------------


def test_a_creator_picks_membership_then_creates_a_free_draft(staff_client: Client) -> None:
    group = factories.group("Yoga")
    choose = staff_client.get(reverse("memberships:offer_new"))
    assert "Membership" in choose.content.decode()
    response = staff_client.post(CREATE_URL, form_data(hub_groups=[group.pk], thumbnail=upload()))
    offer = Offer.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("memberships:offer_edit", kwargs={"pk": offer.pk})
    assert (offer.title, offer.slug, offer.status, offer.pricing) == ("Inner Circle", "inner-circle", "draft", "free")
    assert list(offer.hub_groups.all()) == [group]
    assert offer.thumbnail.name.startswith("offers/thumbnail-")
    assert offer.thumbnail.name.endswith(".webp")
    assert offer.thumbnail.storage.exists(offer.thumbnail.name)


@pytest.mark.parametrize(
    ("price", "amount"),
    [("0.50", 50), ("12", 1200), ("12.5", 1250), ("999999.99", 99_999_999)],
)
def test_paid_prices_from_the_minimum_up_are_stored_in_cents(staff_client: Client, price: str, amount: int) -> None:
    response = staff_client.post(CREATE_URL, form_data(pricing="one_time", price=price))
    assert response.status_code == 302
    assert Offer.objects.get().price_amount == amount


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"pricing": "one_time", "price": "0.49"}, "price", "The minimum price is $0.50"),
        ({"pricing": "one_time", "price": "0.49", "currency": "eur"}, "price", "The minimum price is €0.50"),
        ({"pricing": "one_time", "price": "1000000"}, "price", "The maximum price is $999,999.99"),
        ({"pricing": "one_time", "price": ""}, "price", "Enter a price for a paid offer."),
        ({"pricing": "one_time", "price": "1.999"}, "price", "Use at most two decimals"),
        ({"pricing": "one_time", "price": "-3"}, "price", "greater than or equal to 0"),
        ({"pricing": "recurring", "price": "10", "interval": ""}, "interval", "Choose how often"),
        ({"pricing": "bartering"}, "pricing", "Select a valid choice"),
        ({"title": ""}, "title", "This field is required."),
        ({"slug": "not a slug!"}, "slug", "Enter a valid “slug”"),
        ({"redirect_enabled": "on"}, "redirect_url", "Enter the link to send buyers to"),
        ({"redirect_url": "javascript:alert(1)"}, "redirect_url", "starting with https://"),
        ({"redirect_url": "/thanks"}, "redirect_url", "starting with https://"),
        ({"pricing": "one_time", "price": "5", "resell_enabled": "on"}, "resell_commission_percent", "between 1"),
        (
            {"pricing": "one_time", "price": "5", "resell_enabled": "on", "resell_commission_percent": "91"},
            "resell_commission_percent",
            "between 1 and 90",
        ),
        (
            {"pricing": "one_time", "price": "5", "resell_enabled": "on", "resell_commission_percent": "0"},
            "resell_commission_percent",
            "between 1 and 90",
        ),
        ({"resell_enabled": "on", "resell_commission_percent": "20"}, "resell_enabled", "paid offers only"),
        ({"confirmation_body": "Hi {{ buyer_nmae }}"}, "confirmation_body", "Unknown placeholder {{ buyer_nmae }}"),
        ({"grace_period_days": "31"}, "grace_period_days", "less than or equal to 30"),
        ({"thumbnail": "text"}, "thumbnail", "not a JPEG, PNG or WebP image"),
    ],
)
def test_every_field_is_validated_next_to_itself(
    staff_client: Client, overrides: dict[str, Any], field: str, message: str
) -> None:
    if overrides.get("thumbnail") == "text":
        overrides = {"thumbnail": upload("notes.png", b"hello, I am text")}
    response = staff_client.post(CREATE_URL, form_data(**overrides))
    assert response.status_code == 400
    assert not Offer.objects.exists()
    errors = errors_of(response)
    assert list(errors) == [field], errors
    assert message in errors[field][0]
    # Shown next to the field, in the page, and summed up at the top with a link to the field
    # (for a group of choices, its first choice).
    page = response.content.decode()
    assert 'has-error"' in page
    anchor = "id_pricing_0" if field == "pricing" else f"id_{field}"
    summary = error_summary(page)
    assert f'<a href="#{anchor}">' in summary
    assert f'id="{anchor}"' in page


def error_summary(page: str) -> str:
    """The error summary, which comes before the form and everything else but the page's title."""
    match = re.search(r'<div class="error-summary" id="error-summary" role="alert" tabindex="-1".*?</div>', page, re.S)
    assert match, "no error summary"
    assert match.start() < page.index('id="offer-form"')
    assert match.start() < page.index('<nav class="tabs"')
    return match.group(0)


def test_a_price_under_the_minimum_is_named_at_the_top_of_the_page(staff_client: Client) -> None:
    offer = factories.offer(title="Yoga Club", pricing="one_time", price_amount=900, status=Offer.Status.DRAFT)
    response = staff_client.post(
        reverse("memberships:offer_edit", kwargs={"pk": offer.pk}),
        form_data(title="Yoga Club", pricing="one_time", price="0.49", hub_groups=[offer.hub_groups.get().pk]),
    )
    assert response.status_code == 400
    summary = error_summary(response.content.decode())
    assert "Nothing was saved yet." in summary
    assert (
        '<a href="#id_price">Price: The minimum price is $0.50 (Stripe&#x27;s minimum). Choose Free to give it '
        "away.</a>" in summary
    )
    offer.refresh_from_db()
    assert offer.price_amount == 900


def test_a_valid_page_has_no_error_summary(staff_client: Client) -> None:
    assert 'id="error-summary"' not in staff_client.get(CREATE_URL).content.decode()


def label_text(page: str, field_id: str) -> str:
    """The text of the label for ``field_id``, tags removed, spaces collapsed."""
    match = re.search(rf'<label for="{field_id}">(.*?)</label>', page, re.S)
    assert match, f"no label for {field_id}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_optional_fields_that_are_sometimes_required_say_when(staff_client: Client) -> None:
    page = staff_client.get(CREATE_URL).content.decode()
    assert label_text(page, "id_price") == "Price (required for paid offers)"
    assert label_text(page, "id_thumbnail") == "Thumbnail (required to publish)"
    assert label_text(page, "id_redirect_url") == "Custom link (required when the redirect is on)"
    assert label_text(page, "id_resell_commission_percent") == "Resell commission (required when resell is on)"
    # Fields that are optional whatever the offer still say so.
    assert label_text(page, "id_cover") == "Cover (optional)"
    assert label_text(page, "id_custom_code") == "Custom code (optional)"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bomb.png", "bomb", "far too many pixels"),
        ("big.png", "30mp", "the most is 25 megapixels"),
        ("fake.png", b"plain text, not a picture", "not a JPEG, PNG or WebP image"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "not a JPEG, PNG or WebP image"),
    ],
)
def test_bad_images_get_a_clear_form_error(staff_client: Client, name: str, content: Any, message: str) -> None:
    from tests.core.test_images import png_header_only

    data = {"bomb": png_header_only(60_000, 60_000), "30mp": png_header_only(6000, 5000)}.get(content, content)
    response = staff_client.post(CREATE_URL, form_data(cover=upload(name, data)))
    assert response.status_code == 400
    assert message in errors_of(response)["cover"][0]
    assert message in response.content.decode()


def test_nothing_typed_is_lost_on_an_error_and_an_uploaded_image_is_kept(staff_client: Client) -> None:
    group = factories.group("Yoga")
    response = staff_client.post(
        CREATE_URL,
        form_data(
            title="Weight Training",
            pricing="one_time",
            price="0.49",
            confirmation_body="Welcome aboard, {{ buyer_name }}!",
            hub_groups=[group.pk],
            thumbnail=upload("t.png", factories.image_bytes(size=(800, 800))),
        ),
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert 'value="Weight Training"' in body
    assert 'value="0.49"' in body
    assert "Welcome aboard, {{ buyer_name }}!" in body
    assert f'value="{group.pk}" id="id_hub_groups_0" checked' in body or "checked" in body
    assert "New thumbnail uploaded; it is kept when you save." in body
    token = response.context["form"].data["thumbnail_pending"]
    # Fixing the price and saving again keeps the thumbnail without uploading it again.
    again = staff_client.post(
        CREATE_URL,
        form_data(title="Weight Training", pricing="one_time", price="0.50", thumbnail_pending=token),
    )
    assert again.status_code == 302
    offer = Offer.objects.get()
    assert offer.thumbnail.name.startswith("offers/thumbnail-")


def test_a_forged_pending_image_is_ignored(staff_client: Client) -> None:
    response = staff_client.post(CREATE_URL, form_data(thumbnail_pending="offers/../../etc/passwd"))
    assert response.status_code == 302
    assert not Offer.objects.get().thumbnail


def test_a_taken_address_is_refused(staff_client: Client) -> None:
    factories.offer()
    response = staff_client.post(CREATE_URL, form_data(slug="inner-circle"))
    assert errors_of(response) == {"slug": ["Another offer already uses this address."]}


def test_the_address_does_not_change_with_the_title(staff_client: Client) -> None:
    offer = factories.offer()
    groups = [group.pk for group in offer.hub_groups.all()]
    staff_client.post(
        reverse("memberships:offer_edit", kwargs={"pk": offer.pk}), form_data(title="A New Name", hub_groups=groups)
    )
    offer.refresh_from_db()
    assert (offer.title, offer.slug) == ("A New Name", "inner-circle")
    assert staff_client.get(reverse("memberships:offer_page", kwargs={"slug": "inner-circle"})).status_code == 302


def test_two_offers_with_one_title_get_distinct_addresses(db: None) -> None:
    assert [factories.offer().slug, factories.offer().slug, factories.offer().slug] == [
        "inner-circle",
        "inner-circle-2",
        "inner-circle-3",
    ]


# --- Paid offers and Stripe ----------------------------------------------------------------------


def test_choosing_a_paid_model_without_stripe_says_how_to_connect(staff_client: Client) -> None:
    body = staff_client.get(CREATE_URL).content.decode()
    assert "No Stripe account is connected" in body
    assert reverse("billing:dashboard_integrations") in body


def test_saving_a_paid_offer_queues_the_stripe_sync_after_commit(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    with (
        mock.patch("billing.tasks.sync_offer_to_stripe.delay") as sync,
        django_capture_on_commit_callbacks(execute=True),
    ):
        staff_client.post(CREATE_URL, form_data(pricing="recurring", price="19", interval="month"))
    offer = Offer.objects.get()
    sync.assert_called_once_with(offer.pk)
    assert offer.stripe_recurring == {"interval": "month", "interval_count": 1}


def test_saving_a_free_offer_does_not_touch_stripe(staff_client: Client) -> None:
    with mock.patch("billing.tasks.sync_offer_to_stripe.delay") as sync:
        staff_client.post(CREATE_URL, form_data())
    sync.assert_not_called()


def test_a_paid_offer_cannot_be_published_until_stripe_is_connected(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    offer = factories.offer(status=Offer.Status.DRAFT, pricing="one_time", price_amount=500)
    response = staff_client.post(reverse("memberships:offer_publish", kwargs={"pk": offer.pk}), follow=True)
    assert "Not published: Connect a Stripe account (Settings &gt; Integrations)" in response.content.decode()
    offer.refresh_from_db()
    assert offer.status == "draft"
    factories.stripe_account()  # the creator connects Stripe
    with (
        mock.patch("billing.tasks.sync_offer_to_stripe.delay") as sync,
        django_capture_on_commit_callbacks(execute=True),
    ):
        staff_client.post(reverse("memberships:offer_publish", kwargs={"pk": offer.pk}))
    offer.refresh_from_db()
    assert offer.status == "published"
    sync.assert_called_once_with(offer.pk)


def test_the_description_is_stored_and_shown_on_the_checkout_page(staff_client: Client) -> None:
    group = factories.group("Yoga")
    response = staff_client.post(
        CREATE_URL, form_data(description="  Morning classes for every level.  ", hub_groups=[group.pk])
    )
    assert response.status_code == 302
    offer = Offer.objects.get()
    assert offer.description == "Morning classes for every level."
    editor = staff_client.get(response.url).content.decode()
    assert "Morning classes for every level.</textarea>" in editor
    checkout = staff_client.get(reverse("billing:checkout", kwargs={"slug": offer.slug})).content.decode()
    assert "<p>Morning classes for every level.</p>" in checkout


def test_resell_rights_are_stored_for_paid_offers(staff_client: Client) -> None:
    staff_client.post(
        CREATE_URL,
        form_data(
            pricing="one_time",
            price="40",
            resell_enabled="on",
            resell_commission_percent="30",
            resell_description="Earn 30% on every sale.",
        ),
    )
    offer = Offer.objects.get()
    assert (offer.resell_enabled, offer.resell_commission_percent, offer.resell_description) == (
        True,
        30,
        "Earn 30% on every sale.",
    )


# --- Publishing, status and the list -------------------------------------------------------------


def test_publishing_needs_a_group_and_a_thumbnail(staff_client: Client) -> None:
    offer = factories.offer(status=Offer.Status.DRAFT, groups=[], thumbnail=False)
    page = staff_client.get(reverse("memberships:offer_edit", kwargs={"pk": offer.pk})).content.decode()
    assert "Choose at least one hub group under Community permissions." in page
    assert "Upload a thumbnail." in page
    response = staff_client.post(reverse("memberships:offer_publish", kwargs={"pk": offer.pk}), follow=True)
    body = response.content.decode()
    assert "Not published: Choose at least one hub group" in body
    assert "Not published: Upload a thumbnail." in body
    offer.refresh_from_db()
    assert offer.status == "draft"


def test_a_ready_free_offer_is_published_unpublished_and_archived(staff_client: Client) -> None:
    offer = factories.offer(status=Offer.Status.DRAFT)
    staff_client.post(reverse("memberships:offer_publish", kwargs={"pk": offer.pk}))
    offer.refresh_from_db()
    assert offer.status == "published"
    staff_client.post(reverse("memberships:offer_unpublish", kwargs={"pk": offer.pk}))
    offer.refresh_from_db()
    assert offer.status == "draft"
    staff_client.post(reverse("memberships:offer_archive", kwargs={"pk": offer.pk}))
    offer.refresh_from_db()
    assert offer.status == "archived"
    staff_client.get(reverse("memberships:dashboard_offers"))  # shows (and so clears) the messages
    current = staff_client.get(reverse("memberships:dashboard_offers")).content.decode()
    archived = staff_client.get(reverse("memberships:dashboard_offers") + "?status=archived").content.decode()
    edit_link = reverse("memberships:offer_edit", kwargs={"pk": offer.pk})
    assert edit_link not in current
    assert edit_link in archived


def test_duplicating_makes_a_draft_copy_with_the_same_groups(staff_client: Client) -> None:
    groups = [factories.group("Yoga"), factories.group("Weights")]
    offer = factories.offer(groups=groups, custom_code="<!-- pixel -->")
    response = staff_client.post(reverse("memberships:offer_duplicate", kwargs={"pk": offer.pk}))
    copy = Offer.objects.exclude(pk=offer.pk).get()
    assert response.url == reverse("memberships:offer_edit", kwargs={"pk": copy.pk})
    assert (copy.title, copy.status, copy.slug) == ("Copy of Inner Circle", "draft", "copy-of-inner-circle")
    assert set(copy.hub_groups.all()) == set(groups)
    assert copy.thumbnail.name == offer.thumbnail.name
    assert copy.custom_code == "<!-- pixel -->"


def test_the_offers_list_shows_status_price_buyers_and_links(staff_client: Client, django_assert_num_queries) -> None:
    free = factories.offer(title="Free Lounge")
    paid = factories.offer(
        title="Pro Pass", status=Offer.Status.DRAFT, pricing="recurring", price_amount=1900, interval="month"
    )
    for _ in range(3):
        factories.buyer(free)
    # The user, the buyer counts, the offers, their groups (the session is in the cache).
    with django_assert_num_queries(4):
        response = staff_client.get(reverse("memberships:dashboard_offers"))
    rows = response.content.decode()
    assert "Free Lounge" in rows
    assert "Pro Pass" in rows
    assert "$19.00 / month" in rows
    assert ">Published<" in rows
    assert ">Draft<" in rows
    assert "<td>3</td>" in rows
    assert reverse("memberships:offer_page", kwargs={"slug": paid.slug}) in rows
    for _ in range(5):
        factories.offer(title="More")
    with django_assert_num_queries(3):  # the counts are cached (core/figures.py)
        staff_client.get(reverse("memberships:dashboard_offers"))


def test_a_new_buyer_shows_in_the_offers_list_on_the_next_look(
    staff_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    free = factories.offer(title="Free Lounge")
    assert "<td>0</td>" in staff_client.get(reverse("memberships:dashboard_offers")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        offer_claim_free(offer=free, email="new@example.com")
    assert "<td>1</td>" in staff_client.get(reverse("memberships:dashboard_offers")).content.decode()


def test_members_cannot_reach_the_editor(client: Client, member: User) -> None:
    offer = factories.offer()
    client.force_login(member)
    assert client.get(reverse("memberships:offer_edit", kwargs={"pk": offer.pk})).status_code == 403
    assert client.post(reverse("memberships:offer_publish", kwargs={"pk": offer.pk})).status_code == 403
    assert client.post(CREATE_URL, form_data()).status_code == 403
    assert not Offer.objects.exclude(pk=offer.pk).exists()


# --- Email ---------------------------------------------------------------------------------------


def test_send_me_a_test_emails_the_current_wording_without_saving(staff_client: Client, owner: User) -> None:
    response = staff_client.post(
        CREATE_URL,
        form_data(
            title="Yoga Club",
            action="test_email",
            confirmation_subject="Welcome to {{ offer_title }}",
            confirmation_body="Hi {{ buyer_name }} <b>friend</b>",
        ),
    )
    assert response.status_code == 200
    assert not Offer.objects.exists()
    assert f"A test email is on its way to {owner.email}" in response.content.decode()
    [message] = mail.outbox
    assert message.to == [owner.email]
    assert message.subject == "[Test] Welcome to Yoga Club"
    assert "Hi Olive Owner <b>friend</b>" in message.body
    html = message.alternatives[0][0]
    assert "Hi Olive Owner &lt;b&gt;friend&lt;/b&gt;" in html


def test_the_editor_offers_a_live_preview_with_the_default_wording(staff_client: Client) -> None:
    body = staff_client.get(CREATE_URL).content.decode()
    assert 'id="email-preview"' in body
    assert "You&#x27;re in: {{ offer_title }}" in body
    assert "offer_editor.js" in body


def test_a_published_offer_keeps_meeting_the_publish_rules(staff_client: Client) -> None:
    offer = factories.offer()
    url = reverse("memberships:offer_edit", kwargs={"pk": offer.pk})
    response = staff_client.post(url, form_data(pricing="one_time", price="10"))
    assert errors_of(response) == {
        "hub_groups": ["A published offer needs at least one hub group. Unpublish it first to remove them all."],
        "pricing": [
            "Connect a Stripe account (Settings > Integrations) before making a published offer paid, "
            "or unpublish it first."
        ],
    }
    offer.refresh_from_db()
    assert offer.is_free
    assert offer.hub_groups.exists()


@pytest.mark.parametrize("groups", [1, 30])
def test_the_editor_runs_a_fixed_number_of_queries(
    staff_client: Client, django_assert_num_queries, groups: int
) -> None:
    offer = factories.offer(groups=[factories.group() for _ in range(groups)])
    for _ in range(groups):
        factories.buyer(offer)
    # 9 with the one that asks billing whether a Stripe account is connected.
    with django_assert_num_queries(9):
        response = staff_client.get(reverse("memberships:offer_edit", kwargs={"pk": offer.pk}))
    assert response.status_code == 200


def test_an_address_taken_at_the_same_moment_is_a_form_error_not_a_crash(db: None) -> None:
    from memberships import services

    first = factories.offer(title="First")
    second = factories.offer(title="Second")
    with pytest.raises(services.OfferSlugTaken):
        services.offer_update(offer=second, fields=services.OfferFields(title="Second"), hub_groups=[], slug=first.slug)
