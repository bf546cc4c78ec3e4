"""Every link in every email is built from ``SITE_URL``, never from the request's Host header:
a forged Host must not turn a password-reset or login link into one that leaks to its author."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client, TestCase
from django.urls import reverse

from accounts.models import User
from billing.models import CheckoutAttempt
from memberships.models import Offer
from tests import factories
from tests.billing.helpers import FakeStripe, event, post_event
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

SITE = "https://club.example"
EVIL = "evil.example"
URL_RE = re.compile(r"""(?:https?:)?//[^\s"'<>]+""")


@pytest.fixture(autouse=True)
def _hostile_host_allowed(settings) -> None:
    # A deployment behind a permissive proxy, or with a wildcard, may accept any Host.
    settings.ALLOWED_HOSTS = ["*"]
    settings.SITE_URL = SITE


def _hostile() -> Client:
    return Client(HTTP_HOST=EVIL, HTTP_X_FORWARDED_HOST=EVIL)


def _urls(message: mail.EmailMessage) -> list[str]:
    parts = [str(message.body)] + [str(content) for content, _ in getattr(message, "alternatives", [])]
    return [url for part in parts for url in URL_RE.findall(part)]


def test_the_password_reset_link_starts_with_the_site_url(member: User) -> None:
    response = _hostile().post(reverse("accounts:password_reset"), {"email": member.email})
    assert response.status_code == 302
    [message] = mail.outbox
    urls = _urls(message)
    assert urls, message.body
    assert all(url.startswith(f"{SITE}/accounts/password-reset/") for url in urls), urls
    assert EVIL not in message.body


def _every_email_with_a_hostile_host(owner: User, member: User, monkeypatch: pytest.MonkeyPatch) -> None:
    browser = _hostile()
    with TestCase.captureOnCommitCallbacks(execute=True):
        browser.post(reverse("accounts:password_reset"), {"email": member.email})
        browser.post(reverse("accounts:magic_link_request"), {"email": member.email})
    free = Offer.objects.create(title="Taster", slug="taster", status=Offer.Status.PUBLISHED, pricing="free")
    for email in ("new@example.com", "new@example.com"):  # a confirmation, then a login link
        with TestCase.captureOnCommitCallbacks(execute=True):
            _hostile().post(f"/offers/{free.slug}/checkout/", {"email": email, "full_name": "Nia New"})
    factories.stripe_account()
    attempt: CheckoutAttempt = factories.checkout_attempt(factories.paid_offer(), email="payer@example.com")
    post_event(browser, event("checkout.session.completed", FakeStripe(monkeypatch).paid_session(attempt)))
    staff = _hostile()
    staff.force_login(owner)
    with TestCase.captureOnCommitCallbacks(execute=True):
        staff.post(
            reverse("memberships:offer_create", kwargs={"kind": "membership"}),
            {"action": "test_email", "title": "Draft", "confirmation_subject": "", "confirmation_body": ""},
        )


def test_every_email_links_only_to_the_site_url(owner: User, member: User, monkeypatch: pytest.MonkeyPatch) -> None:
    _every_email_with_a_hostile_host(owner, member, monkeypatch)

    # Every kind of email the project has was sent above: a new one must be added here.
    kinds = {path.name.removesuffix("_subject.txt") for path in Path(ROOT, "templates/emails").glob("*_subject.txt")}
    subjects = {
        "password_reset": "Choose a password",
        "magic_link": "Your login link",
        "offer_confirmation": "You're in",
    }
    assert kinds == set(subjects)
    for kind, start in subjects.items():
        assert any(message.subject.startswith(start) for message in mail.outbox), kind
    assert any(message.subject.startswith("[Test]") for message in mail.outbox)
    assert len(mail.outbox) == 6

    for message in mail.outbox:
        urls = _urls(message)
        assert urls, message.subject
        for url in urls:
            assert url.startswith(settings.SITE_URL + "/"), (message.subject, url)
        assert EVIL not in message.body
