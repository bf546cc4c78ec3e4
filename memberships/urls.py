from __future__ import annotations

from django.urls import path

from memberships import views

app_name = "memberships"

urlpatterns = [
    path("dashboard/offers/", views.dashboard_offers, name="dashboard_offers"),
    path("dashboard/offers/new/", views.offer_new, name="offer_new"),
    path("dashboard/offers/new/<slug:kind>/", views.offer_create, name="offer_create"),
    path("dashboard/offers/<id:pk>/", views.offer_edit, name="offer_edit"),
    path("dashboard/offers/<id:pk>/publish/", views.offer_publish, name="offer_publish"),
    path("dashboard/offers/<id:pk>/unpublish/", views.offer_unpublish, name="offer_unpublish"),
    path("dashboard/offers/<id:pk>/archive/", views.offer_archive, name="offer_archive"),
    path("dashboard/offers/<id:pk>/duplicate/", views.offer_duplicate, name="offer_duplicate"),
    path("dashboard/users/buyers/", views.dashboard_buyers, name="dashboard_buyers"),
    path("dashboard/users/buyers/export.csv", views.dashboard_buyers_export, name="dashboard_buyers_export"),
    path("offers/<slug:slug>/", views.offer_page, name="offer_page"),
    path("offers/<slug:slug>/custom-code/", views.custom_code, name="custom_code"),
]
