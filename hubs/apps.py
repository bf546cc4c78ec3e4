from __future__ import annotations

from django.apps import AppConfig


class HubsConfig(AppConfig):
    name = "hubs"

    def ready(self) -> None:
        from accounts import slots
        from hubs import panels

        slots.MEMBER_HOME.register(panels.member_home_communities, order=10)
        slots.DASHBOARD_GETTING_STARTED.register(panels.getting_started, order=20)
