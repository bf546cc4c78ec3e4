from __future__ import annotations

from django.apps import AppConfig


class HubsConfig(AppConfig):
    name = "hubs"
