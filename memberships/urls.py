from __future__ import annotations

from django.urls import path

from memberships import views

app_name = "memberships"

urlpatterns = [
    path("dashboard/offers/", views.dashboard_offers, name="dashboard_offers"),
    path("offers/<slug:slug>/", views.offer_page, name="offer_page"),
    path("offers/<slug:slug>/checkout/", views.checkout, name="checkout"),
]
