"""Every link in every email is built from ``SITE_URL``, never from the request's Host header:
a forged Host must not turn a password-reset or login link into one that leaks to its author."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone

from accounts import outbox
from accounts.models import User
from billing.models import CheckoutAttempt, Payment
from memberships.models import Entitlement, Offer
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
    _every_lifecycle_email()


def _every_lifecycle_email() -> None:
    """The emails after the first payment, each sent through the outbox from rows in the state
    that calls for it (their builders send nothing otherwise)."""
    monthly = factories.paid_offer(recurring=True, title="Monthly Circle")
    now = timezone.now()
    late = User.objects.create_user(email="late@example.com", password=None)
    back = User.objects.create_user(email="back@example.com", password=None)
    gone = User.objects.create_user(email="gone@example.com", password=None)
    past_due = Entitlement.objects.create(
        user=late,
        offer=monthly,
        source=Entitlement.Source.SUBSCRIPTION,
        status=Entitlement.Status.PAST_DUE,
        access_until=now + timedelta(hours=20),
        backed_by="sub_failing",
    )
    active = Entitlement.objects.create(
        user=back,
        offer=monthly,
        source=Entitlement.Source.SUBSCRIPTION,
        status=Entitlement.Status.ACTIVE,
        access_until=now + timedelta(days=30),
        renews_at=now + timedelta(days=30),
        backed_by="sub_back",
    )
    ended = Entitlement.objects.create(
        user=gone, offer=monthly, source=Entitlement.Source.SUBSCRIPTION, status=Entitlement.Status.REFUNDED
    )
    renewal = Payment.objects.create(
        stripe_object_id="in_renewal",
        kind=Payment.Kind.INVOICE,
        stripe_account_id=factories.ACCOUNT_ID,
        amount=monthly.price_amount,
        currency=monthly.currency,
        user=back,
        offer=monthly,
        is_renewal=True,
        card_last4="4242",
        paid_at=now,
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        outbox.outbox_email_record(key="t:failed", email="payment_failed", entitlement=past_due.pk, invoice="in_x")
        outbox.outbox_email_record(key="t:grace", email="grace_ending", entitlement=past_due.pk)
        outbox.outbox_email_record(key="t:restored", email="access_restored", entitlement=active.pk)
        outbox.outbox_email_record(key="t:revoked", email="access_revoked", entitlement=ended.pk, reason="refund")
        outbox.outbox_email_record(key="t:receipt", email="renewal_receipt", payment=renewal.pk)


def test_every_email_links_only_to_the_site_url(owner: User, member: User, monkeypatch: pytest.MonkeyPatch) -> None:
    _every_email_with_a_hostile_host(owner, member, monkeypatch)

    # Every kind of email the project has was sent above: a new one must be added here.
    kinds = {path.name.removesuffix("_subject.txt") for path in Path(ROOT, "templates/emails").glob("*_subject.txt")}
    subjects = {
        "password_reset": "Choose a password",
        "magic_link": "Your login link",
        "offer_confirmation": "You're in",
        "payment_failed": "Your payment for Monthly Circle didn't go through",
        "grace_ending": "Update your card to keep Monthly Circle",
        "access_restored": "Your access to Monthly Circle is back",
        "access_revoked": "Your access to Monthly Circle has ended",
        "renewal_receipt": "Your receipt for Monthly Circle",
    }
    assert kinds == set(subjects)
    for kind, start in subjects.items():
        assert any(message.subject.startswith(start) for message in mail.outbox), kind
    assert any(message.subject.startswith("[Test]") for message in mail.outbox)
    assert len(mail.outbox) == 11

    for message in mail.outbox:
        urls = _urls(message)
        assert urls, message.subject
        for url in urls:
            assert url.startswith(settings.SITE_URL + "/"), (message.subject, url)
        assert EVIL not in message.body
