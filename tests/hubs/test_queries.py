"""Pages run a fixed number of queries, whatever the number of groups, hubs or posts."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from hubs.models import Comment, Hub, HubGroup, Post
from tests import factories

# User, the access rule, the community stamp; then groups and their hubs unless cached.
# (Sessions are read from the cache.)
COMMUNITY_HOME_QUERIES = 5
COMMUNITY_HOME_CACHED_QUERIES = 3
# User, hub with its group, the access rule, post count, the page of posts.
HUB_PAGE_QUERIES = 5
# User, the access rule, the groups entered; the offers with a partner program (affiliates'
# Become a Partner, which shows nothing more when there is none).
HOME_QUERIES = 4


def _groups(count: int, member: User) -> None:
    permissions = [HubGroup.Permission.PUBLIC, HubGroup.Permission.PRIVATE, HubGroup.Permission.HIDDEN]
    groups = HubGroup.objects.bulk_create(
        HubGroup(name=f"Group {i}", slug=f"group-{i}", permission=permissions[i % 3], position=i) for i in range(count)
    )
    Hub.objects.bulk_create(
        Hub(group=group, name=f"Hub {n}", slug=f"hub-{n}", position=n) for group in groups for n in range(2)
    )
    for group in groups:
        if group.permission == HubGroup.Permission.PRIVATE and group.pk % 2:
            factories.access_grant(member, group)


@pytest.mark.parametrize("count", [1, 300])
def test_the_community_home_runs_fixed_queries(
    client: Client, member: User, django_assert_num_queries, count: int
) -> None:
    _groups(count, member)
    client.force_login(member)
    with django_assert_num_queries(COMMUNITY_HOME_QUERIES):
        response = client.get(reverse("hubs:community"))
    assert response.status_code == 200
    assert response.content.decode().count('class="panel group-card') == len([i for i in range(count) if i % 3 != 2])


@pytest.mark.parametrize("count", [1, 300])
def test_the_members_home_runs_fixed_queries(
    client: Client, member: User, django_assert_num_queries, count: int
) -> None:
    _groups(count, member)
    client.force_login(member)
    with django_assert_num_queries(HOME_QUERIES):
        response = client.get(reverse("accounts:home"))
    assert response.status_code == 200
    assert "Group 0" in response.content.decode()


@pytest.mark.parametrize("count", [1, 1000])
def test_a_hub_page_runs_fixed_queries(
    client: Client, member: User, owner: User, django_assert_num_queries, count: int
) -> None:
    _groups(1, member)
    hub = Hub.objects.get(group__slug="group-0", slug="hub-0")
    authors = [member, owner]
    posts = Post.objects.bulk_create(
        Post(hub=hub, author=authors[i % 2], body=f"post {i}", body_html=f"<p>post number {i}</p>")
        for i in range(count)
    )
    Comment.objects.bulk_create(
        Comment(post=post, author=owner, body="hi", body_html="<p>hi</p>") for post in posts[-50:]
    )
    url = hub.get_absolute_url()
    client.force_login(member)
    with django_assert_num_queries(HUB_PAGE_QUERIES):
        response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('class="panel post"') == min(count, 20)
    assert "1 comment<" in body
    if count > 20:
        with django_assert_num_queries(HUB_PAGE_QUERIES):
            last = client.get(url + "?page=50")
        assert last.status_code == 200
        assert "post number 0<" in last.content.decode()


@pytest.mark.parametrize("count", [1, 200])
def test_a_post_page_runs_fixed_queries(
    client: Client, member: User, owner: User, django_assert_num_queries, count: int
) -> None:
    _groups(1, member)
    hub = Hub.objects.get(group__slug="group-0", slug="hub-0")
    post = Post.objects.create(hub=hub, author=owner, body="x", body_html="<p>x</p>")
    authors = [member, owner]
    Comment.objects.bulk_create(
        Comment(post=post, author=authors[i % 2], body="c", body_html=f"<p>comment {i}</p>") for i in range(count)
    )
    url = reverse("hubs:post", kwargs={"group_slug": "group-0", "hub_slug": "hub-0", "post_id": post.pk})
    client.force_login(member)
    # Session, user, hub with its group, the access rule, the post, comment count, the page of comments.
    with django_assert_num_queries(6):
        response = client.get(url)
    assert response.content.decode().count('class="comment"') == min(count, 50)
