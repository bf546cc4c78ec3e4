from __future__ import annotations

from django.urls import path

from hubs import views

app_name = "hubs"

_post = "community/<slug:group_slug>/<slug:hub_slug>/posts/<id:post_id>/"

urlpatterns = [
    # Members
    path("community/", views.community, name="community"),
    path("community/<slug:group_slug>/", views.group_detail, name="group"),
    path("community/<slug:group_slug>/<slug:hub_slug>/", views.hub_detail, name="hub"),
    path(_post, views.post_detail, name="post"),
    path(_post + "edit/", views.post_edit, name="post_edit"),
    path(_post + "delete/", views.post_delete, name="post_delete"),
    path(_post + "comments/<id:comment_id>/edit/", views.comment_edit, name="comment_edit"),
    path(_post + "comments/<id:comment_id>/delete/", views.comment_delete, name="comment_delete"),
    # Creator dashboard: Community
    path("dashboard/community/", views.dashboard_community, name="dashboard_community"),
    path("dashboard/community/groups/new/", views.dashboard_group_create, name="dashboard_group_create"),
    path("dashboard/community/groups/<id:pk>/", views.dashboard_group, name="dashboard_group"),
    path("dashboard/community/groups/<id:pk>/move/", views.dashboard_group_move, name="dashboard_group_move"),
    path("dashboard/community/groups/<id:pk>/delete/", views.dashboard_group_delete, name="dashboard_group_delete"),
    path("dashboard/community/groups/<id:pk>/hubs/new/", views.dashboard_hub_create, name="dashboard_hub_create"),
    path("dashboard/community/hubs/<id:pk>/", views.dashboard_hub, name="dashboard_hub"),
    path("dashboard/community/hubs/<id:pk>/move/", views.dashboard_hub_move, name="dashboard_hub_move"),
    path("dashboard/community/hubs/<id:pk>/delete/", views.dashboard_hub_delete, name="dashboard_hub_delete"),
    # Creator dashboard: Users
    path("dashboard/users/", views.dashboard_users, name="dashboard_users"),
    path("dashboard/users/<id:pk>/", views.dashboard_user, name="dashboard_user"),
    path(
        "dashboard/users/<id:pk>/grants/<id:grant_id>/revoke/",
        views.dashboard_grant_revoke,
        name="dashboard_grant_revoke",
    ),
]
