from __future__ import annotations

import re

from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User


def _reset_link() -> str:
    match = re.search(r"https?://[^/\s]+(/accounts/password-reset/\S+/)", mail.outbox[0].body)
    assert match is not None
    return match.group(1)


def test_a_member_resets_the_password_from_an_emailed_link(client: Client, member: User) -> None:
    response = client.post(reverse("accounts:password_reset"), {"email": "member@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject.startswith("Choose a password")
    form_page = client.get(_reset_link(), follow=True)
    assert "Choose a new password" in form_page.content.decode()
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-secret-42", "new_password2": "a-brand-new-secret-42"},
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password("a-brand-new-secret-42")


def test_a_buyer_without_a_password_can_choose_one(client: Client, db: None) -> None:
    User.objects.create_user("buyer@example.com")  # accounts made at purchase have no password
    client.post(reverse("accounts:password_reset"), {"email": "buyer@example.com"})
    assert len(mail.outbox) == 1


def test_a_reset_link_cannot_be_used_twice(client: Client, member: User) -> None:
    client.post(reverse("accounts:password_reset"), {"email": "member@example.com"})
    link = _reset_link()
    form_page = client.get(link, follow=True)
    client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-secret-42", "new_password2": "a-brand-new-secret-42"},
    )
    client.logout()
    again = client.get(link, follow=True)
    assert "not valid" in again.content.decode()


def test_mismatched_passwords_are_refused_clearly(client: Client, member: User) -> None:
    client.post(reverse("accounts:password_reset"), {"email": "member@example.com"})
    form_page = client.get(_reset_link(), follow=True)
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "a-brand-new-secret-42", "new_password2": "other-one-42"}
    )
    assert response.status_code == 200
    assert "The two password fields didn" in response.content.decode()
