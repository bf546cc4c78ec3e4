"""Billing's tasks: doors into billing's services, which queue them by name on commit."""

from __future__ import annotations

from celery import shared_task

from accounts.outbox import outbox_sweep
from billing.services.catalog import offer_stripe_sync
from billing.services.lifecycle import grace_reminders_record
from billing.services.webhooks import webhook_event_process, webhook_events_reconcile, webhook_events_sweep
from core.tasks import ReliableTask


@shared_task(base=ReliableTask)
def sync_offer_to_stripe(offer_id: int) -> None:
    """Create or update the offer's Stripe product and price on the connected account.

    Queued after commit whenever a paid offer is saved or published.
    """
    offer_stripe_sync(offer_id=offer_id)


# Nobody waits for its result: without a result the webhook's publish skips the result backend.
@shared_task(base=ReliableTask, ignore_result=True)
def process_webhook_event(event_pk: int) -> None:
    """Process one stored Stripe event (idempotent; failures are recorded, then retried)."""
    webhook_event_process(event_pk=event_pk)


@shared_task
def sweep_webhook_events() -> int:
    """Periodic: re-queue events that were stored but never processed, record the reminders
    of grace periods ending within a day, and send the outbox's rows that their own task never
    sent (the one sweep of everything a lost task leaves)."""
    queued = webhook_events_sweep()
    grace_reminders_record()
    outbox_sweep()
    return queued


@shared_task
def reconcile_webhook_events() -> int:
    """Periodic: record recent Stripe events that were never delivered, and process them."""
    return webhook_events_reconcile()
