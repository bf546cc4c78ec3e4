from __future__ import annotations

from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("dashboard/sales/", views.dashboard_sales, name="dashboard_sales"),
    path("dashboard/settings/integrations/", views.dashboard_integrations, name="dashboard_integrations"),
]
