from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from accounts.outbox import outbox_sweep
from billing.services.webhooks import webhook_events_sweep


class Command(BaseCommand):
    help = (
        "Do now what the periodic sweep does: queue again the Stripe events stored but never "
        "processed, and send the outbox rows their task never sent. Safe to run at any time."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        queued = webhook_events_sweep()
        self.stdout.write(f"Stripe events: {queued} queued again for processing.")
        swept = outbox_sweep()
        self.stdout.write(f"Outbox: {swept}.")
