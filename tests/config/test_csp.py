"""The Content-Security-Policy of every page: scripts and styles run only from this site or with
the response's nonce, and forms go only here and to Stripe's hosted pages."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import User
from hubs.models import HubGroup
from memberships import services
from memberships.models import Offer
from tests import factories
from tests.factories import stored_image

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b([^>]*)>", re.IGNORECASE)


def directives(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_strict_policy(response) -> str:
    """The page's policy has a nonce and no inline escape hatch, and every script and style tag
    in the page carries that nonce. Returns the nonce."""
    policy = directives(response)
    [nonce_source] = [value for value in policy["script-src"] if value.startswith("'nonce-")]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert "'unsafe-inline'" not in policy["style-src"]
    assert nonce_source in policy["style-src"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "sandbox" not in policy
    nonce = nonce_source.removeprefix("'nonce-").removesuffix("'")
    body = response.content.decode()
    tags = SCRIPT_OR_STYLE.findall(body)
    assert tags, "every page loads at least the site's script"
    for name, attributes in tags:
        if 'type="application/json"' not in attributes:  # data (json_script), never run
            assert f'nonce="{nonce}"' in attributes, f"<{name}{attributes}> has no nonce"
    return nonce


def _parameterless_get_urls() -> list[str]:
    """Every URL pattern without parameters, so a new page is covered without being listed."""
    found: list[str] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin" or pattern.pattern.converters:
                    continue
                inner = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else pattern.namespace
                walk(pattern.url_patterns, prefix + str(pattern.pattern), inner or namespace)
            elif pattern.name and not pattern.pattern.converters and "(?P" not in str(pattern.pattern):
                found.append(reverse(f"{namespace}:{pattern.name}" if namespace else pattern.name))

    walk(get_resolver().url_patterns, "", "")
    return found


@pytest.fixture
def site(db: None, owner: User, settings, tmp_path) -> dict[str, str]:
    """One of everything a page can show, and the URLs that show it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    private = factories.group("Inner Circle", HubGroup.Permission.PRIVATE)
    post = factories.post(private, owner)
    offer = services.offer_publish(
        offer=services.offer_create(
            fields=services.OfferFields(title="Yoga Club", custom_code="<script>window.pixel = 1;</script>"),
            hub_groups=[private],
            thumbnail=stored_image(),
        )
    )
    hub = post.hub
    return {
        "group": reverse("hubs:group", kwargs={"group_slug": private.slug}),
        "hub": reverse("hubs:hub", kwargs={"group_slug": private.slug, "hub_slug": hub.slug}),
        "post": reverse("hubs:post", kwargs={"group_slug": private.slug, "hub_slug": hub.slug, "post_id": post.pk}),
        "group_editor": reverse("hubs:dashboard_group", kwargs={"pk": private.pk}),
        "hub_editor": reverse("hubs:dashboard_hub", kwargs={"pk": hub.pk}),
        "user": reverse("hubs:dashboard_user", kwargs={"pk": owner.pk}),
        "offer_editor": reverse("memberships:offer_edit", kwargs={"pk": offer.pk}),
        "offer_page": reverse("memberships:offer_page", kwargs={"slug": offer.slug}),
        "checkout": reverse("billing:checkout", kwargs={"slug": offer.slug}),
    }


def test_every_page_a_creator_opens_carries_a_strict_policy_with_a_nonce(
    client: Client, owner: User, site: dict[str, str]
) -> None:
    client.force_login(owner)
    checked = 0
    for url in [*_parameterless_get_urls(), *site.values()]:
        response = client.get(url)
        if response.status_code >= 300 or not response["Content-Type"].startswith("text/html"):
            continue
        assert_strict_policy(response)
        checked += 1
    assert checked >= 20


def test_pages_for_visitors_and_members_and_error_pages_carry_the_policy(
    client: Client, member: User, site: dict[str, str]
) -> None:
    for url in (reverse("accounts:login"), reverse("accounts:password_reset"), site["checkout"], "/no-such-page/"):
        assert_strict_policy(client.get(url))
    client.force_login(member)
    for url in (reverse("accounts:home"), reverse("hubs:community"), site["group"], site["checkout"]):
        assert_strict_policy(client.get(url))
    forbidden = client.get(reverse("accounts:dashboard"))
    assert forbidden.status_code == 403
    assert_strict_policy(forbidden)
    paywall = client.get(site["group"])
    assert paywall.status_code == 403
    assert_strict_policy(paywall)


def test_the_cached_checkout_page_gets_a_fresh_nonce_in_every_response(
    client: Client, site: dict[str, str], django_assert_num_queries
) -> None:
    first = client.get(site["checkout"])
    with django_assert_num_queries(0):
        second = client.get(site["checkout"])
    nonces = {assert_strict_policy(first), assert_strict_policy(second)}
    assert len(nonces) == 2
    assert "@@" not in second.content.decode()  # no placeholder left over
    assert 'name="csrfmiddlewaretoken"' in second.content.decode()


def test_forms_may_go_to_stripes_hosted_pages_and_the_sandbox_when_one_is_set(
    client: Client, settings, site: dict[str, str]
) -> None:
    settings.STRIPE_API_BASE = None
    form_action = directives(client.get(reverse("accounts:login")))["form-action"]
    assert form_action == [
        "'self'",
        "https://checkout.stripe.com",
        "https://connect.stripe.com",
        "https://billing.stripe.com",
    ]
    settings.STRIPE_API_BASE = "http://127.0.0.1:12111/"
    assert "http://127.0.0.1:12111" in directives(client.get(reverse("accounts:login")))["form-action"]


def test_a_free_offers_checkout_may_send_its_form_on_to_the_creators_custom_link(
    client: Client, make_offer_with_redirect
) -> None:
    offer = make_offer_with_redirect("https://thanks.example.org/welcome?x=1")
    url = reverse("billing:checkout", kwargs={"slug": offer.slug})
    assert "https://thanks.example.org" in directives(client.get(url))["form-action"]  # rendered
    assert "https://thanks.example.org" in directives(client.get(url))["form-action"]  # cached
    login_page = directives(client.get(reverse("accounts:login")))["form-action"]
    assert "https://thanks.example.org" not in login_page


@pytest.fixture
def make_offer_with_redirect(db: None, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"

    def make(redirect_url: str) -> Offer:
        return services.offer_publish(
            offer=services.offer_create(
                fields=services.OfferFields(title="Free Circle", redirect_enabled=True, redirect_url=redirect_url),
                hub_groups=[factories.group("Circle")],
                thumbnail=stored_image(),
            )
        )

    return make


def test_no_template_uses_inline_event_handlers_or_unnonced_inline_code() -> None:
    for path in TEMPLATES.rglob("*.html"):
        if path.parts[-2] == "emails" or path.name in ("500.html", "custom_code.html"):
            continue  # emails never meet the policy; the two others are tested on their own
        text = path.read_text()
        assert not re.search(r"\son[a-z]+\s*=", text), f"{path} has an inline event handler"
        assert "javascript:" not in text, path
        for name, attributes in SCRIPT_OR_STYLE.findall(text):
            assert 'nonce="{{ CSP_NONCE }}"' in attributes, f"<{name}{attributes}> in {path} has no nonce"


def test_the_500_pages_own_style_is_the_one_the_policy_allows_by_hash() -> None:
    page = (TEMPLATES / "500.html").read_text()
    [style] = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in django_settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["style-src"]
