"""Become a Partner: the widget on the member home, the page, and the rules for joining."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import mail
from django.test import TestCase

from accounts.models import User
from affiliates.models import Attribution, Partner, ReferralClick, ReferralLink
from billing.models import CheckoutAttempt
from memberships.models import Offer
from tests import factories
from tests.affiliates.conftest import partner_account, resell_offer

pytestmark = pytest.mark.django_db


def test_the_page_lists_every_published_paid_offer_with_resell_rights(client, partner_user, offer) -> None:
    resell_offer(title="Draft program", status=Offer.Status.DRAFT)
    factories.paid_offer(title="No program here")
    resell_offer(
        title="Monthly Club",
        recurring=True,
        percent=35,
        resell_description='Plain words & <a href="javascript:alert(1)" onclick="x()">tags</a>',
    )
    client.force_login(partner_user)
    page = client.get("/partners/").content.decode()
    assert "Inner Circle" in page
    assert "20% commission" in page
    assert "Monthly Club" in page
    assert "35% commission" in page
    assert "Draft program" not in page
    assert "No program here" not in page
    assert offer.thumbnail.url in page
    # The creator's description is rendered safely: no raw tag gets through.
    assert "javascript:" not in page
    assert "onclick" not in page
    assert "Plain words &amp;" in page


def test_the_description_may_be_markdown(client, partner_user, stripe_account) -> None:
    resell_offer(title="Club", resell_description="Share it with **friends**.\n\n<script>alert(1)</script>")
    client.force_login(partner_user)
    page = client.get("/partners/").content.decode()
    assert "<strong>friends</strong>" in page
    assert "<script>alert(1)</script>" not in page


def test_the_member_home_shows_the_widget_to_members_only(client, partner_user, owner, offer) -> None:
    client.force_login(partner_user)
    home = client.get("/home/").content.decode()
    assert "Become a Partner" in home
    assert "Inner Circle" in home
    client.force_login(owner)
    assert client.get("/partners/").status_code == 403
    assert "Become a Partner" not in client.get("/home/").content.decode()


def test_without_programs_the_widget_is_not_shown(client, partner_user, stripe_account) -> None:
    client.force_login(partner_user)
    assert "Become a Partner" not in client.get("/home/").content.decode()


def test_an_unproven_email_and_no_stripe_account_are_named_with_what_to_do(client, offer) -> None:
    newcomer = User.objects.create_user("new@example.com", "correct-horse-battery")
    client.force_login(newcomer)
    page = client.get("/partners/").content.decode()
    assert "Confirm your email address." in page
    assert "Email me a confirmation link" in page
    assert "Connect your Stripe account" in page
    assert "Join this program" not in page
    response = client.post(f"/partners/offers/{offer.pk}/join/", follow=True)
    assert "Confirm your email address first" in response.content.decode()
    assert not Partner.objects.exists()
    assert not ReferralLink.objects.exists()


def test_the_confirmation_link_is_emailed_to_the_members_own_address(client, offer) -> None:
    newcomer = User.objects.create_user("new@example.com", "correct-horse-battery")
    client.force_login(newcomer)
    with TestCase.captureOnCommitCallbacks(execute=True):
        page = client.post("/partners/confirm-email/", follow=True).content.decode()
    assert "We emailed a login link to new@example.com" in page
    assert [message.to for message in mail.outbox] == [["new@example.com"]]


def test_a_proven_member_without_a_stripe_account_cannot_join(client, partner_user, offer) -> None:
    client.force_login(partner_user)
    page = client.get("/partners/").content.decode()
    assert "Confirm your email address." not in page
    assert "Connect Stripe" in page
    response = client.post(f"/partners/offers/{offer.pk}/join/", follow=True)
    assert "Connect your Stripe account first" in response.content.decode()
    assert not ReferralLink.objects.exists()


def test_joining_gives_one_link_per_offer_shown_with_a_copy_button(client, partner_user, offer) -> None:
    partner_account(partner_user)
    client.force_login(partner_user)
    assert "Join this program" in client.get("/partners/").content.decode()
    page = client.post(f"/partners/offers/{offer.pk}/join/", follow=True).content.decode()
    assert "You joined the partner program of Inner Circle" in page
    client.post(f"/partners/offers/{offer.pk}/join/")  # twice: still one link
    link = ReferralLink.objects.get()
    assert link.partner.user == partner_user
    assert len(link.code) >= 20
    assert f"{settings.SITE_URL}/offers/inner-circle/?ref={link.code}" in page
    assert "data-copy-target" in page
    assert "Copy</button>" in page
    assert "0 clicks · 0 checkouts started · 0 sales" in page


def test_codes_differ_between_partners_and_offers(client, partner_user, outsider, offer) -> None:
    second = resell_offer(title="Second")
    for user in (partner_user, outsider):
        partner_account(user, f"acct_{user.pk}")
        client.force_login(user)
        client.post(f"/partners/offers/{offer.pk}/join/")
        client.post(f"/partners/offers/{second.pk}/join/")
    codes = set(ReferralLink.objects.values_list("code", flat=True))
    assert len(codes) == 4


def test_an_offer_without_a_program_cannot_be_joined(client, partner_user, stripe_account) -> None:
    partner_account(partner_user)
    plain = factories.paid_offer(title="Plain")
    client.force_login(partner_user)
    assert client.post(f"/partners/offers/{plain.pk}/join/").status_code == 404
    assert not ReferralLink.objects.exists()


def test_a_paused_partner_cannot_join_and_is_told_why(client, link, offer) -> None:
    Partner.objects.filter(pk=link.partner_id).update(status=Partner.Status.PAUSED)
    second = resell_offer(title="Second")
    client.force_login(link.partner.user)
    page = client.get("/partners/").content.decode()
    assert "Your partnership is paused by the creator" in page
    response = client.post(f"/partners/offers/{second.pk}/join/", follow=True)
    assert "paused or ended by the creator" in response.content.decode()
    assert ReferralLink.objects.count() == 1


def test_the_counts_are_the_links_real_clicks_checkouts_and_sales(client, link, offer) -> None:
    for _ in range(3):
        ReferralClick.objects.create(link=link)
    for index, status in enumerate([CheckoutAttempt.Status.PAID, CheckoutAttempt.Status.OPEN]):
        attempt = factories.checkout_attempt(offer, email=f"b{index}@example.com")
        CheckoutAttempt.objects.filter(pk=attempt.pk).update(status=status)
        Attribution.objects.create(attempt=attempt, link=link, commission_percent=20)
    client.force_login(link.partner.user)
    page = client.get("/partners/").content.decode()
    assert "3 clicks · 2 checkouts started · 1 sale" in page


def test_the_page_runs_a_constant_number_of_queries(client, link, offer, django_assert_max_num_queries) -> None:
    for index in range(5):
        resell_offer(title=f"Program {index}")
    client.force_login(link.partner.user)
    with django_assert_max_num_queries(12):
        assert client.get("/partners/").status_code == 200
