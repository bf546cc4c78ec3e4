from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import User
from hubs.models import Post

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_creator_opens_a_private_group_to_one_member_and_not_another(
    page, new_page, log_in, owner: User, member: User, outsider: User
) -> None:
    # The creator creates a private group with a hub.
    log_in(page, owner)
    page.goto("/dashboard/community/")
    page.get_by_role("link", name="New hub group").click()
    page.get_by_label("Name", exact=True).fill("Inner Circle")
    page.get_by_label("Description (optional)", exact=True).fill("Weekly deep dives.")
    page.get_by_label("Private").check()
    page.get_by_role("button", name="Save").click()
    page.get_by_text("is created").wait_for()
    hub_form = page.locator("form", has=page.get_by_role("button", name="Add hub"))
    hub_form.get_by_label("Name", exact=True).fill("Deep dives")
    hub_form.get_by_role("button", name="Add hub").click()
    page.get_by_text("The hub “Deep dives” is created.").wait_for()

    # ...and grants the member access from the Users page.
    page.get_by_label("Dashboard").get_by_role("link", name="Users").click()
    page.get_by_placeholder("Search by name or email").fill("mia")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="member@example.com").click()
    page.get_by_label("Hub group").select_option(label="Inner Circle")
    page.get_by_label("Note").fill("Beta tester")
    page.get_by_role("button", name="Grant access").click()
    page.get_by_text("now has access to “Inner Circle”").wait_for()

    # The member finds the group in their communities and posts in the hub.
    member_page = new_page()
    log_in(member_page, member)
    member_page.goto("/home/")
    member_page.get_by_role("link", name="Inner Circle").click()
    member_page.get_by_role("link", name="Deep dives").click()
    member_page.get_by_label("Post").fill("Hello **circle**")
    member_page.get_by_role("button", name="Post", exact=True).click()
    member_page.get_by_text("Your post is published.").wait_for()
    assert member_page.locator(".post-body strong", has_text="circle").is_visible()
    assert Post.objects.filter(author=member, body="Hello **circle**").exists()

    # A second member sees the paywall instead of the post.
    outsider_page = new_page()
    log_in(outsider_page, outsider)
    outsider_page.goto("/community/")
    assert outsider_page.get_by_text("Locked").is_visible()
    response = outsider_page.goto("/community/inner-circle/deep-dives/")
    assert response.status == 403
    assert outsider_page.get_by_role("heading", name="Inner Circle").is_visible()
    assert outsider_page.get_by_text("This hub group is for members only.").is_visible()
    assert outsider_page.get_by_text("Hello").count() == 0


def test_the_group_form_shows_only_the_upsell_fields_that_apply(page, log_in, owner: User) -> None:
    log_in(page, owner)
    page.goto("/dashboard/community/groups/new/")
    page.get_by_label("Name", exact=True).fill("Yoga")
    upsell = page.get_by_label("Upsell (optional)", exact=True)
    assert upsell.count() == 1
    page.get_by_label("Public").check()
    expect(upsell).to_be_hidden()
    page.get_by_label("Private").check()
    page.get_by_label("Upsell (optional)", exact=True).select_option("url")
    expect(page.get_by_label("Upsell URL")).to_be_visible()
    expect(page.get_by_label("Access-granting offer")).to_be_hidden()
    page.get_by_label("Paywall call-to-action text").fill("Join Yoga")
    page.get_by_label("Upsell URL").fill("ftp://example.com/yoga")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Enter a web address starting with http:// or https://.")).to_be_visible()
    assert page.get_by_label("Paywall call-to-action text").input_value() == "Join Yoga"
    page.get_by_label("Upsell URL").fill("https://example.com/yoga")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("is created").wait_for()
