from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User
from billing.models import StripeAccount
from memberships.models import Entitlement, Offer
from tests import factories
from tests.conftest import body_text


def checkout_url(offer: Offer) -> str:
    return reverse("billing:checkout", kwargs={"slug": offer.slug})


def claim(client: Client, offer: Offer, capture: Any, **data: str) -> Any:
    with capture(execute=True):
        return client.post(checkout_url(offer), {"full_name": "Nia New", "email": "nia@example.com", **data})


def login_link(text: str) -> str:
    match = re.search(r"https?://\S+/accounts/login-link/\S+/", text)
    assert match, text
    return match.group(0)


def test_a_new_buyer_is_logged_in_lands_in_the_community_and_gets_the_email(
    db: None, client: Client, django_capture_on_commit_callbacks, settings
) -> None:
    settings.SITE_URL = "https://club.example"
    lounge = factories.group("Lounge")
    offer = factories.offer(title="Inner Circle", groups=[lounge])
    response = claim(client, offer, django_capture_on_commit_callbacks, email="  Nia@Example.com ")
    user = User.objects.get(email="nia@example.com")
    assert user.full_name == "Nia New"
    assert not user.has_usable_password()
    assert client.session[SESSION_KEY] == str(user.pk)
    assert response.status_code == 302
    assert response.url == reverse("hubs:group", kwargs={"group_slug": lounge.slug})
    entitlement = Entitlement.objects.get(user=user, offer=offer)
    assert (entitlement.status, entitlement.source) == ("active", "free")
    [message] = mail.outbox
    assert message.to == ["nia@example.com"]
    assert message.subject == "You're in: Inner Circle"
    text = message.body
    assert text.startswith("Hi Nia New,")
    assert login_link(text).startswith("https://club.example/accounts/login-link/")
    assert f"https://club.example/community/{lounge.slug}/" in text
    assert message.alternatives[0][1] == "text/html"


def test_an_existing_email_is_not_logged_in_but_gets_a_login_link(
    client: Client, member: User, django_capture_on_commit_callbacks
) -> None:
    offer = factories.offer()
    response = claim(client, offer, django_capture_on_commit_callbacks, email="MEMBER@example.com")
    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    body = response.content.decode()
    assert "Check your email" in body
    assert "member@example.com" in body
    assert Entitlement.objects.filter(user=member, offer=offer, status="active").exists()
    assert User.objects.count() == 1
    [message] = mail.outbox
    assert message.to == [member.email]
    # The emailed link logs its owner in (after a confirming POST, as every magic link).
    link = login_link(message.body)
    path = link.split("://", 1)[1].split("/", 1)[1]
    fresh = Client()
    assert fresh.get("/" + path).status_code == 200
    done = fresh.post("/" + path)
    assert done.status_code == 302
    assert fresh.session[SESSION_KEY] == str(member.pk)


def test_claiming_twice_makes_one_entitlement_and_one_email(
    db: None, client: Client, django_capture_on_commit_callbacks
) -> None:
    offer = factories.offer()
    claim(client, offer, django_capture_on_commit_callbacks)
    other_browser = Client()
    second = claim(other_browser, offer, django_capture_on_commit_callbacks)
    assert second.status_code == 200
    assert SESSION_KEY not in other_browser.session
    # And once more from the browser that is already logged in.
    third = claim(client, offer, django_capture_on_commit_callbacks)
    assert third.status_code == 302
    assert Entitlement.objects.filter(offer=offer).count() == 1
    # One confirmation; the anonymous second claim, told to check its email, got a login link.
    assert [m.subject for m in mail.outbox] == ["You're in: Inner Circle", "Your login link for Community"]


def test_a_logged_in_member_claims_with_one_click(
    client: Client, member: User, django_capture_on_commit_callbacks
) -> None:
    offer = factories.offer()
    client.force_login(member)
    page = client.get(checkout_url(offer)).content.decode()
    assert "You're logged in as <strong>member@example.com</strong>" in page
    assert 'name="email"' not in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(checkout_url(offer), {})
    assert response.status_code == 302
    assert Entitlement.objects.filter(user=member, offer=offer).exists()
    assert len(mail.outbox) == 1


def test_the_custom_destination_receives_the_buyer(
    db: None, client: Client, django_capture_on_commit_callbacks
) -> None:
    offer = factories.offer(redirect_enabled=True, redirect_url="https://example.com/thank-you")
    response = claim(client, offer, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert response.url == "https://example.com/thank-you"
    assert SESSION_KEY in client.session


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"email": ""}, "email", "This field is required."),
        ({"full_name": "   "}, "full_name", "This field is required."),
    ],
)
def test_bad_details_are_shown_next_to_the_field_and_kept(
    db: None, client: Client, django_capture_on_commit_callbacks, data: dict[str, str], field: str, message: str
) -> None:
    offer = factories.offer()
    response = claim(client, offer, django_capture_on_commit_callbacks, **data)
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    body = response.content.decode()
    assert message in body
    if field != "full_name":
        assert 'value="Nia New"' in body
    assert not Entitlement.objects.exists()
    assert not mail.outbox


def test_a_paid_offer_cannot_be_claimed_for_free(
    client: Client, stripe_account: StripeAccount, django_capture_on_commit_callbacks
) -> None:
    offer = factories.offer(pricing="one_time", price_amount=900)
    response = claim(client, offer, django_capture_on_commit_callbacks)
    assert response.status_code == 200  # the page again; payment starts at billing's URL
    assert not Entitlement.objects.exists()
    assert not User.objects.filter(email="nia@example.com").exists()


def test_the_confirmation_uses_the_creators_wording_with_escaped_placeholders(
    db: None, client: Client, django_capture_on_commit_callbacks
) -> None:
    offer = factories.offer(
        title="Tom & Jerry's <Club>",
        confirmation_subject="Welcome to {{ offer_title }}, {{ buyer_name }}",
        confirmation_body="Dear {{buyer_name}},\n\n<b>not bold</b> — log in: {{ login_link }}",
    )
    claim(client, offer, django_capture_on_commit_callbacks, full_name="<script>alert(1)</script>")
    [message] = mail.outbox
    assert message.subject == "Welcome to Tom & Jerry's <Club>, <script>alert(1)</script>"
    assert message.body.startswith("Dear <script>alert(1)</script>,\n\n<b>not bold</b>")
    html = message.alternatives[0][0]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html
    link = login_link(message.body)
    assert f'<a href="{link}">{link}</a>' in html


def test_the_free_path_through_a_real_worker(client: Client, celery_worker) -> None:
    offer = factories.offer(title="Worker Club")
    response = client.post(checkout_url(offer), {"full_name": "Wes Worker", "email": "wes@example.com"})
    assert response.status_code == 302
    [message] = celery_worker.wait_for(1)
    assert message["To"] == "wes@example.com"
    assert message["Subject"] == "You're in: Worker Club"
    assert "/accounts/login-link/" in body_text(message)


def test_a_closed_account_gets_a_clear_message_and_nothing_else(
    client: Client, member: User, django_capture_on_commit_callbacks
) -> None:
    User.objects.filter(pk=member.pk).update(is_active=False)
    offer = factories.offer()
    response = claim(client, offer, django_capture_on_commit_callbacks, email=member.email)
    assert response.status_code == 400
    assert "The account with this email address is closed. Please contact the community" in (response.content.decode())
    assert not Entitlement.objects.exists()
    assert not mail.outbox


def test_free_claims_for_one_email_are_limited(db: None, settings, django_capture_on_commit_callbacks) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "free_claim": {"ip": 100, "email": 2, "window": 3600}}
    offer = factories.offer(title="Limited", groups=[factories.group("Lounge")])
    for _ in range(2):
        claim(Client(), offer, django_capture_on_commit_callbacks, email="victim@example.com")
    assert len(mail.outbox) == 2  # the confirmation, then a login link for the repeated claim
    response = claim(Client(), offer, django_capture_on_commit_callbacks, email="victim@example.com")
    assert response.status_code == 400
    assert "Too many attempts" in response.content.decode()
    assert len(mail.outbox) == 2  # nothing more was sent to that address
