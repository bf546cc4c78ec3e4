from __future__ import annotations

from django.urls import path

from affiliates import views

app_name = "affiliates"

urlpatterns = [
    path("dashboard/affiliates/", views.dashboard_affiliates, name="dashboard_affiliates"),
]
