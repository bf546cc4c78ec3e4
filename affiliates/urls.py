from __future__ import annotations

from django.urls import path

from affiliates import views

app_name = "affiliates"

urlpatterns = [
    path("partners/", views.partners, name="partners"),
    path("partners/offers/<id:pk>/join/", views.partner_join, name="partner_join"),
    path("partners/confirm-email/", views.partner_email_confirm, name="partner_email_confirm"),
    path("partners/stripe/connect/", views.partner_stripe_connect, name="partner_stripe_connect"),
    path("partners/stripe/return/", views.partner_stripe_return, name="partner_stripe_return"),
    path("partners/stripe/disconnect/", views.partner_stripe_disconnect, name="partner_stripe_disconnect"),
    path("dashboard/affiliates/", views.dashboard_affiliates, name="dashboard_affiliates"),
    path("dashboard/affiliates/partners/<id:pk>/status/", views.dashboard_partner_status, name="partner_status"),
    path(
        "dashboard/affiliates/partners/<id:pk>/commissions/stop/",
        views.dashboard_partner_commissions_stop,
        name="partner_commissions_stop",
    ),
]
