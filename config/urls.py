from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path, register_converter
from django.views.generic import RedirectView
from django.views.static import serve

from accounts.views import admin_login
from core.ids import IdConverter

# Before the apps' patterns are read: they write row ids as <id:pk>.
register_converter(IdConverter, "id")

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/login/", admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("hubs.urls")),
    path("", include("memberships.urls")),
    path("", include("billing.urls")),
    path("", include("affiliates.urls")),
    # Pages link their icon (base.html); clients that ask for /favicon.ico anyway are sent to the
    # static file by its unhashed name, which stays the same from one deployment to the next, as
    # a permanent redirect must.
    path(
        "favicon.ico",
        RedirectView.as_view(
            url=f"{settings.STATIC_URL}img/favicon.ico", permanent=True, http_method_names=["get", "head"]
        ),
    ),
]

if settings.SERVE_MEDIA:
    prefix = settings.MEDIA_URL.lstrip("/")
    urlpatterns.append(re_path(rf"^{prefix}(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}))
