"""Choosing a password needs proof: the current password, or a session an emailed link opened."""

from __future__ import annotations

import re

from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import User
from tests.conftest import PASSWORD

NEW = "a-brand-new-secret-42"


def _open_magic_link(client: Client, user: User, next_url: str = "") -> None:
    url = services.magic_link_create(user=user, next_url=next_url)
    client.post(re.sub(r"^https?://[^/]+", "", url))


def test_a_session_opened_without_email_proof_cannot_choose_the_password(client: Client, db: None) -> None:
    squatter = User.objects.create_user("unclaimed@example.com")  # as a free claim makes it
    client.force_login(squatter)  # as the claim logs the claiming browser in
    page = client.get(reverse("accounts:set_password"))
    assert "Confirm your email first" in page.content.decode()
    client.post(reverse("accounts:set_password"), {"new_password1": NEW, "new_password2": NEW})
    squatter.refresh_from_db()
    assert not squatter.has_usable_password()


def test_a_session_opened_by_a_magic_link_chooses_a_password(client: Client, db: None) -> None:
    buyer = User.objects.create_user("buyer@example.com")
    _open_magic_link(client, buyer)
    response = client.post(reverse("accounts:set_password"), {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302
    buyer.refresh_from_db()
    assert buyer.check_password(NEW)


def test_changing_a_password_needs_the_current_one(client: Client, member: User) -> None:
    client.force_login(member)
    response = client.post(
        reverse("accounts:set_password"), {"old_password": "wrong", "new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 400
    assert "Your old password was entered incorrectly" in response.content.decode()
    member.refresh_from_db()
    assert member.check_password(PASSWORD)
    client.post(
        reverse("accounts:set_password"), {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW}
    )
    member.refresh_from_db()
    assert member.check_password(NEW)


def test_the_owner_opening_a_login_link_ends_sessions_opened_without_proof(db: None) -> None:
    account = User.objects.create_user("owner-of-address@example.com")
    stranger = Client()
    stranger.force_login(account)
    assert stranger.get(reverse("accounts:home")).status_code == 200
    owner = Client()
    _open_magic_link(owner, account)
    assert owner.get(reverse("accounts:home")).status_code == 200
    assert stranger.get(reverse("accounts:home")).status_code == 302  # logged out


def test_a_rate_limited_login_does_not_check_the_password(client: Client, member: User, settings, monkeypatch) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": {"ip": 100, "email": 1, "window": 3600}}
    client.post(reverse("accounts:login"), {"username": member.email, "password": "wrong"})
    checked: list[str] = []
    real_check = User.check_password

    def check_password(self: User, raw_password: str) -> bool:
        checked.append(raw_password)
        return real_check(self, raw_password)

    monkeypatch.setattr(User, "check_password", check_password)
    response = client.post(reverse("accounts:login"), {"username": member.email, "password": "wrong-again"})
    assert response.status_code == 429
    assert checked == []
    assert f'value="{member.email}"' in response.content.decode()


def test_an_email_longer_than_an_address_can_be_is_refused_clearly(client: Client, db: None) -> None:
    too_long = "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "example.com"
    response = client.post(reverse("accounts:magic_link_request"), {"email": too_long})
    assert response.status_code == 200
    assert "Ensure this value has at most 254 characters" in response.content.decode()
