"""The Content-Security-Policy in a real browser: pages, the Django admin and the behaviour that
moved out of inline handlers all work, nothing the site serves is refused, and forms still reach
the pages they redirect to."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import User
from hubs.models import HubGroup, Post
from memberships import services
from tests import factories
from tests.factories import stored_image

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


@pytest.fixture
def page(page: Any) -> Any:
    """Each page records the policy's violations from its first document on."""
    page.add_init_script(WATCH_VIOLATIONS)
    return page


def test_the_django_admin_works_under_the_policy(page: Any, log_in: Any, owner: User) -> None:
    User.objects.filter(pk=owner.pk).update(is_superuser=True)
    log_in(page, owner)
    page.goto("/admin/")
    assert _violations(page) == []
    page.goto(f"/admin/accounts/user/{owner.pk}/change/")
    page.get_by_role("button", name="Save", exact=True).first.wait_for()
    assert _violations(page) == []
    page.get_by_role("button", name="Save", exact=True).first.click()
    page.get_by_text("was changed successfully").wait_for()
    assert _violations(page) == []


def test_deleting_a_post_still_asks_first(page: Any, log_in: Any, owner: User) -> None:
    group = factories.group("Inner Circle", HubGroup.Permission.PRIVATE)
    post = factories.post(group, owner)
    log_in(page, owner)
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


def test_the_stripe_events_filter_applies_when_chosen(page: Any, log_in: Any, owner: User) -> None:
    log_in(page, owner)
    page.goto(reverse("billing:dashboard_webhook_events"))
    page.get_by_label("Status").select_option("failed")
    page.wait_for_url("**/events/?status=failed")
    assert _violations(page) == []


def test_the_group_editor_and_the_offer_editor_run_their_scripts(page: Any, log_in: Any, owner: User) -> None:
    log_in(page, owner)
    page.goto("/dashboard/community/groups/new/")
    page.get_by_label("Public").check()
    expect(page.locator("[data-upsell-fieldset]")).to_be_hidden()
    page.get_by_label("Private").check()
    expect(page.locator("[data-upsell-fieldset]")).to_be_visible()
    page.goto("/dashboard/offers/new/membership/")
    page.get_by_label("Title").fill("Yoga Circle")
    assert page.locator("#email-preview-subject").text_content() == "You're in: Yoga Circle"
    assert _violations(page) == []


def test_a_script_injected_into_a_page_is_refused(page: Any, log_in: Any, owner: User) -> None:
    log_in(page, owner)
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true;";
          document.body.appendChild(script);
          document.body.insertAdjacentHTML("beforeend", '<img src="x:" onerror="window.injected = true">');
        }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.injected") is None
    assert {"script-src-elem", "script-src-attr"} <= {violation.split()[0] for violation in _violations(page)}


def test_a_free_claim_still_lands_on_the_creators_custom_link(page: Any, settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    offer = services.offer_publish(
        offer=services.offer_create(
            fields=services.OfferFields(
                title="Free Circle", redirect_enabled=True, redirect_url="https://thanks.example.org/welcome"
            ),
            hub_groups=[factories.group("Circle")],
            thumbnail=stored_image(),
        )
    )
    page.context.route("https://thanks.example.org/**", lambda route: route.fulfill(body="<h1>Thank you!</h1>"))
    page.add_init_script(WATCH_VIOLATIONS)
    for _ in range(2):  # rendered, then from the cache
        page.goto(reverse("billing:checkout", kwargs={"slug": offer.slug}))
    page.get_by_label("Your name").fill("Bea Buyer")
    page.get_by_label("Email address").fill("bea@example.com")
    page.get_by_role("button", name="Join for free").click()
    page.wait_for_url("https://thanks.example.org/welcome")
    assert page.get_by_role("heading", name="Thank you!").is_visible()
