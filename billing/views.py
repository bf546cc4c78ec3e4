from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import outbox, ratelimit
from accounts.decorators import staff_required
from accounts.models import OutboxMessage, User
from billing import metrics, selectors
from billing import stripe_gateway as gateway
from billing.forms import (
    EXPIRED,
    CheckoutTestForm,
    MembershipCancelForm,
    OneClickForm,
    PaidCheckoutForm,
    PaymentRefundForm,
    SalesFilterForm,
)
from billing.models import (
    CheckoutAttempt,
    OneClickPurchase,
    Payment,
    StripeAccount,
    TestPurchase,
    WebhookEvent,
    WebhookRefusal,
)
from billing.services import checkout as checkout_services
from billing.services import checkout_tests, connect, lifecycle, oneclick, webhooks
from core.charts import line_chart
from core.csv_export import csv_response
from core.figures import figures_cached
from hubs.models import HubGroup
from memberships import selectors as membership_selectors
from memberships import services as membership_services
from memberships import views as membership_views
from memberships.models import Entitlement, Offer, format_money

logger = logging.getLogger(__name__)

BROWSER_COOKIE = "billing_browser"
BROWSER_COOKIE_SALT = "billing.browser"
BROWSER_COOKIE_MAX_AGE = 60 * 60 * 24 * 30
OAUTH_STATE_SESSION_KEY = "billing_oauth_state"
# What a buyer typed on a checkout page before going to Stripe, kept in their own session when
# they come back with Stripe's Back link, to fill the form in again.
CHECKOUT_TYPED_SESSION_KEY = "billing_checkout_typed"
NOT_SELLING = (
    "This offer cannot be bought right now: the community's payments are not set up. "
    "Nothing was charged. Please try again later."
)


SALES_LISTED = 100


@staff_required
@require_GET
def dashboard_sales(request: HttpRequest) -> HttpResponse:
    form = SalesFilterForm(request.GET or None)
    filters, now = form.filters(), timezone.now()
    # The figures and the latest payments for these filters, rendered once and cached until a
    # payment changes them (docs/METRICS.md, *Freshness*). The test purchases (with their forms)
    # are read on each look.
    name = f"sales:{settings.TIME_ZONE}:{now.astimezone(metrics.zone()).date()}:{filters.query}"
    rendered = figures_cached(name, lambda: _sales_figures(filters, now))
    # The filters as asked for (the offers' names among them), rendered once per query.
    asked = hashlib.sha256(repr([form.is_bound, *(request.GET.get(field, "") for field in form.fields)]).encode())
    filters_html = figures_cached(
        f"sales-filters:{asked.hexdigest()}",
        lambda: render_to_string(
            "billing/includes/sales_filters.html",
            {"form": form, "filters": filters, "time_zone": settings.TIME_ZONE},
        ),
    )
    return render(
        request,
        "billing/sales.html",
        {
            "section": "sales",
            "filters_html": filters_html,
            "figures_html": rendered["figures"],
            "payments_html": rendered["payments"],
            "test_totals_html": rendered["test_totals"],
            "test_payments": selectors.checkout_test_payments_shown() if rendered["tests_listed"] else [],
        },
        status=400 if form.errors else 200,
    )


def _sales_figures(filters: metrics.SalesFilters, now: datetime) -> dict[str, Any]:
    """The Sales page's figures (charts, totals, by offer, test purchases' totals) and its
    latest payments, rendered."""
    report = metrics.sales_report(filters=filters, now=now)
    charts = [
        (
            series,
            line_chart(
                [point.net for point in series.points],
                report.labels,
                [point.net_label for point in series.points],
                width=600,
                height=180,
                padding=8,
            ),
            list(zip(report.labels, series.points, strict=True)),
        )
        for series in report.series
    ]
    payments = filters.payments(now=now).select_related("user", "offer").order_by("-paid_at", "-pk")
    context = {
        "filters": filters,
        "report": report,
        "charts": charts,
        "payments": payments[:SALES_LISTED],
        "listed": SALES_LISTED,
    }
    return {
        "figures": render_to_string("billing/includes/sales_figures.html", context),
        "payments": render_to_string("billing/includes/sales_payments.html", context),
        # Whether the page lists test purchases (read on each look then, for their forms).
        "tests_listed": selectors.checkout_test_payments_shown().exists(),
        "test_totals": render_to_string("billing/includes/sales_test_totals.html", context),
    }


@staff_required
@require_GET
def dashboard_sales_export(request: HttpRequest) -> HttpResponseBase:
    form = SalesFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        errors = " ".join(str(error) for field in form.errors.values() for error in field)
        return HttpResponseBadRequest(f"The export was not made: {errors}", content_type="text/plain; charset=utf-8")
    return csv_response(
        f"sales-{timezone.localdate():%Y-%m-%d}.csv",
        metrics.SALES_CSV_HEADER,
        metrics.sales_csv_rows(filters=form.filters(), now=timezone.now()),
    )


# --- A member's memberships, from their page on the Users screen -------------------------------
def _staff(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # staff_required let only a logged-in user through
    return request.user


@staff_required
@require_http_methods(["GET", "POST"])
def membership_cancel(request: HttpRequest, pk: int, entitlement_id: int) -> HttpResponse:
    """Confirm, then request, the end of a member's subscription: at the period's end, or now
    with or without a refund."""
    person = get_object_or_404(User, pk=pk)
    membership = next((m for m in selectors.memberships_for(user=person) if m.entitlement.pk == entitlement_id), None)
    if membership is None:
        raise Http404("No such membership for this user.")
    form = MembershipCancelForm(request.POST if request.method == "POST" else None, membership=membership)
    if request.method == "POST" and form.is_valid():
        when, refund = form.cleaned_data["when"], form.cleaned_data["refund"]
        try:
            lifecycle.subscription_cancel_request(
                entitlement=membership.entitlement,
                when=when,
                refund=refund,
                by=_staff(request),
                request_key=str(form.cleaned_data["request_key"]),
            )
        except lifecycle.CancelNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _cancel_requested(membership, when=when, refund=refund, form=form))
            return redirect("hubs:dashboard_user", pk=person.pk)
    form.with_fresh_key_if_expired()
    return render(
        request,
        "billing/membership_cancel.html",
        {"section": "users", "person": person, "membership": membership, "form": form},
        status=400 if request.method == "POST" else 200,
    )


def _cancel_requested(membership: selectors.Membership, *, when: str, refund: str, form: MembershipCancelForm) -> str:
    title = membership.offer.title
    if when == MembershipCancelForm.WHEN_PERIOD_END:
        return (
            f"Cancellation requested: {title} stops renewing and ends at the end of the period"
            f"{form.period_end_words}. "
            "Stripe confirms it in a moment; the history shows it then."
        )
    refunded = "" if refund == MembershipCancelForm.REFUND_NONE else f", with a refund of {form.refund_label(refund)}"
    return (
        f"Cancellation requested: {title} ends now{refunded}. "
        "Stripe confirms it in a moment; the history shows it then."
    )


# Where the refund page goes back to: the member's page, or a page named here (never a URL
# from the request, so it cannot send anyone elsewhere).
REFUND_BACK = {"sales": "billing:dashboard_sales"}


@staff_required
@require_http_methods(["GET", "POST"])
def payment_refund(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then request, a refund of a payment, in full or in part."""
    payment = get_object_or_404(Payment.objects.select_related("user", "offer"), pk=pk)
    back = request.POST.get("next") or request.GET.get("next", "")
    back = back if back in REFUND_BACK else ""
    form = PaymentRefundForm(request.POST if request.method == "POST" else None, payment=payment)
    if request.method == "POST" and form.is_valid():
        amount = form.cleaned_data["amount"]
        try:
            lifecycle.payment_refund_request(
                payment=payment, amount=amount, by=_staff(request), request_key=str(form.cleaned_data["request_key"])
            )
        except lifecycle.RefundNotAllowed as exc:
            form.add_error("amount", str(exc))
        else:
            messages.success(
                request,
                f"Refund of {format_money(amount, payment.currency)} requested for {payment.offer.title}. "
                "Stripe confirms it in a moment; the payment shows it then.",
            )
            return redirect(REFUND_BACK[back]) if back else redirect("hubs:dashboard_user", pk=payment.user_id)
    form.with_fresh_key_if_expired()
    return render(
        request,
        "billing/payment_refund.html",
        {
            "section": "sales" if back == "sales" else "users",
            "payment": payment,
            "form": form,
            "next": back,
            "revokes_access": payment.offer.refund_policy == Offer.RefundPolicy.REVOKE,
        },
        status=400 if request.method == "POST" else 200,
    )


# --- Settings > Integrations > Stripe ------------------------------------------------------
@staff_required
def dashboard_integrations(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "billing/integrations.html",
        {"section": "integrations", "account": selectors.stripe_account_current(), "sandbox": settings.STRIPE_SANDBOX},
    )


@staff_required
@require_POST
def stripe_connect(request: HttpRequest) -> HttpResponse:
    """Send the creator to Stripe's Connect OAuth page, with a state bound to this session."""
    state = secrets.token_urlsafe(32)
    request.session[OAUTH_STATE_SESSION_KEY] = state
    redirect_uri = settings.SITE_URL + reverse("billing:stripe_connect_return")
    assert isinstance(request.user, User)
    return redirect(gateway.oauth_authorize_url(state=state, redirect_uri=redirect_uri, email=request.user.email))


@staff_required
@require_GET
def stripe_connect_return(request: HttpRequest) -> HttpResponse:
    """Where Stripe sends the creator back: check the state, exchange the code, show the result."""
    expected = request.session.pop(OAUTH_STATE_SESSION_KEY, None)
    state = request.GET.get("state", "")
    if not expected or not secrets.compare_digest(str(expected), state):
        messages.error(
            request,
            "Stripe could not be connected: this answer from Stripe does not match a connection started here "
            "(it may be old, or from another browser). Nothing was changed. Click Connect to start again.",
        )
        return redirect("billing:dashboard_integrations")
    assert isinstance(request.user, User)
    try:
        account = connect.stripe_account_connect_from_answer(
            params=request.GET,
            by=request.user,
            purpose=StripeAccount.Purpose.CREATOR,
            retry="Connect",
            taken="This Stripe account is already connected here by a partner, so it was not connected as the "
            "community's. Click Connect and choose another account.",
        )
    except connect.ConnectRefused as exc:
        messages.error(request, str(exc))
        return redirect("billing:dashboard_integrations")
    if account.charges_enabled:
        messages.success(request, f"Stripe account {account.account_id} is connected. You can publish paid offers.")
    else:
        messages.warning(
            request,
            f"Stripe account {account.account_id} is connected, but Stripe needs more information before it can "
            "take payments. Open your Stripe dashboard, complete the verification steps it lists, then click "
            "Refresh status here.",
        )
    return redirect("billing:dashboard_integrations")


@staff_required
@require_POST
def stripe_refresh(request: HttpRequest) -> HttpResponse:
    account = selectors.stripe_account_current()
    if account is None:
        return redirect("billing:dashboard_integrations")
    try:
        status = connect.stripe_account_refresh_from_stripe(account_id=account.account_id)
    except gateway.StripeGatewayError as exc:
        messages.error(request, f"The status could not be refreshed. {exc.user_message}")
        return redirect("billing:dashboard_integrations")
    if status.charges_enabled:
        messages.success(request, "Stripe status refreshed: the account can take payments.")
    else:
        messages.warning(
            request,
            "Stripe still needs more information before this account can take payments. Complete the steps "
            "listed in your Stripe dashboard.",
        )
    return redirect("billing:dashboard_integrations")


@staff_required
@require_POST
def stripe_disconnect(request: HttpRequest) -> HttpResponse:
    account = selectors.stripe_account_current()
    if account is None:
        return redirect("billing:dashboard_integrations")
    # Stripe keeps charging their renewals, but the platform could no longer see them.
    subscribers = membership_selectors.active_subscriber_count()
    if subscribers and request.POST.get("confirm") != "yes":
        return render(
            request,
            "billing/integrations.html",
            {
                "section": "integrations",
                "account": account,
                "sandbox": settings.STRIPE_SANDBOX,
                "confirm_disconnect": subscribers,
            },
            status=409,
        )
    assert isinstance(request.user, User)
    try:
        connect.stripe_account_disconnect_from_stripe(account_id=account.account_id, by=request.user)
    except gateway.StripeGatewayError as exc:
        messages.error(request, f"Stripe could not be disconnected, so it is still connected. {exc.user_message}")
        return redirect("billing:dashboard_integrations")
    messages.success(request, "Stripe is disconnected. Paid offers cannot be bought until you connect an account.")
    return redirect("billing:dashboard_integrations")


# --- Webhooks ------------------------------------------------------------------------------
@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Verify, store, queue, answer: the processing happens in a task after commit."""
    try:
        event = gateway.webhook_event_verify(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    except gateway.WebhookSignatureInvalid as exc:
        # Kept (without the body) so that a test purchase can say Stripe is sending with another secret.
        _refusal_note(exc.reason, request.body)
        return HttpResponseBadRequest("invalid signature", content_type="text/plain")
    except gateway.WebhookPayloadInvalid:
        _refusal_note(WebhookRefusal.Reason.PAYLOAD, request.body)
        return HttpResponseBadRequest("invalid payload", content_type="text/plain")
    webhooks.webhook_event_record(event=event)
    return HttpResponse("ok", content_type="text/plain")


def _refusal_note(reason: str, body: bytes) -> None:
    """A note for the creator, never a reason to answer a refused delivery otherwise than 400."""
    try:
        webhooks.webhook_refusal_record(reason=reason, body=body)
    except DatabaseError:
        logger.warning("a refused webhook delivery (%s) could not be noted", reason, exc_info=True)


@staff_required
def dashboard_webhook_events(request: HttpRequest) -> HttpResponse:
    chosen = request.GET.get("status", "")
    status = WebhookEvent.Status(chosen) if chosen in WebhookEvent.Status.values else None
    stuck = list(OutboxMessage.objects.stuck(now=timezone.now())[:100])
    return render(
        request,
        "billing/webhook_events.html",
        {
            "section": "integrations",
            "events": selectors.webhook_events_recent(status=status),
            "statuses": WebhookEvent.Status.choices,
            "current_status": status,
            "refusals": selectors.webhook_refusals_recent(),
            "refusals_kept": WebhookRefusal.KEEP,
            "stuck_emails": [m for m in stuck if m.kind == OutboxMessage.Kind.EMAIL],
            "stuck_stripe_writes": [m for m in stuck if m.kind == OutboxMessage.Kind.STRIPE],
        },
    )


@staff_required
@require_POST
def dashboard_webhook_event_retry(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(WebhookEvent, pk=pk)
    if webhooks.webhook_event_retry(event=event):
        messages.success(request, f"Event {event.event_id} was queued again.")
    else:
        messages.info(request, f"Event {event.event_id} is already {event.get_status_display().lower()}.")
    return redirect("billing:dashboard_webhook_events")


@staff_required
@require_POST
def dashboard_outbox_retry(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(OutboxMessage, pk=pk)
    what = "Stripe write" if message.kind == OutboxMessage.Kind.STRIPE else "email"
    if outbox.outbox_retry(message=message):
        messages.success(request, f"The {what} {message.key} was queued again.")
    else:
        messages.info(request, f"The {what} {message.key} is already {message.get_status_display().lower()}.")
    return redirect("billing:dashboard_webhook_events")


# --- The buyer's memberships ----------------------------------------------------------------
@login_required
@require_GET
def my_memberships(request: HttpRequest) -> HttpResponse:
    """*My memberships*: each of the buyer's memberships, its receipts and its history."""
    assert isinstance(request.user, User)
    now = timezone.now()
    memberships = selectors.memberships_for(user=request.user, now=now)
    return render(request, "billing/my_memberships.html", {"memberships": memberships, "now": now})


def _own_entitlement(request: HttpRequest, pk: int) -> Entitlement:
    """The logged-in buyer's own entitlement, or a 404 (staff included: this is the buyer's door)."""
    return get_object_or_404(Entitlement.objects.select_related("offer"), pk=pk, user_id=request.user.pk)


@never_cache
@login_required
@require_GET
def membership_portal(request: HttpRequest, pk: int) -> HttpResponse:
    """Open a fresh Stripe billing portal session, where the buyer updates the card or cancels.

    A GET because emails link here: the portal's own address expires, this one does not.
    """
    entitlement = _own_entitlement(request, pk)
    assert isinstance(request.user, User)
    if not ratelimit.allow_request(request, scope="billing_portal", email=request.user.email):
        # Each visit calls Stripe on the creator's account: a flood must not spend its API limit.
        messages.error(request, ratelimit.TOO_MANY)
        return redirect("billing:my_memberships")
    return_url = settings.SITE_URL + reverse("billing:my_memberships")
    try:
        url = lifecycle.portal_session_url(entitlement=entitlement, return_url=return_url)
    except lifecycle.PortalNotAvailable as exc:
        messages.error(request, str(exc))
        return redirect("billing:my_memberships")
    except gateway.StripeGatewayError as exc:
        logger.warning("billing portal for entitlement %s failed: %s", entitlement.pk, exc)
        messages.error(
            request,
            f"Stripe's billing page for {entitlement.offer.title} could not be opened. {exc.user_message}",
        )
        return redirect("billing:my_memberships")
    return redirect(url)


# --- Paid checkout -------------------------------------------------------------------------
def _browser_key(request: HttpRequest) -> str | None:
    return request.get_signed_cookie(BROWSER_COOKIE, default=None, salt=BROWSER_COOKIE_SALT)


def _bind_browser(response: HttpResponse, key: str) -> None:
    response.set_signed_cookie(
        BROWSER_COOKIE,
        key,
        salt=BROWSER_COOKIE_SALT,
        max_age=BROWSER_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",  # sent on the top-level return from Stripe
        secure=settings.SESSION_COOKIE_SECURE,
    )


def _error_page(
    request: HttpRequest, offer: Offer, message: str, form: PaidCheckoutForm | None = None, status: int = 503
) -> HttpResponse:
    return render(
        request, "billing/checkout_error.html", {"offer": offer, "message": message, "form": form}, status=status
    )


@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest, slug: str) -> HttpResponse:
    """An offer's checkout page (``/offers/<slug>/checkout/``): billing's for a paid offer, whose
    form starts a Stripe Checkout; a free offer is memberships' (``checkout_free``)."""
    typed = request.session.get(CHECKOUT_TYPED_SESSION_KEY)
    if request.method == "GET" and typed is None:
        cached = membership_views.checkout_page_cached(request, slug)
        if cached is not None:
            return cached
    public = membership_selectors.offer_for_visitor(slug=slug, user=request.user)
    user = request.user if isinstance(request.user, User) else None
    if (
        request.method == "GET"
        and user is not None
        and membership_selectors.entitlement_active_for(offer=public.offer, email=user.email, user=user)
    ):
        # Before anything is filled in: nothing to pay or claim again (a claim sent anyway
        # leads into the community, as ``checkout_free`` answers it).
        return _owned_page(request, public.offer, email=user.email, groups=public.groups)
    if public.offer.is_free:
        return membership_views.checkout_free(request, public)
    if isinstance(typed, dict) and typed.get("offer") == public.offer.pk:
        initial = {"email": typed.get("email", ""), "full_name": typed.get("full_name", "")}
    else:
        initial = {"email": user.email, "full_name": user.full_name} if user else {}
    return _paid_checkout_page(request, public, PaidCheckoutForm(initial=initial))


def _owned_page(request: HttpRequest, offer: Offer, *, email: str, groups: list[HubGroup]) -> HttpResponse:
    """The page that tells a buyer who has the offer already so, with the way into the community."""
    community_url = membership_selectors.community_path(groups=groups)
    return render(
        request, "billing/checkout_owned.html", {"offer": offer, "email": email, "community_url": community_url}
    )


def _paid_checkout_page(
    request: HttpRequest, public: membership_selectors.PublicOffer, form: PaidCheckoutForm, status: int | None = None
) -> HttpResponse:
    """The paid offer's checkout page, its form posting to ``checkout_start`` (with each error
    next to its field and what was typed, when it comes back)."""
    action = reverse("billing:checkout_start", kwargs={"slug": public.offer.slug})
    return membership_views.checkout_page(request, public, form, action=action, status=status)


@require_POST
def checkout_start(request: HttpRequest, slug: str) -> HttpResponse:
    """Start a paid checkout: snapshot the price, create the Checkout Session, send the buyer to it."""
    offer = get_object_or_404(Offer.objects.published(), slug=slug)
    if offer.is_free:
        return redirect("billing:checkout", slug=offer.slug)
    public = membership_selectors.PublicOffer(offer=offer, is_preview=False)
    form = PaidCheckoutForm(request.POST)
    if not form.is_valid():
        return _paid_checkout_page(request, public, form, status=400)
    email, full_name = form.cleaned_data["email"], form.cleaned_data["full_name"]
    if not ratelimit.allow_request(request, scope="checkout_start", email=email):
        # Each start calls Stripe on the creator's account: a flood must not spend its API limit.
        form.add_error(None, ratelimit.TOO_MANY)
        return _paid_checkout_page(request, public, form, status=429)
    if membership_selectors.entitlement_active_for(offer=offer, email=email, user=request.user):
        return _owned_page(request, offer, email=email, groups=public.groups)
    account = selectors.stripe_account_current()
    if account is None or not account.charges_enabled:
        return _error_page(request, offer, NOT_SELLING, form)
    key = _browser_key(request) or secrets.token_urlsafe(32)
    try:
        _, url = checkout_services.checkout_session_start(
            offer=offer,
            account=account,
            email=email,
            full_name=full_name,
            browser_key=key,
            site_url=settings.SITE_URL,
            request=request,
        )
    except gateway.StripeAccountNotReady:
        return _error_page(request, offer, NOT_SELLING, form)
    except gateway.StripeGatewayError as exc:
        if exc.code == "email_invalid":
            # Stripe is stricter about addresses than the form: trying again would fail again.
            form.add_error("email", "Stripe does not accept this email address. Please check it or use another.")
            return _paid_checkout_page(request, public, form, status=400)
        return _error_page(request, offer, exc.user_message, form)
    request.session.pop(CHECKOUT_TYPED_SESSION_KEY, None)
    response = redirect(url)
    _bind_browser(response, key)
    return response


@never_cache
@require_GET
def checkout_return(request: HttpRequest, attempt_id: uuid.UUID) -> HttpResponse:
    """Back from Stripe: wait for the webhook's fulfilment (the page polls checkout_status)."""
    attempt = get_object_or_404(CheckoutAttempt.objects.select_related("offer"), pk=attempt_id)
    bound = selectors.checkout_attempt_for_browser(attempt_id=str(attempt.pk), browser_key=_browser_key(request))
    return render(
        request,
        "billing/checkout_return.html",
        {
            "attempt": attempt,
            # The buyer's address only to the browser that typed it.
            "email": attempt.email if bound else "",
            "offer": attempt.offer,
            "status_url": reverse("billing:checkout_status", kwargs={"attempt_id": attempt.pk}),
            "complete_url": reverse("billing:checkout_complete", kwargs={"attempt_id": attempt.pk}),
        },
    )


@never_cache
@require_GET
def checkout_status(request: HttpRequest, attempt_id: uuid.UUID) -> JsonResponse:
    status = CheckoutAttempt.objects.filter(pk=attempt_id).values_list("status", flat=True).first()
    if status is None:
        return JsonResponse({"status": "unknown"}, status=404)
    return JsonResponse({"status": status, "done": status == CheckoutAttempt.Status.PAID})


@never_cache
@require_GET
def checkout_complete(request: HttpRequest, attempt_id: uuid.UUID) -> HttpResponse:
    """Apply the purchase destination once the attempt is paid.

    The custom URL when the offer has one; otherwise the buyer lands in the community, logged
    in only in the browser that started the attempt, and only into an account the purchase
    created and nothing has touched since (an existing account logs in itself: its owner gets
    an email with a login link).
    """
    attempt = get_object_or_404(CheckoutAttempt.objects.select_related("offer", "user"), pk=attempt_id)
    if attempt.status != CheckoutAttempt.Status.PAID:
        return redirect("billing:checkout_return", attempt_id=attempt.pk)
    offer = attempt.offer
    destination = membership_selectors.offer_destination(offer=offer, groups=offer.hub_groups.all())
    if destination.is_custom_link:
        return redirect(destination.url)
    if request.user.is_authenticated and request.user == attempt.user:
        return redirect(destination.url)
    bound = selectors.checkout_attempt_for_browser(attempt_id=str(attempt.pk), browser_key=_browser_key(request))
    buyer = checkout_services.checkout_attempt_auto_login(
        attempt=attempt, browser_bound=bound is not None, viewer=request.user
    )
    if buyer is not None:
        login(request, buyer)
        messages.success(request, f"Welcome! You now have access to {offer.title}.")
        return redirect(destination.url)
    # The buyer's address only to the browser that typed it.
    recipient = f"to {attempt.email}" if bound is not None else "to the address given at checkout"
    messages.success(
        request,
        f"Your purchase of {offer.title} is complete. Log in to enter the community: we emailed a login link "
        f"{recipient}.",
    )
    return redirect("accounts:login")


@require_GET
def checkout_cancel(request: HttpRequest, attempt_id: uuid.UUID) -> HttpResponse:
    """Stripe's *Back* link: the checkout page again, with what the buyer typed when this browser
    started the attempt (kept in its session; any other browser gets an empty form)."""
    attempt = get_object_or_404(CheckoutAttempt.objects.select_related("offer"), pk=attempt_id)
    if attempt.is_test:  # its link is used up, and a draft has no checkout page of its own
        return render(request, "billing/checkout_test_link_invalid.html", {"reason": "canceled"})
    bound = selectors.checkout_attempt_for_browser(attempt_id=str(attempt.pk), browser_key=_browser_key(request))
    if bound is not None and bound.status in (CheckoutAttempt.Status.STARTED, CheckoutAttempt.Status.OPEN):
        request.session[CHECKOUT_TYPED_SESSION_KEY] = {
            "offer": bound.offer_id,
            "email": bound.email,
            "full_name": bound.full_name,
        }
    messages.warning(request, "Checkout was canceled and nothing was charged. You can try again whenever you like.")
    return redirect("billing:checkout", slug=attempt.offer.slug)


# --- One-click purchases (a private group's popup upsell) -------------------------------------
GROUP_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,140}")


def _member(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # login_required let only a logged-in user through
    return request.user


def _upsell_group(offer: Offer, slug: str) -> HubGroup | None:
    """The group the member came from, when the offer opens it (a slug from the request)."""
    if not GROUP_SLUG.fullmatch(slug):
        return None
    return offer.hub_groups.filter(slug=slug).first()


def _one_click_url(offer: Offer, group: HubGroup | None) -> str:
    url = reverse("billing:one_click", kwargs={"slug": offer.slug})
    return f"{url}?{urlencode({'group': group.slug})}" if group is not None else url


def _one_click_destination(offer: Offer, group: HubGroup | None) -> str:
    """Where the member goes once the offer is theirs: back to the group whose paywall sold it."""
    if group is not None:
        return group.get_absolute_url()
    return membership_selectors.offer_destination(offer=offer, groups=offer.hub_groups.all()).url


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def one_click(request: HttpRequest, slug: str) -> HttpResponse:
    """Buy an offer with the card saved at an earlier purchase: the confirmation page (GET),
    then the charge (POST), which goes on to the purchase's result. Without a card on file, or
    when the card cannot be used, the member goes to the offer's checkout."""
    offer = get_object_or_404(Offer.objects.published(), slug=slug)
    checkout_url = reverse("billing:checkout", kwargs={"slug": offer.slug})
    if offer.is_free:
        return redirect(checkout_url)
    user = _member(request)
    posted = request.method == "POST"
    form = OneClickForm(request.POST if posted else None)
    group = _upsell_group(offer, (request.POST if posted else request.GET).get("group", ""))
    if posted:
        if not form.is_valid():
            messages.error(request, EXPIRED)
            return redirect(_one_click_url(offer, group))
        existing = selectors.one_click_purchase_of(user=user, key=form.cleaned_data["request_key"])
        if existing is not None:  # the same page submitted again: nothing more is charged
            return redirect("billing:one_click_result", key=existing.key)
        if form.cleaned_data["amount"] != offer.price_amount:
            messages.warning(
                request, f"The price of {offer.title} is now {offer.price_label}. Check it and confirm again."
            )
            return redirect(_one_click_url(offer, group))
    if membership_selectors.entitlement_active_for(offer=offer, email=user.email, user=user):
        messages.info(request, f"You already have access to {offer.title}.")
        return redirect(_one_click_destination(offer, group))
    account = selectors.stripe_account_current()
    if account is None or not account.charges_enabled:
        return redirect(checkout_url)  # which says the offer cannot be bought now
    if user.email_verified_at is None:
        # Access added to an unproven account ends its sessions (docs/SECURITY.md): Checkout.
        return redirect(checkout_url)
    if not ratelimit.allow_request(request, scope="one_click", email=user.email):
        # Each visit calls Stripe on the creator's account: a flood must not spend its API limit.
        messages.error(request, ratelimit.TOO_MANY)
        return redirect(checkout_url)
    if posted:
        try:
            purchase, _ = oneclick.one_click_purchase_start(
                key=form.cleaned_data["request_key"], user=user, offer=offer, account=account, group=group
            )
        except gateway.StripeGatewayError as exc:
            logger.warning("one-click purchase of offer %s could not start: %s", offer.pk, exc)
            messages.error(request, f"Nothing was charged. {exc.user_message}")
            return redirect(checkout_url)
        if purchase.user_id != user.pk:  # a key that is someone else's: it cannot be guessed
            raise Http404("No such purchase.")
        return redirect("billing:one_click_result", key=purchase.key)
    try:
        card = oneclick.saved_card_find(user=user, account_id=account.account_id)
    except gateway.StripeGatewayError as exc:
        logger.warning("saved cards of user %s could not be read: %s", user.pk, exc)
        messages.error(request, f"Your saved card could not be read, so you can pay here. {exc.user_message}")
        return redirect(checkout_url)
    if card is None:
        return redirect(checkout_url)
    form = OneClickForm(initial={"amount": offer.price_amount, "group": group.slug if group else ""})
    return render(
        request,
        "billing/one_click.html",
        {
            "offer": offer,
            "card": card,
            "form": form,
            "group": group,
            "price": format_money(offer.price_amount, offer.currency),
            "back_url": group.get_absolute_url() if group else reverse("hubs:community"),
        },
    )


# --- Test purchases ----------------------------------------------------------------------------
# The links made in this session, by test: the row keeps only a hash of each link's key, so the
# page that shows a new link gets it from here.
TEST_LINKS_SESSION_KEY = "billing_test_links"
TEST_LINKS_KEPT = 10
TEST_NOTICE = (
    "Test purchase: this is the checkout your buyers see. Pay as they would; the purchase is "
    "marked as a test and left out of your sales."
)


def _test_link_remember(request: HttpRequest, test: TestPurchase, path: str) -> None:
    links = dict(request.session.get(TEST_LINKS_SESSION_KEY) or {})
    links[str(test.pk)] = path
    request.session[TEST_LINKS_SESSION_KEY] = dict(list(links.items())[-TEST_LINKS_KEPT:])


@staff_required
@require_http_methods(["GET", "POST"])
def checkout_test_new(request: HttpRequest, pk: int) -> HttpResponse:
    """An offer's *Test purchase*: the test buyer's email (a plus-address of the creator's,
    or any other), then a signed single-use link and its live checklist."""
    offer = get_object_or_404(Offer, pk=pk)
    creator = _staff(request)
    form = CheckoutTestForm(
        request.POST if request.method == "POST" else None,
        initial={"email": checkout_tests.checkout_test_email_suggestion(user=creator)},
    )
    if request.method == "POST" and not offer.is_free and form.is_valid():
        test, path = checkout_tests.checkout_test_create(offer=offer, by=creator, email=form.cleaned_data["email"])
        _test_link_remember(request, test, path)
        return redirect("billing:checkout_test", pk=test.pk)
    return render(
        request,
        "billing/checkout_test_new.html",
        {
            "section": "offers",
            "offer": offer,
            "form": form,
            "tests": selectors.checkout_tests_of(offer=offer),
            "max_age_hours": int(checkout_tests.TEST_LINK_MAX_AGE.total_seconds() // 3600),
        },
        status=400 if form.errors else 200,
    )


def _test_purchase(pk: int) -> TestPurchase:
    return get_object_or_404(TestPurchase.objects.select_related("offer", "attempt"), pk=pk)


@staff_required
@require_GET
def checkout_test(request: HttpRequest, pk: int) -> HttpResponse:
    """A test purchase's live checklist (``static/js/checkout_test.js`` polls ``checkout_test_status``;
    without JavaScript the page reloads itself)."""
    test = _test_purchase(pk)
    path = (request.session.get(TEST_LINKS_SESSION_KEY) or {}).get(str(test.pk), "")
    checklist = checkout_tests.checkout_test_checklist(test=test)
    return render(
        request,
        "billing/checkout_test.html",
        {
            "section": "offers",
            "test": test,
            "offer": test.offer,
            "link": settings.SITE_URL + path if path and test.used_at is None else "",
            "checklist": checklist,
            "status_url": reverse("billing:checkout_test_status", kwargs={"pk": test.pk}),
            "max_age_hours": int(checkout_tests.TEST_LINK_MAX_AGE.total_seconds() // 3600),
        },
    )


@never_cache
@staff_required
@require_GET
def checkout_test_status(request: HttpRequest, pk: int) -> JsonResponse:
    """The checklist as JSON, for the page to update itself without a reload."""
    checklist = checkout_tests.checkout_test_checklist(test=_test_purchase(pk))
    return JsonResponse(checklist.as_json())


@staff_required
@require_GET
def checkout_test_email(request: HttpRequest, pk: int) -> HttpResponse:
    """The confirmation email the test buyer got, as they read it (its login link left out:
    each one works once, and only for the buyer)."""
    test = _test_purchase(pk)
    attempt = test.attempt
    entitlement = (
        Entitlement.objects.select_related("user", "offer").filter(user_id=attempt.user_id, offer=test.offer).first()
        if attempt is not None and attempt.user_id is not None
        else None
    )
    email = message = None
    if entitlement is not None:
        email = membership_services.confirmation_email(
            entitlement=entitlement, login_link="[a single-use login link, sent to the buyer only]"
        )
        message = OutboxMessage.objects.filter(key=f"confirmation:{entitlement.pk}:{entitlement.backed_by}").first()
    return render(
        request,
        "billing/checkout_test_email.html",
        {"section": "offers", "test": test, "offer": test.offer, "email": email, "message": message},
    )


@staff_required
@require_POST
def checkout_test_close(request: HttpRequest, pk: int) -> HttpResponse:
    """*Refund and hide*: the test's payments refunded in full through the outbox, hidden from
    Sales (kept in the ledger, marked as tests), and the test buyer's access ended."""
    test = _test_purchase(pk)
    try:
        refunds = checkout_tests.checkout_test_close(test=test, by=_staff(request))
    except checkout_tests.CheckoutTestNotClosable as exc:
        messages.error(request, str(exc))
    else:
        refunded = "Its refund is requested from Stripe" if refunds else "Nothing was left to refund"
        messages.success(
            request,
            f"The test purchase is hidden from your sales and its buyer no longer has access. {refunded}; the "
            "payment stays in the ledger, marked as a test.",
        )
    if request.POST.get("next") == "sales":
        return redirect("billing:dashboard_sales")
    return redirect("billing:checkout_test", pk=test.pk)


# The test link's pages, which the creator opens in a private window, as a buyer.
def _test_link_refused(request: HttpRequest, error: checkout_tests.CheckoutTestLinkInvalid) -> HttpResponse:
    return render(
        request,
        "billing/checkout_test_link_invalid.html",
        {"reason": error.reason, "max_age_hours": int(checkout_tests.TEST_LINK_MAX_AGE.total_seconds() // 3600)},
        status=404 if error.reason == "invalid" else 410,
    )


def _test_checkout_page(
    request: HttpRequest, test: TestPurchase, link: str, form: PaidCheckoutForm, status: int | None = None
) -> HttpResponse:
    public = membership_selectors.PublicOffer(offer=test.offer, is_preview=False)
    return membership_views.checkout_page(
        request,
        public,
        form,
        action=reverse("billing:checkout_test_pay", kwargs={"link": link}),
        status=status,
        extra={
            "checkout_notice": TEST_NOTICE,
            "custom_code_url": reverse("billing:checkout_test_custom_code", kwargs={"link": link}),
        },
    )


def _fall_back_message(purchase: OneClickPurchase) -> str:
    card = f" ({purchase.card_label})" if purchase.card_label else ""
    Status = OneClickPurchase.Status
    if purchase.status == Status.DECLINED:
        return (
            f"Your saved card{card} was declined: {purchase.error} Nothing was charged. "
            "You can pay with another card here."
        )
    if purchase.status == Status.AUTHENTICATION_REQUIRED:
        return (
            f"Your bank wants you to confirm this payment, so your saved card{card} was not charged. "
            "Continue here to pay: your bank can ask you to confirm it on the payment page."
        )
    if purchase.status == Status.NO_CARD:
        return "You have no saved card any more, so nothing was charged. You can pay with a card here."
    return f"Your saved card could not be charged, so nothing was. {purchase.error} You can pay here instead."


@never_cache
@login_required
@require_GET
def one_click_result(request: HttpRequest, key: uuid.UUID) -> HttpResponse:
    """Where a one-click purchase goes after its confirmation: into the group once paid, to the
    offer's checkout when the card could not be used, or a page that waits while it is charged."""
    user = _member(request)
    purchase = selectors.one_click_purchase_of(user=user, key=key)
    if purchase is None:
        raise Http404("No such purchase.")
    offer, attempt = purchase.offer, purchase.attempt
    if attempt.status == CheckoutAttempt.Status.PAID:
        messages.success(request, f"You now have access to {offer.title}. We emailed the details to {user.email}.")
        return redirect(_one_click_destination(offer, purchase.group))
    if attempt.status == CheckoutAttempt.Status.FLAGGED:
        messages.warning(
            request, f"Your payment for {offer.title} was received; the community's team will confirm your access."
        )
        return redirect("billing:my_memberships")
    if purchase.status in OneClickPurchase.FALLS_BACK:
        messages.error(request, _fall_back_message(purchase))
        return redirect("billing:checkout", slug=offer.slug)
    return render(request, "billing/one_click_pending.html", {"purchase": purchase, "offer": offer})


@never_cache
@require_GET
def checkout_test_link(request: HttpRequest, link: str) -> HttpResponse:
    """The offer's checkout as a buyer sees it (its custom code included), through a test link,
    drafts included, the form filled with the test buyer's email."""
    try:
        test = checkout_tests.checkout_test_link_check(link=link)
    except checkout_tests.CheckoutTestLinkInvalid as exc:
        return _test_link_refused(request, exc)
    form = PaidCheckoutForm(initial={"email": test.email, "full_name": "Test Buyer"})
    return _test_checkout_page(request, test, link, form)


@require_POST
def checkout_test_pay(request: HttpRequest, link: str) -> HttpResponse:
    """Start the test's checkout (using the link up) and send the test buyer to Stripe."""
    try:
        test = checkout_tests.checkout_test_link_check(link=link)
    except checkout_tests.CheckoutTestLinkInvalid as exc:
        return _test_link_refused(request, exc)
    form = PaidCheckoutForm(request.POST)
    if not form.is_valid():
        return _test_checkout_page(request, test, link, form, status=400)
    email, full_name = form.cleaned_data["email"], form.cleaned_data["full_name"]
    if not ratelimit.allow_request(request, scope="checkout_start", email=email):
        form.add_error(None, ratelimit.TOO_MANY)
        return _test_checkout_page(request, test, link, form, status=429)
    if membership_selectors.entitlement_active_for(offer=test.offer, email=email, user=request.user):
        return render(request, "billing/checkout_owned.html", {"offer": test.offer, "email": email})
    account = selectors.stripe_account_current()
    if account is None or not account.charges_enabled:
        checkout_tests.checkout_test_problem_record(
            test=test,
            problem="Stripe is not connected, or cannot take payments yet: see Settings > Integrations.",
        )
        return _error_page(request, test.offer, NOT_SELLING, form)
    key = _browser_key(request) or secrets.token_urlsafe(32)
    try:
        _, url = checkout_tests.checkout_test_start(
            test=test, account=account, email=email, full_name=full_name, browser_key=key, site_url=settings.SITE_URL
        )
    except checkout_tests.CheckoutTestLinkInvalid as exc:
        return _test_link_refused(request, exc)
    except gateway.StripeAccountNotReady:
        return _error_page(request, test.offer, NOT_SELLING, form)
    except gateway.StripeGatewayError as exc:
        return _error_page(request, test.offer, exc.user_message, form)
    response = redirect(url)
    _bind_browser(response, key)
    return response


@require_GET
@xframe_options_sameorigin
def checkout_test_custom_code(request: HttpRequest, link: str) -> HttpResponse:
    """The offer's custom code for the test link's checkout page (a draft's has no public frame)."""
    try:
        test = checkout_tests.checkout_test_link_check(link=link, allow_used=True)
    except checkout_tests.CheckoutTestLinkInvalid as exc:
        return _test_link_refused(request, exc)
    return membership_views.custom_code_document(test.offer.custom_code)
