from __future__ import annotations

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.models import User
from accounts.ratelimit import client_ip
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def _small_limits(settings) -> None:
    cache.clear()  # the test cache is process-local (config/test_settings.py)
    settings.RATE_LIMITS = {
        scope: {"ip": 5, "email": 3, "email_all": 6, "window": 3600}
        for scope in ("login", "login_link", "password_reset", "free_claim")
    }


def _login(client: Client, email: str, password: str, *, ip: str = "127.0.0.1") -> int:
    response = client.post(reverse("accounts:login"), {"username": email, "password": password}, REMOTE_ADDR=ip)
    return response.status_code


def test_login_is_refused_after_too_many_attempts_even_with_the_right_password(client: Client, member: User) -> None:
    for _ in range(3):
        client.post(reverse("accounts:login"), {"username": member.email, "password": "wrong"})
    response = client.post(reverse("accounts:login"), {"username": member.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert f'value="{member.email}"' in response.content.decode()  # what was typed is kept
    assert not response.wsgi_request.user.is_authenticated


def test_a_limit_on_one_address_does_not_lock_out_another_email(client: Client, member: User, outsider: User) -> None:
    for _ in range(3):
        client.post(reverse("accounts:login"), {"username": member.email, "password": "wrong"})
    response = client.post(reverse("accounts:login"), {"username": outsider.email, "password": PASSWORD})
    assert response.status_code == 302


def test_the_owner_still_logs_in_from_an_address_that_was_not_failing(member: User) -> None:
    for n in range(3):
        _login(Client(), member.email, "wrong", ip=f"203.0.113.{n}")
    owner = Client()
    assert _login(owner, member.email, PASSWORD, ip="198.51.100.7") == 302
    assert owner.get(reverse("accounts:home")).status_code == 200


def test_a_locked_account_refuses_every_address_that_has_been_failing(member: User) -> None:
    for _ in range(3):
        _login(Client(), member.email, "wrong", ip="203.0.113.1")
    assert _login(Client(), member.email, PASSWORD, ip="203.0.113.1") == 429
    # A new address gets its one try; once it fails, it is refused too, right password or not.
    assert _login(Client(), member.email, "wrong again", ip="198.51.100.7") == 200
    assert _login(Client(), member.email, PASSWORD, ip="198.51.100.7") == 429


def test_an_account_guessed_at_from_many_addresses_is_locked_for_everyone(member: User) -> None:
    for n in range(6):
        _login(Client(), member.email, "wrong", ip=f"203.0.113.{n}")
    assert _login(Client(), member.email, PASSWORD, ip="198.51.100.7") == 429


def test_the_admin_has_no_login_form_of_its_own(client: Client, owner: User) -> None:
    response = client.get("/admin/login/?next=/admin/accounts/user/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2Faccounts%2Fuser%2F"
    # The admin's own form is gone, so a script cannot post passwords to it.
    response = client.post("/admin/login/", {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 405
    assert not client.get("/admin/").wsgi_request.user.is_authenticated


def test_the_admin_sends_a_logged_in_member_nowhere_else(client: Client, member: User) -> None:
    client.force_login(member)
    assert client.get("/admin/", follow=True).status_code == 403


def test_every_password_check_counts_against_the_same_limit(member: User) -> None:
    """Any code that checks a password through ``authenticate`` is limited like the login page."""
    from django.contrib.auth import authenticate

    request = RequestFactory().post("/", REMOTE_ADDR="203.0.113.1")
    for _ in range(3):
        assert authenticate(request, username=member.email, password="wrong") is None
    assert authenticate(request, username=member.email, password=PASSWORD) is None
    assert (
        authenticate(RequestFactory().post("/", REMOTE_ADDR="198.51.100.7"), username=member.email, password=PASSWORD)
        == member
    )


def test_changing_the_password_counts_wrong_current_passwords(client: Client, member: User) -> None:
    client.force_login(member)
    change = {
        "old_password": "wrong",
        "new_password1": "a fresh long passphrase",
        "new_password2": "a fresh long passphrase",
    }
    for _ in range(3):
        assert client.post(reverse("accounts:set_password"), change).status_code == 400
    response = client.post(reverse("accounts:set_password"), {**change, "old_password": PASSWORD})
    assert "Too many attempts" in response.content.decode()
    member.refresh_from_db()
    assert member.check_password(PASSWORD)  # unchanged


def test_login_links_stop_being_sent_after_the_limit(
    client: Client, member: User, django_capture_on_commit_callbacks
) -> None:
    statuses = []
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            statuses.append(client.post(reverse("accounts:magic_link_request"), {"email": member.email}).status_code)
    assert statuses == [200, 200, 200, 429, 429]
    assert len(mail.outbox) == 3


def test_password_resets_stop_being_sent_after_the_limit(client: Client, member: User) -> None:
    for _ in range(4):
        response = client.post(reverse("accounts:password_reset"), {"email": member.email})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert len(mail.outbox) == 3


def test_the_address_limit_counts_across_emails(client: Client, db: None) -> None:
    statuses = [
        client.post(reverse("accounts:magic_link_request"), {"email": f"someone{n}@example.com"}).status_code
        for n in range(6)
    ]
    assert statuses == [200] * 5 + [429]


def test_the_client_address_trusts_only_the_configured_proxies(settings) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    settings.FORWARDED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"
    settings.FORWARDED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.9"  # the spoofable left part is ignored
