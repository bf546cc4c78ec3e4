from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from billing.models import StripeAccount
from billing.services.webhooks import RECONCILE_WINDOW, webhook_events_reconcile

UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def moment(value: str, *, now: datetime) -> datetime:
    """``2h``, ``30m``, ``3d`` (that long ago) or an ISO time (UTC unless it says otherwise)."""
    relative = re.fullmatch(r"(\d+)([mhd])", value.strip())
    if relative:
        return now - timedelta(**{UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CommandError(f"--since {value!r}: give a duration such as 2h, 30m or 3d, or an ISO time") from None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Do now what the periodic reconciliation does: list the connected account's events "
        "from Stripe and record (and so process) those that were never delivered."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="how far back: 2h, 30m, 3d or an ISO time (default: two days)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not StripeAccount.objects.creator().exists():
            self.stdout.write("No Stripe account is connected: nothing to reconcile.")
            return
        now = timezone.now()
        since = moment(options["since"], now=now) if options["since"] else now - RECONCILE_WINDOW
        recovered = webhook_events_reconcile(now=now, since=since)
        self.stdout.write(
            f"Stripe events since {since:%Y-%m-%d %H:%M:%S %Z}: {recovered} never delivered, now recorded "
            "and queued for processing."
        )
