from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from billing.models import StripeAccount
from billing.services.reconcile import memberships_reconcile


class Command(BaseCommand):
    help = (
        "Read again from Stripe every subscription and payment that still matters, report each "
        "membership that disagrees with Stripe, and repair it (as the lost webhook would have)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="report the disagreements without repairing them")

    def handle(self, *args: Any, **options: Any) -> None:
        if not StripeAccount.objects.creator().exists():
            self.stdout.write("No Stripe account is connected: nothing to reconcile.")
            return
        report = memberships_reconcile(repair=not options["dry_run"])
        for account in report.accounts:
            for line in account.lines:
                self.stdout.write(line)
            self.stdout.write(account.summary)
