"""The attribution cookie and the ``?ref=`` visit: reading, setting, and the checkout contributor.

A visit to ``/offers/<slug>/?ref=<code>`` records a click and sets a signed, HttpOnly cookie
holding the code (the last link clicked wins), then redirects to the same page without
``ref``. A code that cannot attribute for that offer changes nothing: the request goes on to
the offer page as if the middleware were not there. When a paid checkout starts,
``checkout_contribute`` (a billing hook) reads the cookie and checks the link again before
attributing the checkout to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve

from accounts.models import User
from affiliates import selectors, services
from billing.models import CheckoutAttempt

COOKIE_NAME = "partner_ref"
COOKIE_SALT = "affiliates.ref"
REF_PARAM = "ref"
OFFER_PAGE = "memberships:offer_page"


def cookie_max_age() -> int:
    return int(settings.AFFILIATE_COOKIE_DAYS) * 24 * 60 * 60


def referral_code_from(request: HttpRequest) -> str:
    """The code in the visitor's attribution cookie, or "" (none, tampered with, or older than
    the cookie's lifetime: the signature's timestamp is checked, not only the browser)."""
    value = request.get_signed_cookie(COOKIE_NAME, default=None, salt=COOKIE_SALT, max_age=cookie_max_age())
    return value if isinstance(value, str) else ""


def _clean_url(request: HttpRequest) -> str:
    query = [(key, value) for key, values in request.GET.lists() if key != REF_PARAM for value in values]
    return request.path + (f"?{urlencode(query)}" if query else "")


def referral_visit(request: HttpRequest) -> HttpResponse | None:
    """A response for a ``?ref=`` visit to an offer page, or None for any other request."""
    if request.method != "GET" or REF_PARAM not in request.GET:
        return None
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    if match.view_name != OFFER_PAGE:
        return None
    link = selectors.link_live(code=request.GET.get(REF_PARAM, ""))
    if link is None or link.offer.slug != match.kwargs.get("slug"):
        return None  # the offer page as usual: nothing recorded, nothing set
    services.referral_click_record(link=link)
    response = HttpResponseRedirect(_clean_url(request))
    response.set_signed_cookie(
        COOKIE_NAME,
        link.code,
        salt=COOKIE_SALT,
        max_age=cookie_max_age(),
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response


class ReferralMiddleware:
    """Takes ``?ref=`` visits to offer pages (memberships' page, which may not import this)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.AFFILIATES_ENABLED:
            return self.get_response(request)
        return referral_visit(request) or self.get_response(request)


def checkout_contribute(request: HttpRequest, attempt: CheckoutAttempt, params: dict[str, Any]) -> None:
    """Billing's checkout contributor: attribute the checkout to the visitor's link, if any."""
    if not settings.AFFILIATES_ENABLED:
        return
    code = referral_code_from(request)
    if not code:
        return
    buyer = request.user if isinstance(request.user, User) else None
    attribution = services.attribution_record(attempt=attempt, code=code, buyer=buyer)
    if attribution is not None:
        services.checkout_params_add_referral(attribution=attribution, attempt=attempt, params=params)
