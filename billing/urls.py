from __future__ import annotations

from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("dashboard/sales/", views.dashboard_sales, name="dashboard_sales"),
    path("dashboard/sales/export.csv", views.dashboard_sales_export, name="dashboard_sales_export"),
    path("dashboard/payments/<id:pk>/refund/", views.payment_refund, name="payment_refund"),
    path(
        "dashboard/users/<id:pk>/memberships/<id:entitlement_id>/cancel/",
        views.membership_cancel,
        name="membership_cancel",
    ),
    path("dashboard/settings/integrations/", views.dashboard_integrations, name="dashboard_integrations"),
    path("dashboard/settings/integrations/stripe/connect/", views.stripe_connect, name="stripe_connect"),
    path("dashboard/settings/integrations/stripe/return/", views.stripe_connect_return, name="stripe_connect_return"),
    path("dashboard/settings/integrations/stripe/refresh/", views.stripe_refresh, name="stripe_refresh"),
    path("dashboard/settings/integrations/stripe/disconnect/", views.stripe_disconnect, name="stripe_disconnect"),
    path(
        "dashboard/settings/integrations/stripe/events/",
        views.dashboard_webhook_events,
        name="dashboard_webhook_events",
    ),
    path(
        "dashboard/settings/integrations/stripe/events/<id:pk>/retry/",
        views.dashboard_webhook_event_retry,
        name="dashboard_webhook_event_retry",
    ),
    path(
        "dashboard/settings/integrations/outbox/<id:pk>/retry/",
        views.dashboard_outbox_retry,
        name="dashboard_outbox_retry",
    ),
    path("account/memberships/", views.my_memberships, name="my_memberships"),
    path("account/memberships/<id:pk>/billing/", views.membership_portal, name="membership_portal"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
    path("offers/<slug:slug>/checkout/", views.checkout, name="checkout"),
    path("offers/<slug:slug>/checkout/pay/", views.checkout_start, name="checkout_start"),
    path("offers/<slug:slug>/buy-now/", views.one_click, name="one_click"),
    path("buy-now/<uuid:key>/", views.one_click_result, name="one_click_result"),
    path("checkout/<uuid:attempt_id>/return/", views.checkout_return, name="checkout_return"),
    path("checkout/<uuid:attempt_id>/status/", views.checkout_status, name="checkout_status"),
    path("checkout/<uuid:attempt_id>/complete/", views.checkout_complete, name="checkout_complete"),
    path("checkout/<uuid:attempt_id>/cancel/", views.checkout_cancel, name="checkout_cancel"),
    path("dashboard/offers/<id:pk>/test-purchase/", views.checkout_test_new, name="checkout_test_new"),
    path("dashboard/test-purchases/<id:pk>/", views.checkout_test, name="checkout_test"),
    path("dashboard/test-purchases/<id:pk>/status/", views.checkout_test_status, name="checkout_test_status"),
    path("dashboard/test-purchases/<id:pk>/email/", views.checkout_test_email, name="checkout_test_email"),
    path("dashboard/test-purchases/<id:pk>/close/", views.checkout_test_close, name="checkout_test_close"),
    path("checkout/test/<str:link>/", views.checkout_test_link, name="checkout_test_link"),
    path("checkout/test/<str:link>/pay/", views.checkout_test_pay, name="checkout_test_pay"),
    path("checkout/test/<str:link>/custom-code/", views.checkout_test_custom_code, name="checkout_test_custom_code"),
]
