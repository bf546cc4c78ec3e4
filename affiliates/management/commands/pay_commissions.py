from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from affiliates.commissions import commissions_pay_due


class Command(BaseCommand):
    help = (
        "Do now what the periodic payout does: queue the transfer of every commission whose hold "
        "is over to its partner's Stripe account. Safe to run at any time: a commission is paid once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        queued = commissions_pay_due()
        self.stdout.write(f"Commissions: {queued} transfer(s) queued.")
