from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_POST

from accounts import ratelimit
from accounts import services as account_services
from accounts.decorators import staff_required
from accounts.models import User
from affiliates import commissions, selectors, services
from affiliates.forms import CommissionsStopForm, PartnerStatusForm
from affiliates.models import Partner
from billing import stripe_gateway as gateway
from billing.models import StripeAccount
from billing.services import connect

logger = logging.getLogger(__name__)

OAUTH_STATE_SESSION_KEY = "affiliates_oauth_state"

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])


def member_required(view: ViewFunc) -> ViewFunc:
    """Partner pages: anonymous users go to the login page, staff get a 403 (the community's
    own people do not resell its offers)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.AFFILIATES_ENABLED:
            raise Http404("The partner program is not open.")
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.user.is_staff:
            raise PermissionDenied("Partner programs are for members; the community's staff cannot join them.")
        return view(request, *args, **kwargs)

    return cast(ViewFunc, wrapper)


def _member(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # member_required let only a logged-in user through
    return request.user


# --- Become a Partner ----------------------------------------------------------------------
@member_required
@require_GET
def partners(request: HttpRequest) -> HttpResponse:
    view = selectors.partner_view(user=_member(request))
    ledger, payout_account = None, None
    if view.partner is not None:
        ledger = selectors.partner_ledger(partner=view.partner)
        payout_account = commissions.payout_account(view.partner)
    return render(
        request,
        "affiliates/partners.html",
        {
            "view": view,
            "ledger": ledger,
            "payout_account": payout_account,
            "now": timezone.now(),
            "hold_days": settings.AFFILIATE_HOLD_DAYS,
        },
    )


@member_required
@require_POST
def partner_join(request: HttpRequest, pk: int) -> HttpResponse:
    offer = get_object_or_404(selectors.resell_offers(), pk=pk)
    try:
        services.partner_join(user=_member(request), offer=offer)
    except services.JoinRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"You joined the partner program of {offer.title}. Share your link below.")
    return redirect("affiliates:partners")


@member_required
@require_POST
def partner_email_confirm(request: HttpRequest) -> HttpResponse:
    """Email the member a login link to their own address: using it proves the address."""
    user = _member(request)
    if user.email_verified_at is not None:
        messages.info(request, "Your email address is already confirmed.")
        return redirect("affiliates:partners")
    if not ratelimit.allow_request(request, scope="login_link", email=user.email):
        messages.error(request, ratelimit.TOO_MANY)
        return redirect("affiliates:partners")
    account_services.magic_link_request(email=user.email, next_url=reverse("affiliates:partners"))
    messages.success(
        request, f"We emailed a login link to {user.email}. Open it to confirm your address, then join a program."
    )
    return redirect("affiliates:partners")


# --- The partner's own Stripe account --------------------------------------------------------
@member_required
@require_POST
def partner_stripe_connect(request: HttpRequest) -> HttpResponse:
    """Send the member to Stripe's Connect OAuth page with a state bound to this session, to
    this member and to the partner purpose (the creator's flow keeps its own state)."""
    user = _member(request)
    state = secrets.token_urlsafe(32)
    request.session[OAUTH_STATE_SESSION_KEY] = {"state": state, "user": user.pk, "purpose": "partner"}
    redirect_uri = settings.SITE_URL + reverse("affiliates:partner_stripe_return")
    return redirect(gateway.oauth_authorize_url(state=state, redirect_uri=redirect_uri, email=user.email))


def _state_matches(request: HttpRequest, user: User) -> bool:
    expected = request.session.pop(OAUTH_STATE_SESSION_KEY, None)
    state = request.GET.get("state", "")
    return (
        isinstance(expected, dict)
        and expected.get("user") == user.pk
        and expected.get("purpose") == "partner"
        and isinstance(expected.get("state"), str)
        and bool(state)
        and secrets.compare_digest(str(expected["state"]), state)
    )


@member_required
@require_GET
def partner_stripe_return(request: HttpRequest) -> HttpResponse:
    """Where Stripe sends the member back: check the state, exchange the code, show the result."""
    user = _member(request)
    if not _state_matches(request, user):
        messages.error(
            request,
            "Stripe could not be connected: this answer from Stripe does not match a connection you started "
            "here (it may be old, or from another browser). Nothing was changed. Click Connect Stripe to start "
            "again.",
        )
        return redirect("affiliates:partners")
    try:
        account = connect.stripe_account_connect_from_answer(
            params=request.GET,
            by=user,
            purpose=StripeAccount.Purpose.PARTNER,
            retry="Connect Stripe",
            taken="This Stripe account is already connected here by someone else, so it was not connected. "
            "Click Connect Stripe and choose your own account.",
        )
    except connect.ConnectRefused as exc:
        messages.error(request, str(exc))
        return redirect("affiliates:partners")
    messages.success(request, f"Your Stripe account {account.account_id} is connected.")
    return redirect("affiliates:partners")


@member_required
@require_POST
def partner_stripe_disconnect(request: HttpRequest) -> HttpResponse:
    account = selectors.partner_stripe_account(user=_member(request))
    if account is None:
        return redirect("affiliates:partners")
    try:
        connect.stripe_account_disconnect_from_stripe(account_id=account.account_id, by=_member(request))
    except gateway.StripeGatewayError as exc:
        messages.error(request, f"Stripe could not be disconnected, so it is still connected. {exc.user_message}")
        return redirect("affiliates:partners")
    messages.success(request, "Your Stripe account is disconnected.")
    return redirect("affiliates:partners")


# --- The creator's Affiliates page -----------------------------------------------------------
@staff_required
@require_GET
def dashboard_affiliates(request: HttpRequest) -> HttpResponse:
    if not settings.AFFILIATES_ENABLED:
        return render(
            request,
            "dashboard/placeholder.html",
            {"section": "affiliates", "title": "Affiliates", "empty": "No affiliate partners yet."},
        )
    return render(
        request,
        "affiliates/dashboard_affiliates.html",
        {
            "section": "affiliates",
            "ledger": selectors.creator_ledger(),
            "programs": selectors.resell_offers().count(),
            "now": timezone.now(),
            "hold_days": settings.AFFILIATE_HOLD_DAYS,
        },
    )


@staff_required
@require_POST
def dashboard_partner_status(request: HttpRequest, pk: int) -> HttpResponse:
    if not settings.AFFILIATES_ENABLED:
        raise Http404("The partner program is not open.")
    partner = get_object_or_404(Partner.objects.select_related("user"), pk=pk)
    form = PartnerStatusForm(request.POST, partner=partner)
    if not form.is_valid():
        for error in form.non_field_errors() or ["Choose Pause, Resume or Remove."]:
            messages.error(request, str(error))
        return redirect("affiliates:dashboard_affiliates")
    if form.needs_confirmation:
        return render(
            request,
            "affiliates/partner_remove_confirm.html",
            {"section": "affiliates", "partner": partner},
            status=409,
        )
    services.partner_status_set(partner=partner, status=form.status)
    words = {
        Partner.Status.PAUSED: "is paused: their links stop attributing new sales now",
        Partner.Status.ACTIVE: "is active again: their links attribute new sales",
        Partner.Status.REMOVED: "is removed: their links no longer attribute sales",
    }
    messages.success(request, f"{partner.user.email} {words[form.status]}.")
    return redirect("affiliates:dashboard_affiliates")


@staff_required
@require_POST
def dashboard_partner_commissions_stop(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop commissions: the partner's referred subscriptions pay no commission from their next
    invoice. A first press shows what it does and asks; ``confirm=yes`` stops."""
    if not settings.AFFILIATES_ENABLED:
        raise Http404("The partner program is not open.")
    partner = get_object_or_404(Partner.objects.select_related("user"), pk=pk)
    if partner.commissions_stopped_at is not None:
        messages.info(
            request,
            f"Commissions for {partner.user.email} were already stopped on "
            f"{date_format(timezone.localtime(partner.commissions_stopped_at), 'M j, Y')}.",
        )
        return redirect("affiliates:dashboard_affiliates")
    if not CommissionsStopForm(request.POST).confirmed:
        return render(
            request,
            "affiliates/partner_commissions_stop_confirm.html",
            {
                "section": "affiliates",
                "partner": partner,
                "subscriptions": selectors.referred_subscriptions_live(partner=partner),
            },
            status=409,
        )
    changed = commissions.partner_commissions_stop(partner=partner)
    messages.success(
        request,
        f"Commissions stopped for {partner.user.email}: {changed} referred subscription{pluralize(changed)} "
        f"{'pays' if changed == 1 else 'pay'} no commission from {'its' if changed == 1 else 'their'} next invoice. "
        "Commissions already earned are still paid after their hold.",
    )
    return redirect("affiliates:dashboard_affiliates")
