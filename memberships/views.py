from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.cache import caches
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.http.response import HttpResponseBase
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.connection import ConnectionProxy
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import ratelimit
from accounts.decorators import staff_required
from accounts.models import User
from accounts.services import magic_link_request
from core.composition import panels
from core.csv_export import csv_response
from core.markdown import render_markdown
from hubs.models import HubGroup
from memberships import emails, hooks, selectors, services
from memberships.forms import BuyersFilterForm, FreeClaimForm, OfferForm, pending_image_name, pending_image_token
from memberships.models import Offer
from memberships.slots import OFFER_ACTIONS
from memberships.tasks import send_test_confirmation_email

# Rendered pages are cached in this process's memory (see the "local" cache in settings).
cache = ConnectionProxy(caches, "local")

# --- Creator dashboard ----------------------------------------------------------------------------


@staff_required
def dashboard_offers(request: HttpRequest) -> HttpResponse:
    chosen = request.GET.get("status", "")
    status = Offer.Status(chosen) if chosen in Offer.Status.values else None
    offers = selectors.dashboard_offer_list(status=status)
    return render(
        request,
        "memberships/dashboard_offers.html",
        {"section": "offers", "offers": offers, "status": status, "statuses": Offer.Status.choices},
    )


@staff_required
def offer_new(request: HttpRequest) -> HttpResponse:
    """Pick the type of digital offer (only *Membership* today)."""
    return render(request, "memberships/offer_new.html", {"section": "offers", "kinds": Offer.Kind.choices})


@staff_required
@require_http_methods(["GET", "POST"])
def offer_create(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in Offer.Kind.values:
        return redirect("memberships:offer_new")
    return _editor(request, offer=None)


@staff_required
@require_http_methods(["GET", "POST"])
def offer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _editor(request, offer=get_object_or_404(Offer, pk=pk))


def _editor(request: HttpRequest, *, offer: Offer | None) -> HttpResponse:
    assert isinstance(request.user, User)
    form = OfferForm(request.POST or None, request.FILES or None, offer=offer)
    impact = None
    if request.method == "POST":
        valid = form.is_valid()
        thumbnail, cover = _keep_images(form)
        action = request.POST.get("action", "save")
        if action == "test_email":
            send_test_confirmation_email.delay(
                request.user.pk,
                request.POST.get("title", ""),
                request.POST.get("confirmation_subject", ""),
                request.POST.get("confirmation_body", ""),
            )
            messages.success(request, f"A test email is on its way to {request.user.email}. Nothing was saved yet.")
        elif valid:
            groups = list(form.cleaned_data["hub_groups"])
            if offer is not None:
                impact = selectors.group_change_impact(offer=offer, new_groups=groups)
            if impact is None or not impact.changes_access or request.POST.get("confirm_groups"):
                return _save(request, form, offer=offer, groups=groups, thumbnail=thumbnail, cover=cover)
    return _render_editor(request, form, offer=offer, impact=impact)


def _data_copy(form: OfferForm) -> QueryDict:
    data = form.data
    return data.copy() if isinstance(data, QueryDict) else QueryDict(mutable=True)


def _keep_images(form: OfferForm) -> tuple[str, str]:
    """Store newly uploaded images at once, so a form shown again (an error elsewhere, the
    buyers notice) keeps them through a signed hidden field instead of asking again."""
    names = []
    data = _data_copy(form)
    for role in ("thumbnail", "cover"):
        processed = getattr(form, f"{role}_image")
        name = ""
        if processed is not None:
            name = services.offer_image_store(image=processed, role=role)
        else:
            name = pending_image_name(form.data.get(f"{role}_pending", ""))
        if name:
            data[f"{role}_pending"] = pending_image_token(name)
        names.append(name)
    form.data = data
    return names[0], names[1]


def _save(
    request: HttpRequest, form: OfferForm, *, offer: Offer | None, groups: list[HubGroup], thumbnail: str, cover: str
) -> HttpResponse:
    fields = form.offer_fields()
    slug = form.cleaned_data["slug"]
    try:
        if offer is None:
            offer = services.offer_create(fields=fields, hub_groups=groups, slug=slug, thumbnail=thumbnail, cover=cover)
            messages.success(request, f"“{offer.title}” is saved as a draft.")
        else:
            offer = services.offer_update(
                offer=offer,
                fields=fields,
                hub_groups=groups,
                slug=slug,
                thumbnail=thumbnail,
                cover=cover,
                remove_cover=form.cleaned_data["remove_cover"],
            )
            messages.success(request, f"“{offer.title}” is saved.")
    except services.OfferSlugTaken:
        form.add_error("slug", "Another offer already uses this address. Choose another one.")
        return _render_editor(request, form, offer=offer, impact=None)
    return redirect("memberships:offer_edit", pk=offer.pk)


def _render_editor(request: HttpRequest, form: OfferForm, *, offer: Offer | None, impact: Any) -> HttpResponse:
    def pending_url(role: str) -> str:
        name = pending_image_name(form.data.get(f"{role}_pending", "")) if form.is_bound else ""
        return default_storage.url(name) if name else ""

    buyers = selectors.offer_buyer_count(offer=offer) if offer else 0
    context = {
        "section": "offers",
        "form": form,
        "offer": offer,
        "impact": impact,
        "buyers": buyers,
        # Whether paid offers can be sold (a Stripe account: billing answers through the hooks).
        "paid_offers_sellable": hooks.paid_offers_sellable(),
        "publish_problems": services.offer_publish_problems(offer=offer) if offer else [],
        "pending_thumbnail_url": pending_url("thumbnail"),
        "pending_cover_url": pending_url("cover"),
        "placeholders": emails.PLACEHOLDERS,
        "default_subject": emails.DEFAULT_SUBJECT,
        "default_body": emails.DEFAULT_BODY,
        "initial_group_ids": [g.pk for g in offer.hub_groups.all()] if offer else [],
        # Higher layers' buttons (billing: Test purchase).
        "offer_actions": panels(OFFER_ACTIONS, request=request, offer=offer) if offer else [],
    }
    return render(request, "memberships/offer_editor.html", context, status=400 if form.errors else 200)


@staff_required
@require_POST
def offer_publish(request: HttpRequest, pk: int) -> HttpResponse:
    offer = get_object_or_404(Offer, pk=pk)
    try:
        offer = services.offer_publish(offer=offer)
    except services.OfferNotPublishable as problem:
        for reason in problem.reasons:
            messages.error(request, f"Not published: {reason}")
    else:
        messages.success(request, f"“{offer.title}” is published.")
    return redirect("memberships:offer_edit", pk=offer.pk)


@staff_required
@require_POST
def offer_unpublish(request: HttpRequest, pk: int) -> HttpResponse:
    offer = services.offer_unpublish(offer=get_object_or_404(Offer, pk=pk))
    messages.success(request, f"“{offer.title}” is unpublished: its pages are hidden. Buyers keep their access.")
    return redirect("memberships:offer_edit", pk=offer.pk)


@staff_required
@require_POST
def offer_archive(request: HttpRequest, pk: int) -> HttpResponse:
    offer = services.offer_archive(offer=get_object_or_404(Offer, pk=pk))
    messages.success(request, f"“{offer.title}” is archived. Buyers keep their access.")
    return redirect("memberships:dashboard_offers")


@staff_required
@require_POST
def offer_duplicate(request: HttpRequest, pk: int) -> HttpResponse:
    copy = services.offer_duplicate(offer=get_object_or_404(Offer, pk=pk))
    messages.success(request, f"“{copy.title}” is a draft copy.")
    return redirect("memberships:offer_edit", pk=copy.pk)


# --- Public pages ---------------------------------------------------------------------------------


def _with_query(request: HttpRequest, url: str) -> str:
    # Keep ?ref= and the like from the offer page to the checkout.
    query = request.META.get("QUERY_STRING", "")
    return f"{url}?{query}" if query else url


# Rendered landing texts, by the hash of their Markdown: a key that cannot go stale.
LANDING_BODY_CACHE_SECONDS = 24 * 60 * 60


def _landing_body_html(body: str) -> SafeString:
    """The landing page's text as HTML, rendered once per process rather than on every view."""
    key = "landing-body:" + hashlib.sha256(body.encode()).hexdigest()
    html: str | None = cache.get(key)
    if html is None:
        html = render_markdown(body)
        cache.set(key, html, LANDING_BODY_CACHE_SECONDS)
    return mark_safe(html)  # rendered by core.markdown, which sanitises with nh3


def offer_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The public offer page: the landing page when enabled, else straight to the checkout."""
    public = selectors.offer_for_visitor(slug=slug, user=request.user)
    offer = public.offer
    # The checkout page is billing's (it sells paid offers and hands free ones to ``checkout_free``):
    # the offer page names it by its URL, the one step up the layers of a purchase.
    checkout_url = _with_query(request, reverse("billing:checkout", kwargs={"slug": offer.slug}))
    if not offer.landing_enabled:
        return redirect(checkout_url)
    includes = [line.strip() for line in offer.landing_includes.splitlines() if line.strip()] or [
        group.name for group in public.groups
    ]
    return render(
        request,
        "memberships/landing.html",
        {
            "offer": offer,
            "is_preview": public.is_preview,
            "includes": includes,
            "body_html": _landing_body_html(offer.landing_body),
            "checkout_url": checkout_url,
        },
    )


# Stand for the visitor's CSRF token and the response's CSP nonce in a cached checkout page.
_TOKEN_SLOT = "@@csrf-token-slot-7d1f@@"
_NONCE_SLOT = "@@csp-nonce-slot-3b9e@@"
# Offer writes delete the cached page at once (memberships.services); the short lifetime bounds
# how long a process whose local cache missed that deletion can serve the old page.
CHECKOUT_CACHE_SECONDS = 5


def checkout_free(request: HttpRequest, public: selectors.PublicOffer) -> HttpResponse:
    """A free offer's checkout page, and its claim (POST). Billing's checkout view, which serves
    ``/offers/<slug>/checkout/`` for every offer, hands free offers here."""
    user = request.user if isinstance(request.user, User) else None
    initial = {"email": user.email, "full_name": user.full_name} if user else None
    form = FreeClaimForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if public.is_preview:
            messages.error(request, "This is a preview: publish the offer to let people claim it.")
        elif user is not None or form.is_valid():
            response = _claim(request, public, form, user)
            if response is not None:
                return response
    return checkout_page(request, public, form, action=request.path)


def _claim(
    request: HttpRequest, public: selectors.PublicOffer, form: FreeClaimForm, user: User | None
) -> HttpResponse | None:
    """Claim a free offer; ``None`` shows the checkout again with the form's errors."""
    offer = public.offer
    email = user.email if user else form.cleaned_data["email"]
    full_name = user.full_name if user else form.cleaned_data["full_name"]
    if not ratelimit.allow_request(request, scope="free_claim", email=email):
        form.add_error(None, ratelimit.TOO_MANY)
        return None
    try:
        claim = services.offer_claim_free(offer=offer, email=email, full_name=full_name)
    except services.OfferNotClaimable as refusal:
        form.add_error(None, f"{refusal} Please contact the community's team.")
        return None
    destination = selectors.offer_destination(offer=offer, groups=public.groups)
    if user is not None and not claim.sessions_ended:
        return redirect(destination.url)
    if user is not None:
        # A session opened without proof of the address gains nothing new: it has just been
        # ended, and the confirmation email's link lets the address's owner in.
        logout(request)
    elif claim.new_account:
        login(request, claim.user)
        messages.success(request, f"Welcome! You have joined {offer.title}.")
        return redirect(destination.url)
    # An existing account is never logged in from a form anyone can fill in: its owner
    # proves the address through the emailed link. A repeated claim sends no confirmation, so
    # it sends a fresh login link instead: the page below tells the person to check their email.
    if not claim.granted:
        magic_link_request(email=claim.user.email, next_url=selectors.community_path(groups=public.groups))
    if destination.is_custom_link:
        return redirect(destination.url)
    return render(request, "memberships/claim_sent.html", {"offer": offer, "email": claim.user.email})


def checkout_page_cached(request: HttpRequest, slug: str) -> HttpResponse | None:
    """The checkout page as every anonymous visitor sees it, when ``checkout_page`` rendered it
    in the last few seconds, with only the visitor's CSRF token and the response's CSP nonce
    filled in: the busiest page needs no query. None when there is no such page to serve.

    Claims and checkout starts (POST) always read the offer from the database, so a cached page
    of an offer that was just unpublished cannot be used to claim or buy it.
    """
    if request.user.is_authenticated or len(messages.get_messages(request)):
        return None
    page = cache.get(selectors.checkout_cache_key(slug))
    if not isinstance(page, _CachedCheckout):
        return None
    return _filled(request, page)


def _filled(request: HttpRequest, page: _CachedCheckout) -> HttpResponse:
    nonce = str(request.csp_nonce)  # type: ignore[attr-defined]
    response = HttpResponse(page.html.replace(_TOKEN_SLOT, get_token(request)).replace(_NONCE_SLOT, nonce))
    return _allow_form_action(response, page.form_action)


def checkout_page(
    request: HttpRequest,
    public: selectors.PublicOffer,
    form: forms.Form,
    *,
    action: str,
    status: int | None = None,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """An offer's checkout page, free or paid (billing renders the paid one through this), with
    ``form`` posting to ``action``. ``extra`` adds to the template's context (billing's test
    link: ``checkout_notice``, a banner, and ``custom_code_url``, its own frame); such a page is
    never cached.

    The page an anonymous visitor gets on a GET (a published offer, an empty form, no messages)
    is rendered once with slots for the CSRF token and the CSP nonce and kept a few seconds for
    ``checkout_page_cached``.
    """
    offer = public.offer
    context = {
        "offer": offer,
        "is_preview": public.is_preview,
        "form": form,
        "action": action,
        # What the membership includes: its groups, hidden ones aside.
        "groups": public.groups,
        **(extra or {}),
    }
    if (
        extra is None
        and request.method == "GET"
        and not request.user.is_authenticated
        and offer.is_published
        and not public.is_preview
        and not form.is_bound
        # A form filled in for this visitor (what they typed before going to Stripe) is theirs alone.
        and not form.initial
        and not len(messages.get_messages(request))
    ):
        page = _CachedCheckout(
            html=render_to_string(
                "memberships/checkout.html",
                {**context, "csrf_token": _TOKEN_SLOT, "CSP_NONCE": _NONCE_SLOT},
                request=request,
            ),
            custom_code=offer.custom_code,
            form_action=_form_action(offer),
        )
        cache.set(selectors.checkout_cache_key(offer.slug), page, CHECKOUT_CACHE_SECONDS)
        return _filled(request, page)
    response = render(
        request,
        "memberships/checkout.html",
        context,
        status=status or (400 if form.errors else 200),
    )
    return _allow_form_action(response, _form_action(offer))


@dataclass(frozen=True)
class _CachedCheckout:
    """A published offer's checkout page as anonymous visitors see it, and its custom code (the
    page's frame asks for it next)."""

    html: str
    custom_code: str
    form_action: str


def _form_action(offer: Offer) -> str:
    """The outside origin a claim may redirect to: a page's policy decides where its forms go,
    redirects included."""
    parts = urlsplit(offer.redirect_url)
    return f"{parts.scheme}://{parts.netloc}" if offer.redirect_enabled and parts.netloc else ""


def _allow_form_action(response: HttpResponse, origin: str) -> HttpResponse:
    if origin:
        response._csp_update = {"form-action": [origin]}  # type: ignore[attr-defined]
    return response


@require_GET
@xframe_options_sameorigin
def custom_code(request: HttpRequest, slug: str) -> HttpResponse:
    """The offer's custom code (a pixel, a chat widget), alone in its own document, for the
    sandboxed frame of the checkout page.

    The response's policy sandboxes it even when opened on its own: its origin is opaque, so it
    cannot read this site's pages or cookies, and browsers send no session with its requests.
    The same visibility as the checkout page: published, or a preview for staff. It is rendered
    without the request, so nothing about the visitor ever reaches it.

    Browsers say where a response will go (Sec-Fetch-Dest): opened in a tab of its own, where
    navigating itself would be a top-level navigation that carries the session cookie, it is
    sent to the checkout page instead, which frames it.
    """
    if request.headers.get("Sec-Fetch-Dest", "iframe") not in ("iframe", "frame"):
        elsewhere = redirect("billing:checkout", slug=slug)
        patch_vary_headers(elsewhere, ["Sec-Fetch-Dest"])
        return elsewhere
    page = cache.get(selectors.checkout_cache_key(slug))
    if isinstance(page, _CachedCheckout):  # only ever a published offer
        code = page.custom_code
    else:
        code = selectors.offer_for_visitor(slug=slug, user=request.user).offer.custom_code
    return custom_code_document(code)


def custom_code_document(code: str) -> HttpResponse:
    """The custom code's own document, sandboxed by its policy (also billing's test link's frame)."""
    response = HttpResponse(render_to_string("memberships/custom_code.html", {"custom_code": code}))
    response._csp_config = settings.CUSTOM_CODE_CSP  # type: ignore[attr-defined]
    patch_vary_headers(response, ["Sec-Fetch-Dest"])
    return response


# --- Buyers, on the Users screen -----------------------------------------------------------------
BUYERS_PER_PAGE = 50


@staff_required
@require_GET
def dashboard_buyers(request: HttpRequest) -> HttpResponse:
    form = BuyersFilterForm(request.GET or None)
    page = Paginator(selectors.buyers_listed(**form.filters()), BUYERS_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [(entitlement, entitlement.effective_status_label(now)) for entitlement in page]
    return render(
        request,
        "memberships/dashboard_buyers.html",
        {"section": "users", "form": form, "page_obj": page, "rows": rows, "query": form.query},
        status=400 if form.errors else 200,
    )


@staff_required
@require_GET
def dashboard_buyers_export(request: HttpRequest) -> HttpResponseBase:
    form = BuyersFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        errors = " ".join(str(error) for field in form.errors.values() for error in field)
        return HttpResponseBadRequest(f"The export was not made: {errors}", content_type="text/plain; charset=utf-8")
    return csv_response(
        f"buyers-{timezone.localdate():%Y-%m-%d}.csv",
        selectors.BUYERS_CSV_HEADER,
        selectors.buyers_csv_rows(**form.filters()),
    )
