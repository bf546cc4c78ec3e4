"""Following a partner's link: the click, the attribution cookie, and codes that change nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core import signing
from django.test import Client, RequestFactory

from affiliates.models import Partner, ReferralClick, ReferralLink
from affiliates.referrals import COOKIE_NAME, referral_code_from
from memberships.models import Offer
from tests.affiliates.conftest import resell_offer

pytestmark = pytest.mark.django_db


def _code_in(cookie_value: str) -> str:
    """The code the site reads back from this cookie value."""
    request = RequestFactory().get("/")
    request.COOKIES[COOKIE_NAME] = cookie_value
    return referral_code_from(request)


def _visit(client: Client, slug: str, query: str) -> Any:
    return client.get(f"/offers/{slug}/?{query}")


def test_a_link_records_the_click_sets_the_cookie_and_lands_on_the_offer_page(client, link) -> None:
    response = client.get(f"/offers/inner-circle/?ref={link.code}")
    assert response.status_code == 302
    assert response["Location"] == "/offers/inner-circle/"
    assert ReferralClick.objects.filter(link=link).count() == 1
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 30 * 24 * 60 * 60
    assert cookie.value != link.code  # signed, not the bare code
    assert _code_in(cookie.value) == link.code
    page = client.get(response["Location"])
    assert page.status_code in (200, 302)  # the offer page as usual (a landing page or the checkout)


def test_other_query_parameters_survive_the_redirect(client, link) -> None:
    response = _visit(client, "inner-circle", f"utm_source=mail&ref={link.code}&x=1&x=2")
    assert response["Location"] == "/offers/inner-circle/?utm_source=mail&x=1&x=2"


def test_the_cookie_lasts_as_many_days_as_the_setting_says(client, link, settings) -> None:
    settings.AFFILIATE_COOKIE_DAYS = 7
    response = _visit(client, "inner-circle", f"ref={link.code}")
    assert response.cookies[COOKIE_NAME]["max-age"] == 7 * 24 * 60 * 60


def _cookie_signed_days_ago(client: Client, code: str, days: int, monkeypatch: pytest.MonkeyPatch) -> str:
    then = int(time.time()) - days * 24 * 60 * 60
    with monkeypatch.context() as patch:
        patch.setattr(signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(then))
        response = _visit(client, "inner-circle", f"ref={code}")
    return str(response.cookies[COOKIE_NAME].value)


def test_an_expired_cookie_is_not_read_even_if_the_browser_kept_it(client, link, rf, monkeypatch) -> None:
    """The signature's own timestamp is checked: a browser that keeps the cookie longer (or a
    copied cookie) does not stretch the attribution window."""
    request = rf.get("/")
    request.COOKIES[COOKIE_NAME] = _cookie_signed_days_ago(client, link.code, 29, monkeypatch)
    assert referral_code_from(request) == link.code
    request.COOKIES[COOKIE_NAME] = _cookie_signed_days_ago(client, link.code, 31, monkeypatch)
    assert referral_code_from(request) == ""


def test_the_last_link_clicked_wins(client, link, offer, outsider) -> None:
    other = ReferralLink.objects.create(partner=Partner.objects.create(user=outsider), offer=offer)
    _visit(client, "inner-circle", f"ref={link.code}")
    response = _visit(client, "inner-circle", f"ref={other.code}")
    assert _code_in(response.cookies[COOKIE_NAME].value) == other.code
    assert client.cookies[COOKIE_NAME].value == response.cookies[COOKIE_NAME].value


@pytest.mark.parametrize("case", ["unknown", "paused", "removed", "resell_off", "other_offer", "huge"])
def test_a_code_that_cannot_attribute_lands_on_the_page_and_records_nothing(client, link, case) -> None:
    code = link.code
    slug = "inner-circle"
    if case == "unknown":
        code = "not-a-code"
    elif case == "huge":
        code = "x" * 5000
    elif case in ("paused", "removed"):
        Partner.objects.filter(pk=link.partner_id).update(status=case)
    elif case == "resell_off":
        Offer.objects.filter(pk=link.offer_id).update(resell_enabled=False)
    elif case == "other_offer":
        slug = resell_offer(title="Another").slug
    response = _visit(client, slug, f"ref={code}")
    # The offer page as usual (without a landing page: on to its checkout, query and all).
    assert response.status_code == 302
    assert response["Location"] == f"/offers/{slug}/checkout/?ref={code}"
    assert COOKIE_NAME not in response.cookies
    assert not ReferralClick.objects.exists()


def test_a_tampered_cookie_is_ignored(rf) -> None:
    request = rf.get("/")
    request.COOKIES[COOKIE_NAME] = "forged-code:abc"
    assert referral_code_from(request) == ""


def test_ref_on_any_other_page_is_left_alone(client, link) -> None:
    response = client.get(f"/accounts/login/?ref={link.code}")
    assert response.status_code == 200
    assert not ReferralClick.objects.exists()
