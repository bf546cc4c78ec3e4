"""An account records when its owner proved the address (``email_verified_at``): by using an
emailed login link or a password-reset link, never by filling in a form."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

from django.apps import apps
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import MagicLink, User
from tests.conftest import PASSWORD

NEW = "a-brand-new-secret-42"


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def _open_login_link(client: Client, user: User) -> None:
    path = _path(services.magic_link_create(user=user))
    assert client.get(path).status_code == 200
    assert client.post(path).status_code == 302


def _reset_password(client: Client, email: str) -> None:
    client.post(reverse("accounts:password_reset"), {"email": email})
    match = re.search(r"https?://[^/\s]+(/accounts/password-reset/\S+/)", mail.outbox[-1].body)
    assert match is not None
    form_page = client.get(match.group(1), follow=True)
    response = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302


def test_an_account_made_from_an_email_address_is_unproven(db: None) -> None:
    user, created = services.user_get_or_create(email="new@example.com")
    assert created
    assert user.email_verified_at is None
    assert not user.email_verified


def test_using_a_login_link_proves_the_address(client: Client, db: None) -> None:
    user = User.objects.create_user("buyer@example.com")
    path = _path(services.magic_link_create(user=user))
    client.get(path)  # a mail scanner's GET proves nothing
    user.refresh_from_db()
    assert user.email_verified_at is None

    before = timezone.now()
    client.post(path)
    user.refresh_from_db()
    assert user.email_verified_at is not None
    assert user.email_verified_at >= before
    assert client.get(reverse("accounts:home")).status_code == 200


def test_a_password_reset_link_proves_the_address_and_keeps_its_browser_logged_in(client: Client, member: User) -> None:
    _reset_password(client, member.email)
    member.refresh_from_db()
    assert member.email_verified_at is not None
    assert member.check_password(NEW)
    assert client.get(reverse("accounts:home")).status_code == 200


def test_a_buyer_without_a_password_chooses_one_from_the_emailed_link_and_is_proven(client: Client, db: None) -> None:
    buyer, _ = services.user_get_or_create(email="buyer@example.com")
    _reset_password(client, buyer.email)
    buyer.refresh_from_db()
    assert buyer.email_verified_at is not None
    assert buyer.check_password(NEW)


def test_a_session_opened_by_a_link_sets_a_password_on_a_proven_account(client: Client, db: None) -> None:
    buyer, _ = services.user_get_or_create(email="buyer@example.com")
    _open_login_link(client, buyer)
    response = client.post(reverse("accounts:set_password"), {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302
    buyer.refresh_from_db()
    assert buyer.check_password(NEW)
    assert buyer.email_verified_at is not None
    assert client.get(reverse("accounts:home")).status_code == 200


def test_the_first_proof_ends_every_session_made_before_even_with_a_password(db: None) -> None:
    account = User.objects.create_user("made-by-staff@example.com", PASSWORD)
    elsewhere = Client()
    elsewhere.force_login(account)
    owner = Client()
    _open_login_link(owner, account)
    assert owner.get(reverse("accounts:home")).status_code == 200
    assert elsewhere.get(reverse("accounts:home")).status_code == 302


def test_a_later_login_link_keeps_the_owners_other_sessions(db: None) -> None:
    account = User.objects.create_user("owner@example.com")
    laptop, phone = Client(), Client()
    _open_login_link(laptop, account)
    _open_login_link(phone, account)
    assert laptop.get(reverse("accounts:home")).status_code == 200
    assert phone.get(reverse("accounts:home")).status_code == 200


def test_adding_to_an_unproven_account_ends_its_sessions_whatever_its_password(db: None) -> None:
    with_password = User.objects.create_user("a@example.com", PASSWORD)
    without, _ = services.user_get_or_create(email="b@example.com")
    browsers = []
    for user in (with_password, without):
        browser = Client()
        browser.force_login(user)
        browsers.append(browser)
        assert services.user_access_added(user=user) is True
    for browser in browsers:
        assert browser.get(reverse("accounts:home")).status_code == 302
    with_password.refresh_from_db()
    assert with_password.check_password(PASSWORD)  # the password itself still works


def test_adding_to_a_proven_account_keeps_its_sessions(client: Client, member: User) -> None:
    User.objects.filter(pk=member.pk).update(email_verified_at=timezone.now())
    client.force_login(member)
    assert services.user_access_added(user=member) is False
    assert client.get(reverse("accounts:home")).status_code == 200


def test_sessions_made_before_the_session_generation_existed_stay_valid(member: User) -> None:
    assert member.session_generation == 0
    assert member.get_session_auth_hash() == AbstractBaseUser.get_session_auth_hash(member)
    member.session_generation = 1
    assert member.get_session_auth_hash() != AbstractBaseUser.get_session_auth_hash(member)


def test_the_backfill_counts_a_used_link_or_a_password_as_proof_but_not_a_login(db: None) -> None:
    backfill = importlib.import_module("accounts.migrations.0003_backfill_email_verified_at").backfill
    joined = timezone.now() - timedelta(days=30)
    clicked = User.objects.create_user("clicked@example.com", date_joined=joined)
    used_at = joined + timedelta(days=1)
    MagicLink.objects.create(user=clicked, key="k1", used_at=used_at + timedelta(hours=1))
    MagicLink.objects.create(user=clicked, key="k2", used_at=used_at)
    MagicLink.objects.create(user=clicked, key="k3")
    User.objects.create_user("password@example.com", PASSWORD, date_joined=joined)
    claimed = User.objects.create_user("claimed@example.com", date_joined=joined)
    User.objects.filter(pk=claimed.pk).update(last_login=timezone.now())  # logged in by a claim
    MagicLink.objects.create(user=claimed, key="k4")  # emailed, never used

    backfill(apps, None)

    found = dict(User.objects.values_list("email", "email_verified_at"))
    assert found["clicked@example.com"] == used_at
    assert found["password@example.com"] == joined
    assert found["claimed@example.com"] is None


def test_an_operator_made_superuser_counts_as_proven(db: None) -> None:
    admin = User.objects.create_superuser("operator@example.com", "an operator passphrase")
    assert admin.email_verified_at is not None
