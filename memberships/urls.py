from __future__ import annotations

from django.urls import path

from memberships import views

app_name = "memberships"

urlpatterns = [
    path("dashboard/offers/", views.dashboard_offers, name="dashboard_offers"),
]
