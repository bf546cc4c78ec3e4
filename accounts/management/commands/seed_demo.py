from __future__ import annotations

import importlib
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = "Create (or bring up to date) the demo logins, hub groups and offers. Safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        lines: list[str] = []
        with transaction.atomic():
            for app in apps.get_app_configs():
                try:
                    module = importlib.import_module(f"{app.name}.demo")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{app.name}.demo":
                        raise
                    continue
                lines += module.seed() or []
        for line in lines:
            self.stdout.write(line)
