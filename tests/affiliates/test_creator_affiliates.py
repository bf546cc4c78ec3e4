"""The creator's Affiliates page: partners, their links and real counts; Pause, Resume, Remove."""

from __future__ import annotations

import pytest

from affiliates.models import Attribution, Partner, ReferralClick
from billing.models import CheckoutAttempt
from tests import factories

pytestmark = pytest.mark.django_db

PAGE = "/dashboard/affiliates/"


def _status_url(partner_id: int) -> str:
    return f"/dashboard/affiliates/partners/{partner_id}/status/"


def test_no_partners_yet(client, owner, stripe_account) -> None:
    client.force_login(owner)
    assert "No affiliate partners yet." in client.get(PAGE).content.decode()


def test_the_page_lists_partners_with_their_links_and_counts(client, owner, link, offer) -> None:
    ReferralClick.objects.create(link=link)
    ReferralClick.objects.create(link=link)
    paid = factories.checkout_attempt(offer, email="b1@example.com")
    CheckoutAttempt.objects.filter(pk=paid.pk).update(status=CheckoutAttempt.Status.PAID)
    Attribution.objects.create(attempt=paid, link=link, commission_percent=20)
    Attribution.objects.create(
        attempt=factories.checkout_attempt(offer, email="b2@example.com"), link=link, commission_percent=20
    )
    client.force_login(owner)
    page = client.get(PAGE).content.decode()
    assert "Pat Partner" in page
    assert "pat@example.com" in page
    assert "Inner Circle" in page
    assert link.code in page
    assert "<td>2</td><td>2</td><td>1</td>" in page  # clicks, checkouts started, sales
    assert ">Pause</button>" in page
    assert ">Remove</button>" in page


def test_pause_and_resume(client, owner, link) -> None:
    client.force_login(owner)
    page = client.post(_status_url(link.partner_id), {"action": "pause"}, follow=True).content.decode()
    assert "is paused: their links stop attributing new sales now" in page
    assert Partner.objects.get().status == Partner.Status.PAUSED
    assert ">Resume</button>" in page
    client.post(_status_url(link.partner_id), {"action": "resume"})
    assert Partner.objects.get().status == Partner.Status.ACTIVE


def test_remove_asks_for_a_confirmation_first(client, owner, link) -> None:
    client.force_login(owner)
    response = client.post(_status_url(link.partner_id), {"action": "remove"})
    assert response.status_code == 409
    assert "Remove pat@example.com?" in response.content.decode()
    assert Partner.objects.get().status == Partner.Status.ACTIVE
    client.post(_status_url(link.partner_id), {"action": "remove", "confirm": "yes"})
    assert Partner.objects.get().status == Partner.Status.REMOVED


def test_a_removed_partner_stays_removed(client, owner, link) -> None:
    Partner.objects.filter(pk=link.partner_id).update(status=Partner.Status.REMOVED)
    client.force_login(owner)
    page = client.post(_status_url(link.partner_id), {"action": "resume"}, follow=True).content.decode()
    assert "a removed partner cannot be changed" in page
    assert Partner.objects.get().status == Partner.Status.REMOVED


@pytest.mark.parametrize("data", [{}, {"action": "explode"}, {"action": "resume"}])
def test_a_bad_action_changes_nothing_and_says_so(client, owner, link, data) -> None:
    client.force_login(owner)
    response = client.post(_status_url(link.partner_id), data, follow=True)
    assert response.status_code == 200
    assert Partner.objects.get().status == Partner.Status.ACTIVE
    messages = response.content.decode()
    assert "Choose Pause, Resume or Remove." in messages or "Only a paused partner can be resumed." in messages


def test_members_cannot_change_partners(client, link, outsider) -> None:
    client.force_login(outsider)
    assert client.post(_status_url(link.partner_id), {"action": "pause"}).status_code == 403
    assert Partner.objects.get().status == Partner.Status.ACTIVE


def test_the_page_runs_a_constant_number_of_queries(client, owner, link, offer, django_assert_max_num_queries) -> None:
    from django.contrib.auth import get_user_model

    from affiliates.models import ReferralLink
    from tests.affiliates.conftest import resell_offer

    for index in range(4):
        user = get_user_model().objects.create_user(f"p{index}@example.com")
        partner = Partner.objects.create(user=user)
        ReferralLink.objects.create(partner=partner, offer=offer)
        ReferralLink.objects.create(partner=partner, offer=resell_offer(title=f"Offer {index}"))
    client.force_login(owner)
    with django_assert_max_num_queries(10):
        assert client.get(PAGE).status_code == 200
