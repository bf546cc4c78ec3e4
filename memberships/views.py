from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.decorators import staff_required


@staff_required
def dashboard_offers(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/placeholder.html",
        {"section": "offers", "title": "Digital Offers", "empty": "No offers yet."},
    )


def offer_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The public offer page (landing page when enabled, else the checkout). Built by the offers work."""
    raise Http404("No offer here yet.")


def checkout(request: HttpRequest, slug: str) -> HttpResponse:
    """The checkout page of an offer. Built by the offers work."""
    raise Http404("No offer here yet.")
