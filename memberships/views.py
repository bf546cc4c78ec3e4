from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.decorators import staff_required


@staff_required
def dashboard_offers(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/placeholder.html",
        {"section": "offers", "title": "Digital Offers", "empty": "No offers yet."},
    )
