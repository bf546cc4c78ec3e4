from __future__ import annotations

from django.apps import AppConfig


class MembershipsConfig(AppConfig):
    name = "memberships"
