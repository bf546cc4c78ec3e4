from __future__ import annotations

from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("dashboard/sales/", views.dashboard_sales, name="dashboard_sales"),
    path("offers/<slug:slug>/checkout/pay/", views.checkout_start, name="checkout_start"),
    path("dashboard/settings/integrations/", views.dashboard_integrations, name="dashboard_integrations"),
]
