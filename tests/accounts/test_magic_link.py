from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import MagicLink, User


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_a_valid_link_shows_a_button_and_logs_in_on_post(client: Client, member: User) -> None:
    path = _path(services.magic_link_create(user=member, next_url="/home/"))
    page = client.get(path)
    assert page.status_code == 200
    assert "Continue as <strong>member@example.com</strong>" in page.content.decode()
    assert not page.wsgi_request.user.is_authenticated  # GET alone never logs in

    response = client.post(path)
    assert response.status_code == 302
    assert response.url == "/home/"
    assert response.wsgi_request.user == member
    assert MagicLink.objects.get().used_at is not None


def test_a_link_works_only_once(client: Client, member: User) -> None:
    path = _path(services.magic_link_create(user=member))
    client.post(path)
    client.logout()
    response = client.post(path)
    assert response.status_code == 410
    assert "already used" in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated


def test_an_expired_link_is_refused(client: Client, member: User, settings) -> None:
    settings.MAGIC_LINK_MAX_AGE = 3600
    with time_machine.travel(timezone.now() - timedelta(hours=2)):
        path = _path(services.magic_link_create(user=member))
    response = client.post(path)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated
    assert MagicLink.objects.get().used_at is None


TAMPERINGS = [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: "x" + t, lambda t: "garbage"]


@pytest.mark.parametrize("tamper", TAMPERINGS)
def test_a_tampered_link_is_refused(client: Client, member: User, tamper) -> None:
    token = _path(services.magic_link_create(user=member)).rstrip("/").rsplit("/", 1)[1]
    response = client.post(reverse("accounts:magic_link", kwargs={"token": tamper(token)}))
    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated


def test_a_link_for_a_deactivated_account_is_refused(client: Client, member: User) -> None:
    path = _path(services.magic_link_create(user=member))
    User.objects.filter(pk=member.pk).update(is_active=False)
    assert client.post(path).status_code == 400


def test_next_never_leaves_the_site(client: Client, member: User) -> None:
    path = _path(services.magic_link_create(user=member, next_url="https://evil.example/steal"))
    assert client.post(path).url == "/"


def test_requesting_a_link_emails_one_to_an_existing_member(
    client: Client, member: User, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:magic_link_request"), {"email": "MEMBER@example.com"})
    assert response.status_code == 200
    assert "Check your email" in response.content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["member@example.com"]
    link = re.search(r"http://\S+/accounts/login-link/\S+/", message.body)
    assert link is not None
    assert client.post(_path(link.group(0))).wsgi_request.user == member
    # The HTML part carries the same link.
    assert link.group(0) in message.alternatives[0][0]


def test_requesting_a_link_for_an_unknown_email_says_the_same_and_sends_nothing(
    client: Client, db: None, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:magic_link_request"), {"email": "nobody@example.com"})
    assert "Check your email" in response.content.decode()
    assert mail.outbox == []


def test_a_malformed_email_is_refused_next_to_the_field(client: Client, db: None) -> None:
    response = client.post(reverse("accounts:magic_link_request"), {"email": "not-an-email"})
    assert response.status_code == 200
    assert "Enter a valid email address" in response.content.decode()
    assert 'value="not-an-email"' in response.content.decode()


def test_a_next_address_with_a_nul_byte_is_dropped_not_stored() -> None:
    from accounts.services import safe_next_url

    assert safe_next_url("/community/\x00") == ""
    assert safe_next_url("/community/") == "/community/"
