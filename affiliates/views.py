from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.decorators import staff_required


@staff_required
def dashboard_affiliates(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/placeholder.html",
        {"section": "affiliates", "title": "Affiliates", "empty": "No affiliate partners yet."},
    )
