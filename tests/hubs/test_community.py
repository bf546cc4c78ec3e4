"""The member side: the community home, group pages, the paywall and its upsells, the home page."""

from __future__ import annotations

from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.models import User
from hubs import selectors, services
from hubs.models import HubGroup, Post
from tests import factories
from tests.hubs.conftest import first_hub


def test_the_access_rule_is_one_query_memoised_on_the_request(
    rf, member: User, private_group: HubGroup, public_group: HubGroup, django_assert_num_queries
) -> None:
    factories.access_grant(member, private_group)
    request = rf.get("/")
    with django_assert_num_queries(1):
        assert selectors.can_enter(user=member, group=private_group, request=request)
        assert selectors.can_enter(user=member, group=public_group, request=request)
        assert selectors.accessible_group_ids(user=member, request=request) == {private_group.pk, public_group.pk}


def test_a_url_upsell_sends_users_without_access_to_the_outside_page(
    client: Client, member: User, private_group: HubGroup
) -> None:
    services.hub_group_update(
        group=private_group,
        name=private_group.name,
        description=private_group.description,
        permission="private",
        upsell="url",
        upsell_cta="Join on our site",
        upsell_url="https://example.com/join",
    )
    client.force_login(member)
    body = client.get(private_group.get_absolute_url()).content.decode()
    assert 'href="https://example.com/join"' in body
    assert "Join on our site" in body


def test_a_popup_upsell_leads_to_the_offer_page(client: Client, member: User, private_group: HubGroup) -> None:
    offer = factories.offer(groups=(private_group,))
    services.hub_group_update(
        group=private_group,
        name=private_group.name,
        description=private_group.description,
        permission="private",
        upsell="popup",
        extras={"upsell_offer": offer},
        upsell_cta="Unlock the Inner Circle",
        upsell_description="Weekly calls and the archive.",
    )
    client.force_login(member)
    response = client.get(first_hub(private_group).get_absolute_url())
    assert response.status_code == 403
    body = response.content.decode()
    assert "Unlock the Inner Circle" in body
    assert "Weekly calls and the archive." in body
    assert f'href="{reverse("memberships:offer_page", kwargs={"slug": offer.slug})}"' in body


def test_a_popup_upsell_for_an_unpublished_offer_is_not_shown(
    client: Client, member: User, private_group: HubGroup
) -> None:
    offer = factories.offer("Draft Membership", groups=(private_group,), status="draft")
    services.hub_group_update(
        group=private_group,
        name=private_group.name,
        description="",
        permission="private",
        upsell="popup",
        extras={"upsell_offer": offer},
        upsell_cta="Unlock",
    )
    client.force_login(member)
    body = client.get(private_group.get_absolute_url()).content.decode()
    assert "Unlock" not in body
    assert "Ask the community's team how to join." in body


def test_an_open_group_page_lists_its_hubs_in_order(client: Client, member: User, public_group: HubGroup) -> None:
    services.hub_create(group=public_group, name="Second hub")
    client.force_login(member)
    body = client.get(public_group.get_absolute_url()).content.decode()
    assert body.index("General") < body.index("Second hub")


def test_posts_are_paginated_newest_first(client: Client, member: User, public_group: HubGroup) -> None:
    hub = first_hub(public_group)
    for n in range(25):
        services.post_create(hub=hub, author=member, title=f"Post number {n:02d}", body="x")
    client.force_login(member)
    first = client.get(hub.get_absolute_url()).content.decode()
    assert "Post number 24" in first
    assert "Post number 04" not in first
    second = client.get(hub.get_absolute_url(), {"page": 2}).content.decode()
    assert "Post number 04" in second
    assert "Post number 24" not in second
    assert Post.objects.count() == 25


def test_a_members_home_lists_their_communities(
    client: Client, member: User, public_group: HubGroup, private_group: HubGroup, hidden_group: HubGroup
) -> None:
    client.force_login(member)
    body = client.get(reverse("accounts:home")).content.decode()
    assert "Open Lounge" in body
    assert "Inner Circle" not in body
    factories.access_grant(member, private_group)
    body = client.get(reverse("accounts:home")).content.decode()
    assert "Inner Circle" in body
    assert "Team Room" not in body


def test_the_demo_community_is_seeded_once(db: None) -> None:
    call_command("seed_demo")
    call_command("seed_demo")
    seeded = list(HubGroup.objects.filter(slug__in=["welcome", "inner-circle", "team-room"]))
    assert [(g.slug, g.permission) for g in seeded] == [
        ("welcome", "public"),
        ("inner-circle", "private"),
        ("team-room", "hidden"),
    ]
    assert Post.objects.count() == 3
    assert all(group.hubs.exists() for group in HubGroup.objects.all())


def test_the_cached_community_home_follows_every_change(
    client: Client, member: User, owner: User, private_group: HubGroup
) -> None:
    from memberships.models import Entitlement

    client.force_login(member)
    page = client.get(reverse("hubs:community")).content.decode()
    assert "Locked" in page
    # A grant opens the group at once, for this member only.
    made = factories.access_grant(member, private_group)
    assert "Locked" not in client.get(reverse("hubs:community")).content.decode()
    services.access_grant_revoke(grant=made, revoked_by=None)
    assert "Locked" in client.get(reverse("hubs:community")).content.decode()
    # So does a purchase.
    Entitlement.objects.create(user=member, offer=factories.offer(groups=(private_group,)), source="free")
    assert "Locked" not in client.get(reverse("hubs:community")).content.decode()
    # Creators' edits show: a new hub, a renamed group, a deleted hub.
    hub = services.hub_create(group=private_group, name="Fresh hub")
    assert "Fresh hub" in client.get(reverse("hubs:community")).content.decode()
    services.hub_update(hub=hub, name="Renamed hub", description="")
    assert "Renamed hub" in client.get(reverse("hubs:community")).content.decode()
    services.hub_delete(hub=hub)
    assert "Renamed hub" not in client.get(reverse("hubs:community")).content.decode()
    services.hub_group_update(group=private_group, name="New name", description="", permission="private")
    assert "New name" in client.get(reverse("hubs:community")).content.decode()
    second = services.hub_group_create(name="Second group", permission="public")
    page = client.get(reverse("hubs:community")).content.decode()
    assert page.index("New name") < page.index("Second group")
    services.hub_group_move(group=second, direction="up")
    page = client.get(reverse("hubs:community")).content.decode()
    assert page.index("Second group") < page.index("New name")


def test_the_community_home_works_without_its_cache(
    client: Client, member: User, public_group: HubGroup, monkeypatch
) -> None:
    class BrokenCache:
        def get(self, key: str) -> None:
            raise ConnectionError("cache down")

        def set(self, key: str, value: str, timeout: int) -> None:
            raise ConnectionError("cache down")

    monkeypatch.setattr("hubs.views.cache", BrokenCache())
    client.force_login(member)
    response = client.get(reverse("hubs:community"))
    assert response.status_code == 200
    assert "Open Lounge" in response.content.decode()


def test_a_popup_upsell_for_an_offer_that_stopped_selling_the_group_is_not_shown(
    client: Client, member: User, private_group: HubGroup
) -> None:
    offer = factories.offer("Yoga Pass", groups=(private_group,))
    services.hub_group_update(
        group=private_group,
        name=private_group.name,
        description="",
        permission="private",
        upsell="popup",
        extras={"upsell_offer": offer},
        upsell_cta="Buy the Yoga Pass",
        upsell_description="",
    )
    offer.hub_groups.set([factories.group("Weights")])  # the creator changed what the offer sells
    client.force_login(member)
    body = client.get(first_hub(private_group).get_absolute_url()).content.decode()
    assert "Buy the Yoga Pass" not in body
    assert reverse("memberships:offer_page", kwargs={"slug": offer.slug}) not in body
