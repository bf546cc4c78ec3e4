from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.decorators import staff_required


@staff_required
def dashboard_community(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/placeholder.html",
        {"section": "community", "title": "Community", "empty": "No hub groups yet."},
    )


@staff_required
def dashboard_users(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/placeholder.html",
        {"section": "users", "title": "Users", "empty": "Members will be listed here."},
    )
