"""Behaviour that lives in static scripts, not inline handlers, in a real browser; and, once the
Content-Security-Policy applies, that nothing the site serves is refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from accounts.models import User
from hubs.models import HubGroup, Post
from tests.conftest import PASSWORD
from tests.hubs.conftest import add_post, make_group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Injected by the browser itself, so the page's policy does not apply to it.
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def _violations(page: Any) -> list[str]:
    return page.evaluate("window.__cspViolations")


def _log_in(page: Any, user: User) -> None:
    page.add_init_script(WATCH_VIOLATIONS)
    page.goto("/accounts/login/")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/")


def test_deleting_a_post_still_asks_first(page: Any, owner: User) -> None:
    group = make_group("Inner Circle", HubGroup.Permission.PRIVATE)
    post = add_post(group, owner)
    _log_in(page, owner)
    page.goto(reverse("hubs:post", kwargs={"group_slug": group.slug, "hub_slug": post.hub.slug, "post_id": post.pk}))
    asked: list[str] = []

    def answer(dialog: Any, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.get_by_role("button", name="Delete").first.click()
    page.wait_for_timeout(300)
    assert asked == ["Delete this post and its comments?"]
    assert Post.objects.filter(pk=post.pk).exists()

    page.once("dialog", lambda dialog: answer(dialog, True))
    page.get_by_role("button", name="Delete").first.click()
    page.get_by_text("The post is deleted.").wait_for()
    assert not Post.objects.filter(pk=post.pk).exists()
    assert _violations(page) == []


def test_the_stripe_events_filter_applies_when_chosen(page: Any, owner: User) -> None:
    _log_in(page, owner)
    page.goto(reverse("billing:dashboard_webhook_events"))
    page.get_by_label("Status").select_option("failed")
    page.wait_for_url("**/events/?status=failed")
    assert _violations(page) == []
