from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path, register_converter
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
]

if settings.SERVE_MEDIA:
    prefix = settings.MEDIA_URL.lstrip("/")
    urlpatterns.append(re_path(rf"^{prefix}(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}))
