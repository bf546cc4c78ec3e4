from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

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
