from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services.sales_days import sales_days_differences, sales_days_rebuild
from core.figures import figures_forget


class Command(BaseCommand):
    help = (
        "Recompute the sales rollup the dashboard's figures read (one row per day, offer, currency and "
        "payment state) from the payments: after TIME_ZONE changes, or to check it (docs/METRICS.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="report where the rollup and the payments disagree; change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            differences = sales_days_differences()
            for line in differences:
                self.stdout.write(line)
            if differences:
                raise CommandError(f"{len(differences)} rollup rows disagree with the payments: run without --check")
            self.stdout.write("The sales rollup agrees with the payments.")
            return
        rows = sales_days_rebuild()
        figures_forget()
        self.stdout.write(f"Rebuilt the sales rollup in {settings.TIME_ZONE}: {rows} rows.")
