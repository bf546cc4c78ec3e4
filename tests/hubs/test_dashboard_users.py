"""The Users page: find a user, see every source of their access, grant and revoke."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from hubs.models import AccessGrant, AccessGrantEvent, HubGroup
from tests import factories
from tests.hubs.conftest import first_hub


def _user_url(user: User) -> str:
    return reverse("hubs:dashboard_user", kwargs={"pk": user.pk})


def test_staff_search_users_by_name_or_email(client: Client, owner: User, member: User, outsider: User) -> None:
    client.force_login(owner)
    by_name = client.get(reverse("hubs:dashboard_users"), {"q": "mia"}).content.decode()
    assert "member@example.com" in by_name
    assert "outsider@example.com" not in by_name
    by_email = client.get(reverse("hubs:dashboard_users"), {"q": "OUTSIDER@"}).content.decode()
    assert "outsider@example.com" in by_email
    assert "member@example.com" not in by_email
    nobody = client.get(reverse("hubs:dashboard_users"), {"q": "zzz"}).content.decode()
    assert "No user matches “zzz”" in nobody


def test_the_users_page_runs_fixed_queries(client: Client, owner: User, django_assert_num_queries) -> None:
    User.objects.bulk_create(User(email=f"user{i}@example.com", full_name=f"User {i}") for i in range(120))
    client.force_login(owner)
    with django_assert_num_queries(3):  # user, count, page (the session comes from the cache)
        response = client.get(reverse("hubs:dashboard_users"))
    assert response.content.decode().count("/dashboard/users/") >= 50


def test_staff_grant_a_private_group_with_a_note_and_expiry(
    client: Client, owner: User, member: User, private_group: HubGroup
) -> None:
    client.force_login(owner)
    expires = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        _user_url(member), {"group": private_group.pk, "note": "Podcast guest", "expires_at": expires}
    )
    assert response.status_code == 302
    made = AccessGrant.objects.get()
    assert (made.user, made.group, made.note, made.granted_by) == (member, private_group, "Podcast guest", owner)
    assert made.expires_at is not None
    assert made.expires_at > timezone.now() + timedelta(days=29)
    event = AccessGrantEvent.objects.get()
    assert (event.action, event.actor, event.note) == ("granted", owner, "Podcast guest")
    page = client.get(_user_url(member)).content.decode()
    assert "Podcast guest" in page
    assert "Active" in page
    client.force_login(member)
    assert client.get(first_hub(private_group).get_absolute_url()).status_code == 200


def test_a_grant_in_the_past_is_refused_and_the_note_kept(
    client: Client, owner: User, member: User, private_group: HubGroup
) -> None:
    client.force_login(owner)
    response = client.post(
        _user_url(member), {"group": private_group.pk, "note": "Typo date", "expires_at": "2001-01-01T10:00"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose a moment in the future." in body
    assert 'value="Typo date"' in body
    assert not AccessGrant.objects.exists()


def test_only_private_groups_can_be_granted(
    client: Client, owner: User, member: User, public_group: HubGroup, hidden_group: HubGroup
) -> None:
    client.force_login(owner)
    for group in (public_group, hidden_group):
        response = client.post(_user_url(member), {"group": group.pk, "note": ""})
        assert "Choose one of the private groups." in response.content.decode()
    assert not AccessGrant.objects.exists()


def test_granting_again_updates_the_live_grant_and_records_it(
    client: Client, owner: User, member: User, private_group: HubGroup
) -> None:
    client.force_login(owner)
    client.post(_user_url(member), {"group": private_group.pk, "note": "first"})
    client.post(_user_url(member), {"group": private_group.pk, "note": "second"})
    assert AccessGrant.objects.get().note == "second"
    assert list(AccessGrantEvent.objects.order_by("id").values_list("action", "note")) == [
        ("granted", "first"),
        ("updated", "second"),
    ]


def test_staff_revoke_a_grant_and_the_history_says_who_and_when(
    client: Client, owner: User, member: User, private_group: HubGroup
) -> None:
    made = factories.access_grant(member, private_group)
    client.force_login(owner)
    url = reverse("hubs:dashboard_grant_revoke", kwargs={"pk": member.pk, "grant_id": made.pk})
    assert client.post(url).status_code == 302
    assert client.post(url).status_code == 302  # a second click changes nothing
    made.refresh_from_db()
    assert made.revoked_by == owner
    assert made.revoked_at is not None
    events = list(AccessGrantEvent.objects.order_by("id").values_list("action", "actor"))
    assert events == [("granted", None), ("revoked", owner.pk)]
    page = client.get(_user_url(member)).content.decode()
    assert "Revoked" in page
    assert "Grant history" in page
    client.force_login(member)
    assert client.get(first_hub(private_group).get_absolute_url()).status_code == 403


def test_a_grant_cannot_be_revoked_through_another_user(
    client: Client, owner: User, member: User, outsider: User, private_group: HubGroup
) -> None:
    made = factories.access_grant(member, private_group)
    client.force_login(owner)
    url = reverse("hubs:dashboard_grant_revoke", kwargs={"pk": outsider.pk, "grant_id": made.pk})
    assert client.post(url).status_code == 404
    made.refresh_from_db()
    assert made.revoked_at is None


def test_the_user_page_shows_purchases_and_grants_as_sources(
    client: Client, owner: User, member: User, private_group: HubGroup
) -> None:
    from memberships.models import Entitlement

    yoga = factories.group("Yoga")
    offer = factories.offer("Yoga Membership", groups=(yoga,))
    Entitlement.objects.create(user=member, offer=offer, source=Entitlement.Source.PURCHASE)
    factories.access_grant(member, private_group, expired=True)
    client.force_login(owner)
    page = client.get(_user_url(member)).content.decode()
    purchases = page.split('id="purchases-heading"', 1)[1].split("</section>", 1)[0]
    assert "Yoga Membership" in purchases
    assert "Yoga" in purchases
    assert "Active" in purchases
    grants = page.split('id="grants-heading"', 1)[1].split("</section>", 1)[0]
    assert "Inner Circle" in grants
    assert "Expired" in grants
    today = page.split('id="open-heading"', 1)[1].split("</section>", 1)[0]
    assert "Yoga" in today
    assert "Inner Circle" not in today


def test_members_cannot_grant_access(client: Client, member: User, outsider: User, private_group: HubGroup) -> None:
    client.force_login(member)
    assert client.post(_user_url(outsider), {"group": private_group.pk}).status_code == 403
    assert not AccessGrant.objects.exists()


def test_the_user_page_runs_fixed_queries(client: Client, owner: User, member: User, django_assert_num_queries) -> None:
    from memberships.models import Entitlement

    def page_queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert client.get(_user_url(member)).status_code == 200
        return len(queries)

    client.force_login(owner)
    group = factories.group("Group 0")
    factories.access_grant(member, group)
    offer = factories.offer("Offer 0", groups=(group,))
    Entitlement.objects.create(user=member, offer=offer, source="purchase")
    few = page_queries()
    for n in range(1, 15):
        group = factories.group(f"Group {n}")
        factories.access_grant(member, group, revoked=n % 2 == 0)
        offer = factories.offer(f"Offer {n}", groups=(group,))
        Entitlement.objects.create(user=member, offer=offer, source="purchase")
    with django_assert_num_queries(few):
        response = client.get(_user_url(member))
    assert response.content.decode().count("Offer ") >= 15
