from __future__ import annotations

from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.conftest import PASSWORD


def test_the_login_page_asks_for_email_and_password(client: Client, db: None) -> None:
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    assert "Email address" in response.content.decode()
    assert "Email me a login link" in response.content.decode()


def test_a_member_logs_in_with_email_and_password(client: Client, member: User) -> None:
    response = client.post(reverse("accounts:login"), {"username": "member@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("accounts:home")).context["user"] == member


def test_login_ignores_the_case_of_the_email(client: Client, member: User) -> None:
    response = client.post(reverse("accounts:login"), {"username": "  Member@Example.COM ", "password": PASSWORD})
    assert response.status_code == 302
    assert response.wsgi_request.user == member


def test_a_wrong_password_is_refused_with_a_clear_message(client: Client, member: User) -> None:
    response = client.post(reverse("accounts:login"), {"username": "member@example.com", "password": "nope"})
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated


def test_logout_ends_the_session(client: Client, member: User) -> None:
    client.force_login(member)
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert client.get(reverse("accounts:home")).status_code == 302  # back to login


def test_root_sends_each_person_to_their_home(client: Client, owner: User, member: User) -> None:
    assert client.get("/").url == reverse("accounts:login")
    client.force_login(member)
    assert client.get("/").url == reverse("accounts:home")
    client.force_login(owner)
    assert client.get("/").url == reverse("accounts:dashboard")


def test_emails_are_unique_whatever_their_case(db: None) -> None:
    import pytest
    from django.db import IntegrityError

    User.objects.create_user("Someone@Example.com")
    assert User.objects.get().email == "someone@example.com"
    with pytest.raises(IntegrityError):
        User.objects.create(email="SOMEONE@example.com")
