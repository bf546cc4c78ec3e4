"""Posts and comments: Markdown made safe, authors edit their own, staff moderate any."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from hubs.models import Comment, HubGroup, Post
from tests import factories
from tests.hubs.conftest import first_hub


def _post_url(post: Post, name: str = "hubs:post") -> str:
    hub = post.hub
    return reverse(name, kwargs={"group_slug": hub.group.slug, "hub_slug": hub.slug, "post_id": post.pk})


@pytest.mark.parametrize(
    ("markdown", "forbidden"),
    [
        ("<script>alert('pwned')</script>Hello", "<script"),
        ('<img src="x" onerror="alert(1)">', "onerror"),
        ("[click me](javascript:alert(1))", "javascript:"),
        ('<a href="JaVaScRiPt:alert(1)">click</a>', "avascript:"),
        ("<svg><script>alert(1)</script></svg>", "alert(1)"),
        ('<iframe src="https://evil.example"></iframe>', "<iframe"),
        ('<p style="background:url(javascript:alert(1))">x</p>', "style="),
    ],
)
def test_posted_markup_renders_inert(
    client: Client, member: User, public_group: HubGroup, markdown: str, forbidden: str
) -> None:
    hub = first_hub(public_group)
    client.force_login(member)
    client.post(hub.get_absolute_url(), {"title": "", "body": markdown})
    post = Post.objects.get(hub=hub)
    assert post.body == markdown  # what the author typed is kept for editing
    page = client.get(hub.get_absolute_url()).content.decode()
    rendered = page.split('<div class="post-body">', 1)[1].split("</div>", 1)[0]
    assert forbidden.lower() not in rendered.lower()


def test_a_comment_with_a_script_renders_inert(client: Client, member: User, public_group: HubGroup) -> None:
    post = factories.post(public_group, member)
    client.force_login(member)
    response = client.post(_post_url(post), {"body": "nice <script>steal()</script> **work**"})
    assert response.status_code == 302
    page = client.get(_post_url(post)).content.decode()
    assert "steal()" not in page
    assert "<strong>work</strong>" in page


def test_markdown_is_rendered_and_links_are_marked_as_user_content(
    client: Client, member: User, public_group: HubGroup
) -> None:
    post = factories.post(public_group, member, "**Bold** and [a link](https://example.com)")
    assert "<strong>Bold</strong>" in post.body_html
    assert 'href="https://example.com"' in post.body_html
    assert 'rel="nofollow noopener noreferrer ugc"' in post.body_html


def test_an_empty_post_gets_a_message_and_keeps_the_title(client: Client, member: User, public_group: HubGroup) -> None:
    hub = first_hub(public_group)
    client.force_login(member)
    response = client.post(hub.get_absolute_url(), {"title": "My title", "body": "   "})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Write something before posting." in body
    assert 'value="My title"' in body
    assert not Post.objects.exists()


def test_a_too_long_post_keeps_what_was_typed(client: Client, member: User, public_group: HubGroup) -> None:
    hub = first_hub(public_group)
    client.force_login(member)
    text = "word " * 5000
    response = client.post(hub.get_absolute_url(), {"title": "", "body": text})
    assert response.status_code == 400
    assert "at most 20000 characters" in response.content.decode()
    assert text.strip()[:100] in response.content.decode()


def test_an_author_edits_their_own_post(client: Client, member: User, public_group: HubGroup) -> None:
    post = factories.post(public_group, member, "first draft")
    client.force_login(member)
    assert "first draft" in client.get(_post_url(post, "hubs:post_edit")).content.decode()
    response = client.post(_post_url(post, "hubs:post_edit"), {"title": "Better", "body": "*second* draft"})
    assert response.status_code == 302
    post.refresh_from_db()
    assert post.title == "Better"
    assert post.body_html == "<p><em>second</em> draft</p>"
    assert post.edited_at is not None
    assert "edited" in client.get(_post_url(post)).content.decode()


def test_another_member_cannot_edit_or_delete_a_post(
    client: Client, member: User, outsider: User, public_group: HubGroup
) -> None:
    post = factories.post(public_group, member, "mine")
    client.force_login(outsider)
    assert client.get(_post_url(post)).status_code == 200
    assert "Edit</a>" not in client.get(_post_url(post)).content.decode()
    assert client.get(_post_url(post, "hubs:post_edit")).status_code == 403
    assert client.post(_post_url(post, "hubs:post_edit"), {"body": "hacked"}).status_code == 403
    assert client.post(_post_url(post, "hubs:post_delete")).status_code == 403
    post.refresh_from_db()
    assert post.body == "mine"


def test_an_author_deletes_their_own_post_with_its_comments(
    client: Client, member: User, outsider: User, public_group: HubGroup
) -> None:
    post = factories.post(public_group, member)
    client.force_login(outsider)
    client.post(_post_url(post), {"body": "reply"})
    client.force_login(member)
    response = client.post(_post_url(post, "hubs:post_delete"))
    assert response.status_code == 302
    assert not Post.objects.exists()
    assert not Comment.objects.exists()


def test_staff_moderate_any_post_and_comment(client: Client, member: User, owner: User, public_group: HubGroup) -> None:
    post = factories.post(public_group, member, "spam spam")
    client.force_login(member)
    client.post(_post_url(post), {"body": "more spam"})
    comment = Comment.objects.get()
    client.force_login(owner)
    comment_kwargs = {
        "group_slug": public_group.slug,
        "hub_slug": post.hub.slug,
        "post_id": post.pk,
        "comment_id": comment.pk,
    }
    response = client.post(reverse("hubs:comment_edit", kwargs=comment_kwargs), {"body": "[removed]"})
    assert response.status_code == 302
    comment.refresh_from_db()
    assert comment.body == "[removed]"
    assert client.post(reverse("hubs:comment_delete", kwargs=comment_kwargs)).status_code == 302
    assert client.post(_post_url(post, "hubs:post_delete")).status_code == 302
    assert not Post.objects.exists()


def test_a_member_comments_and_edits_only_their_own_comment(
    client: Client, member: User, outsider: User, private_group: HubGroup
) -> None:
    factories.access_grant(member, private_group)
    factories.access_grant(outsider, private_group)
    post = factories.post(private_group, member)
    client.force_login(outsider)
    response = client.post(_post_url(post), {"body": "Great point"})
    comment = Comment.objects.get()
    assert response.url.endswith(f"#comment-{comment.pk}")
    client.force_login(member)
    kwargs = {"group_slug": private_group.slug, "hub_slug": post.hub.slug, "post_id": post.pk, "comment_id": comment.pk}
    assert client.post(reverse("hubs:comment_edit", kwargs=kwargs), {"body": "changed"}).status_code == 403
    assert client.post(reverse("hubs:comment_delete", kwargs=kwargs)).status_code == 403
    comment.refresh_from_db()
    assert comment.body == "Great point"


def test_commenting_in_a_locked_group_is_refused(
    client: Client, member: User, owner: User, private_group: HubGroup
) -> None:
    post = factories.post(private_group, owner)
    client.force_login(member)
    assert client.get(_post_url(post)).status_code == 403
    assert client.post(_post_url(post), {"body": "let me in"}).status_code == 403
    assert not Comment.objects.exists()


def test_a_post_from_another_hub_is_not_found(client: Client, member: User) -> None:
    one = factories.group("One", "public")
    two = factories.group("Two", "public")
    post = factories.post(one, member)
    client.force_login(member)
    url = reverse("hubs:post", kwargs={"group_slug": two.slug, "hub_slug": first_hub(two).slug, "post_id": post.pk})
    assert client.get(url).status_code == 404
