"""The Community page: creators create, edit, reorder and delete hub groups and hubs."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts.models import User
from hubs.models import Hub, HubGroup
from memberships.selectors import upsell_offer_for
from tests import factories
from tests.hubs.conftest import first_hub


def _png(size: tuple[int, int] = (8, 8)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, "purple").save(buffer, "PNG")
    return SimpleUploadedFile("icon.png", buffer.getvalue(), content_type="image/png")


GROUP = {"name": "Weight Training", "description": "Lift together.", "permission": "private", "upsell": ""}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path


def test_a_creator_creates_a_private_group(client: Client, owner: User) -> None:
    client.force_login(owner)
    response = client.post(reverse("hubs:dashboard_group_create"), GROUP)
    group = HubGroup.objects.get()
    assert response.url == reverse("hubs:dashboard_group", kwargs={"pk": group.pk})
    assert (group.name, group.slug, group.permission) == ("Weight Training", "weight-training", "private")
    listing = client.get(reverse("hubs:dashboard_community")).content.decode()
    assert "Weight Training" in listing
    assert "Private" in listing


def test_two_groups_with_one_name_get_distinct_addresses(client: Client, owner: User) -> None:
    client.force_login(owner)
    client.post(reverse("hubs:dashboard_group_create"), GROUP)
    client.post(reverse("hubs:dashboard_group_create"), GROUP)
    assert sorted(HubGroup.objects.values_list("slug", flat=True)) == ["weight-training", "weight-training-2"]


def test_a_group_without_a_name_gets_a_clear_message_and_keeps_the_description(client: Client, owner: User) -> None:
    client.force_login(owner)
    response = client.post(reverse("hubs:dashboard_group_create"), {**GROUP, "name": "  "})
    assert response.status_code == 200
    body = response.content.decode()
    assert "This field is required." in body or "Give the group a name." in body
    assert "Lift together." in body
    assert not HubGroup.objects.exists()


def test_a_url_upsell_must_be_http_or_https(client: Client, owner: User) -> None:
    client.force_login(owner)
    data = {**GROUP, "upsell": "url", "upsell_cta": "Join now", "upsell_url": "ftp://files.example.com/join"}
    response = client.post(reverse("hubs:dashboard_group_create"), data)
    body = response.content.decode()
    assert "starting with http:// or https://" in body
    assert "Join now" in body
    data["upsell_url"] = "javascript:alert(1)"
    assert "Enter a valid URL." in client.post(reverse("hubs:dashboard_group_create"), data).content.decode()
    assert not HubGroup.objects.exists()
    data["upsell_url"] = "https://example.com/join"
    client.post(reverse("hubs:dashboard_group_create"), data)
    group = HubGroup.objects.get()
    assert (group.upsell, group.upsell_url, group.upsell_cta) == ("url", "https://example.com/join", "Join now")


def test_a_popup_upsell_needs_an_offer_that_sells_the_group(client: Client, owner: User) -> None:
    client.force_login(owner)
    client.post(reverse("hubs:dashboard_group_create"), GROUP)
    group = HubGroup.objects.get()
    unrelated = factories.offer("Other Thing")
    url = reverse("hubs:dashboard_group", kwargs={"pk": group.pk})
    data = {**GROUP, "upsell": "popup", "upsell_offer": unrelated.pk, "upsell_cta": "Unlock", "upsell_description": "d"}
    assert "does not give access to this group" in client.post(url, data).content.decode()
    selling = factories.offer("Weight Training Membership", groups=(group,))
    response = client.post(url, {**data, "upsell_offer": selling.pk})
    assert response.status_code == 302
    group.refresh_from_db()
    assert (group.upsell, upsell_offer_for(group=group), group.upsell_cta) == ("popup", selling, "Unlock")


def test_a_public_group_drops_its_upsell(client: Client, owner: User) -> None:
    client.force_login(owner)
    data = {**GROUP, "permission": "public", "upsell": "url", "upsell_cta": "x", "upsell_url": "https://e.com"}
    client.post(reverse("hubs:dashboard_group_create"), data)
    group = HubGroup.objects.get()
    assert (group.upsell, group.upsell_url) == ("", "")


def test_renaming_a_group_keeps_its_address(client: Client, owner: User, private_group: HubGroup) -> None:
    client.force_login(owner)
    url = reverse("hubs:dashboard_group", kwargs={"pk": private_group.pk})
    client.post(url, {**GROUP, "name": "Renamed"})
    private_group.refresh_from_db()
    assert (private_group.name, private_group.slug) == ("Renamed", "inner-circle")


def test_groups_are_reordered_with_move_buttons(client: Client, owner: User) -> None:
    a, b, c = factories.group("A"), factories.group("B"), factories.group("C")
    client.force_login(owner)
    client.post(reverse("hubs:dashboard_group_move", kwargs={"pk": c.pk}), {"direction": "up"})
    assert list(HubGroup.objects.values_list("name", flat=True)) == ["A", "C", "B"]
    client.post(reverse("hubs:dashboard_group_move", kwargs={"pk": a.pk}), {"direction": "up"})
    client.post(reverse("hubs:dashboard_group_move", kwargs={"pk": a.pk}), {"direction": "down"})
    assert list(HubGroup.objects.values_list("name", flat=True)) == ["C", "A", "B"]
    assert client.post(reverse("hubs:dashboard_group_move", kwargs={"pk": b.pk}), {"direction": "x"}).status_code == 404


def test_deleting_a_group_an_offer_still_sells_is_refused(client: Client, owner: User, private_group: HubGroup) -> None:
    factories.offer("Inner Circle Membership", groups=(private_group,), status="draft")
    client.force_login(owner)
    url = reverse("hubs:dashboard_group_delete", kwargs={"pk": private_group.pk})
    assert "cannot be deleted: it is sold by" in client.get(url).content.decode()
    response = client.post(url, follow=True)
    assert "is sold by “Inner Circle Membership”" in response.content.decode()
    assert HubGroup.objects.filter(pk=private_group.pk).exists()


def test_a_group_only_an_archived_offer_sold_can_be_deleted(
    client: Client, owner: User, private_group: HubGroup
) -> None:
    offer = factories.offer("Old Membership", groups=(private_group,), status="archived")
    client.force_login(owner)
    url = reverse("hubs:dashboard_group_delete", kwargs={"pk": private_group.pk})
    assert "1 hub " in client.get(url).content.decode()
    response = client.post(url)
    assert response.url == reverse("hubs:dashboard_community")
    assert not HubGroup.objects.exists()
    assert not Hub.objects.exists()
    assert offer.hub_groups.count() == 0


def test_a_creator_adds_a_hub_with_an_icon(client: Client, owner: User, private_group: HubGroup) -> None:
    client.force_login(owner)
    url = reverse("hubs:dashboard_hub_create", kwargs={"pk": private_group.pk})
    response = client.post(url, {"hub-name": "Form checks", "hub-description": "Post your lifts", "hub-icon": _png()})
    assert response.status_code == 302
    hub = Hub.objects.get(name="Form checks")
    assert hub.icon.name.startswith("hubs/icons/")
    assert hub.icon.storage.exists(hub.icon.name)
    client.force_login(owner)
    assert hub.icon.url in client.get(private_group.get_absolute_url()).content.decode()


def test_a_file_that_is_not_an_image_is_refused_with_a_message(
    client: Client, owner: User, private_group: HubGroup
) -> None:
    client.force_login(owner)
    url = reverse("hubs:dashboard_hub_create", kwargs={"pk": private_group.pk})
    bogus = SimpleUploadedFile("icon.png", b"not an image", content_type="image/png")
    response = client.post(url, {"hub-name": "Form checks", "hub-icon": bogus})
    assert response.status_code == 400
    body = response.content.decode()
    assert "This file is not a JPEG, PNG or WebP image we can read." in body
    assert 'value="Form checks"' in body
    assert not Hub.objects.filter(name="Form checks").exists()


def _gif(frames: int = 1) -> bytes:
    pictures = [Image.new("P", (8, 8), colour) for colour in range(frames)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, "GIF", save_all=frames > 1, append_images=pictures[1:])
    return buffer.getvalue()


def _create_hub(client: Client, group: HubGroup, icon: SimpleUploadedFile):
    url = reverse("hubs:dashboard_hub_create", kwargs={"pk": group.pk})
    return client.post(url, {"hub-name": "Form checks", "hub-description": "Post your lifts", "hub-icon": icon})


def _refused(response, message: str) -> None:
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert 'value="Form checks"' in body  # what was typed is kept
    assert not Hub.objects.filter(name="Form checks").exists()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_an_icon_is_stored_re_encoded_as_a_small_webp(
    client: Client, owner: User, private_group: HubGroup, fmt: str
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), "purple").save(buffer, fmt)
    client.force_login(owner)
    response = _create_hub(client, private_group, SimpleUploadedFile(f"icon.{fmt.lower()}", buffer.getvalue()))
    assert response.status_code == 302
    hub = Hub.objects.get(name="Form checks")
    assert hub.icon.name.endswith(".webp")
    with hub.icon.open("rb") as stored, Image.open(stored) as image:
        assert (image.format, image.size) == ("WEBP", (96, 96))


def test_a_100_megapixel_png_bomb_is_refused_with_a_message(
    client: Client, owner: User, private_group: HubGroup
) -> None:
    from tests.core.test_images import png_header_only

    client.force_login(owner)
    response = _create_hub(client, private_group, SimpleUploadedFile("icon.png", png_header_only(10_000, 10_000)))
    _refused(response, "the most is 25 megapixels")


def test_gif_bytes_named_pdf_are_refused(client: Client, owner: User, private_group: HubGroup) -> None:
    client.force_login(owner)
    icon = SimpleUploadedFile("icon.pdf", _gif(), content_type="application/pdf")
    _refused(_create_hub(client, private_group, icon), "Only JPEG, PNG and WebP images can be uploaded.")


def test_an_animated_gif_is_refused(client: Client, owner: User, private_group: HubGroup) -> None:
    client.force_login(owner)
    icon = SimpleUploadedFile("icon.gif", _gif(frames=3), content_type="image/gif")
    _refused(_create_hub(client, private_group, icon), "Only JPEG, PNG and WebP images can be uploaded.")


def test_a_png_with_html_appended_is_stored_without_it(client: Client, owner: User, private_group: HubGroup) -> None:
    polyglot = _png().read() + b"<html><script>alert(document.cookie)</script></html>"
    client.force_login(owner)
    response = _create_hub(client, private_group, SimpleUploadedFile("icon.html", polyglot, content_type="text/html"))
    assert response.status_code == 302
    hub = Hub.objects.get(name="Form checks")
    assert hub.icon.name.endswith(".webp")
    with hub.icon.open("rb") as stored:
        content = stored.read()
    assert b"<script" not in content
    assert content.startswith(b"RIFF")


def test_a_refused_icon_on_edit_keeps_the_old_icon_and_the_typed_name(
    client: Client, owner: User, private_group: HubGroup
) -> None:
    from tests.core.test_images import png_header_only

    hub = first_hub(private_group)
    client.force_login(owner)
    url = reverse("hubs:dashboard_hub", kwargs={"pk": hub.pk})
    client.post(url, {"name": hub.name, "description": "", "icon": _png()})
    hub.refresh_from_db()
    old = hub.icon.name
    response = client.post(
        url,
        {"name": "Renamed", "description": "", "icon": SimpleUploadedFile("i.png", png_header_only(10_000, 10_000))},
    )
    body = response.content.decode()
    assert "the most is 25 megapixels" in body
    assert 'value="Renamed"' in body
    hub.refresh_from_db()
    assert hub.icon.name == old
    assert hub.name != "Renamed"


def test_a_creator_edits_a_hub_and_removes_its_icon(
    client: Client, owner: User, private_group: HubGroup, django_capture_on_commit_callbacks
) -> None:
    hub = first_hub(private_group)
    client.force_login(owner)
    url = reverse("hubs:dashboard_hub", kwargs={"pk": hub.pk})
    client.post(url, {"name": "Renamed hub", "description": "", "icon": _png()})
    hub.refresh_from_db()
    old = hub.icon.name
    assert hub.name == "Renamed hub"
    assert old
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"name": "Renamed hub", "description": "", "remove_icon": "on"})
    hub.refresh_from_db()
    assert not hub.icon
    assert not hub.icon.storage.exists(old)


def test_hubs_are_reordered_and_deleted(client: Client, owner: User, private_group: HubGroup) -> None:
    from hubs import services

    second = services.hub_create(group=private_group, name="Second")
    client.force_login(owner)
    client.post(reverse("hubs:dashboard_hub_move", kwargs={"pk": second.pk}), {"direction": "up"})
    assert list(private_group.hubs.order_by("position").values_list("name", flat=True)) == ["Second", "General"]
    client.post(reverse("hubs:dashboard_hub_delete", kwargs={"pk": second.pk}))
    assert list(private_group.hubs.values_list("name", flat=True)) == ["General"]


def test_members_cannot_manage_the_community(client: Client, member: User, private_group: HubGroup) -> None:
    client.force_login(member)
    assert client.post(reverse("hubs:dashboard_group_create"), GROUP).status_code == 403
    assert client.post(reverse("hubs:dashboard_group_delete", kwargs={"pk": private_group.pk})).status_code == 403
    assert HubGroup.objects.count() == 1


def test_the_community_page_runs_fixed_queries(client: Client, owner: User, django_assert_num_queries) -> None:
    from hubs import services

    client.force_login(owner)
    services.hub_create(group=factories.group("Group 0"), name="Extra")
    with django_assert_num_queries(3):  # user, groups, hubs (the session comes from the cache)
        client.get(reverse("hubs:dashboard_community"))
    for n in range(1, 30):
        services.hub_create(group=factories.group(f"Group {n}"), name="Extra")
    with django_assert_num_queries(3):
        response = client.get(reverse("hubs:dashboard_community"))
    assert response.content.decode().count("Extra") == 30


def test_names_without_latin_letters_still_get_an_address(owner: User) -> None:
    from hubs import services

    group = services.hub_group_create(name="ヨガ", permission="public")
    hub = services.hub_create(group=group, name="瞑想")
    assert (group.slug, hub.slug) == ("group", "hub")
    assert services.hub_group_create(name="ヨガ", permission="public").slug == "group-2"
