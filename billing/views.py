from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import staff_required


@staff_required
def dashboard_sales(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/placeholder.html",
        {"section": "sales", "title": "Sales", "empty": "No sales yet."},
    )


@staff_required
def dashboard_integrations(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/placeholder.html",
        {
            "section": "integrations",
            "title": "Settings > Integrations",
            "empty": "Stripe is not connected yet. Paid offers need a connected Stripe account.",
        },
    )


@require_POST
def checkout_start(request: HttpRequest, slug: str) -> HttpResponse:
    """Starts a paid Stripe Checkout for an offer. Built by the billing work."""
    messages.error(request, "Paid checkout is not available yet.")
    return redirect("memberships:checkout", slug=slug)
