"""Buyers' access follows the offer's hub groups, past buyers included."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from hubs.models import AccessGrant, HubGroup
from hubs.selectors import accessible_group_ids
from memberships import services
from memberships.models import Entitlement, Offer
from tests import factories
from tests.memberships.test_editor import form_data


def can_enter(user: User, group: HubGroup) -> bool:
    return group.pk in accessible_group_ids(user=User.objects.get(pk=user.pk))


def edit_url(offer) -> str:
    return reverse("memberships:offer_edit", kwargs={"pk": offer.pk})


def test_the_editor_shows_the_offers_current_values(client: Client, owner: User) -> None:
    yoga = factories.group("Yoga")
    offer = factories.offer(
        title="Weight Training", groups=[yoga], pricing="one_time", price_amount=1250, status=Offer.Status.DRAFT
    )
    client.force_login(owner)
    body = client.get(edit_url(offer)).content.decode()
    assert 'value="Weight Training"' in body
    assert 'value="12.50"' in body
    assert f'value="{yoga.pk}"' in body
    assert "checked" in body


def test_adding_a_group_asks_first_then_gives_it_to_every_past_buyer(client: Client, owner: User) -> None:
    weights, yoga = factories.group("Weight Training"), factories.group("Yoga")
    offer = factories.offer(title="Weight Training", groups=[weights])
    buyers = [factories.buyer(offer) for _ in range(3)]
    assert not any(can_enter(buyer, yoga) for buyer in buyers)
    client.force_login(owner)

    first = client.post(edit_url(offer), form_data(title="Weight Training", hub_groups=[weights.pk, yoga.pk]))
    body = first.content.decode()
    assert first.status_code == 200
    assert "This change affects 3 buyers." in body
    assert "They all get <strong>Yoga</strong>." in body
    assert "Save and update 3 buyers" in body
    assert list(offer.hub_groups.all()) == [weights]  # nothing saved yet
    # At the top of the page, before the form and its sticky Save, with its own button that
    # submits the form (a page without JavaScript opens on it).
    assert body.index('id="groups-impact"') < body.index('<nav class="tabs"') < body.index('id="offer-form"')
    assert (
        '<button class="button primary" type="submit" form="offer-form" name="confirm_groups" value="1">'
        "Save and update 3 buyers</button>" in body
    )

    confirmed = client.post(
        edit_url(offer), form_data(title="Weight Training", hub_groups=[weights.pk, yoga.pk], confirm_groups="1")
    )
    assert confirmed.status_code == 302
    assert all(can_enter(buyer, yoga) for buyer in buyers)
    # Future buyers get it too.
    assert can_enter(factories.buyer(offer), yoga)


def test_removing_a_group_takes_it_only_from_buyers_without_another_source(client: Client, owner: User) -> None:
    weights, yoga = factories.group("Weight Training"), factories.group("Yoga")
    offer = factories.offer(groups=[weights, yoga])
    other_offer = factories.offer(title="Yoga Only", groups=[yoga])
    plain, granted, double = factories.buyer(offer), factories.buyer(offer), factories.buyer(offer)
    AccessGrant.objects.create(user=granted, group=yoga, granted_by=owner, note="Teacher")
    Entitlement.objects.create(user=double, offer=other_offer, source="free")
    client.force_login(owner)

    notice = client.post(edit_url(offer), form_data(hub_groups=[weights.pk])).content.decode()
    assert "This change affects 3 buyers." in notice
    assert "1 loses <strong>Yoga</strong>" in notice

    client.post(edit_url(offer), form_data(hub_groups=[weights.pk], confirm_groups="1"))
    assert not can_enter(plain, yoga)
    assert can_enter(granted, yoga)  # the manual grant still gives it
    assert can_enter(double, yoga)  # the other offer still gives it
    assert all(can_enter(buyer, weights) for buyer in (plain, granted, double))


def test_an_expired_or_revoked_grant_does_not_keep_access(owner: User) -> None:
    yoga = factories.group("Yoga")
    offer = factories.offer(groups=[yoga])
    expired, revoked = factories.buyer(offer), factories.buyer(offer)
    AccessGrant.objects.create(user=expired, group=yoga, expires_at=timezone.now() - timedelta(days=1))
    AccessGrant.objects.create(user=revoked, group=yoga, revoked_at=timezone.now())
    services.offer_update(offer=offer, hub_groups=[])
    assert not can_enter(expired, yoga)
    assert not can_enter(revoked, yoga)


def test_ended_entitlements_give_nothing_and_are_not_counted(client: Client, owner: User) -> None:
    weights, yoga = factories.group("Weights"), factories.group("Yoga")
    offer = factories.offer(groups=[weights])
    active = factories.buyer(offer)
    refunded = factories.buyer(offer)
    services.entitlement_end(entitlement=refunded.entitlements.get(), status=Entitlement.Status.REFUNDED)
    client.force_login(owner)
    notice = client.post(edit_url(offer), form_data(hub_groups=[weights.pk, yoga.pk])).content.decode()
    assert "This change affects 1 buyer." in notice
    client.post(edit_url(offer), form_data(hub_groups=[weights.pk, yoga.pk], confirm_groups="1"))
    assert can_enter(active, yoga)
    assert not can_enter(refunded, yoga)


def test_an_offer_without_buyers_saves_group_changes_at_once(client: Client, owner: User) -> None:
    offer = factories.offer()
    extra = factories.group("Extra")
    client.force_login(owner)
    response = client.post(edit_url(offer), form_data(hub_groups=[extra.pk]))
    assert response.status_code == 302
    assert list(offer.hub_groups.all()) == [extra]


def test_the_editor_knows_the_buyer_count_for_its_live_notice(client: Client, owner: User) -> None:
    offer = factories.offer()
    factories.buyer(offer)
    factories.buyer(offer)
    client.force_login(owner)
    body = client.get(edit_url(offer)).content.decode()
    assert 'data-buyers="2"' in body
    assert 'id="groups-live-notice"' in body


def test_a_new_thumbnail_survives_the_buyers_notice(client: Client, owner: User) -> None:
    from tests.memberships.conftest import upload

    weights, yoga = factories.group("Weights"), factories.group("Yoga")
    offer = factories.offer(groups=[weights])
    old_thumbnail = offer.thumbnail.name
    factories.buyer(offer)
    client.force_login(owner)
    notice = client.post(
        edit_url(offer),
        form_data(
            hub_groups=[weights.pk, yoga.pk], thumbnail=upload("new.jpg", factories.image_bytes("JPEG", (900, 900)))
        ),
    )
    assert "This change affects 1 buyer." in notice.content.decode()
    token = notice.context["form"].data["thumbnail_pending"]
    client.post(
        edit_url(offer), form_data(hub_groups=[weights.pk, yoga.pk], confirm_groups="1", thumbnail_pending=token)
    )
    offer.refresh_from_db()
    assert offer.thumbnail.name != old_thumbnail
    assert offer.thumbnail.name.startswith("offers/thumbnail-")
    assert set(offer.hub_groups.all()) == {weights, yoga}
