"""The site's URLs plus the baseline every figure is compared with: a minimal Django view
behind the same middleware stack."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def minimal(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("bench/minimal/", minimal),
    path("", include("config.urls")),
]
