from __future__ import annotations

from django.urls import path

from hubs import views

app_name = "hubs"

urlpatterns = [
    path("dashboard/community/", views.dashboard_community, name="dashboard_community"),
    path("dashboard/users/", views.dashboard_users, name="dashboard_users"),
]
