from __future__ import annotations

from celery import shared_task

from config.celery import ReliableTask


@shared_task(base=ReliableTask)
def sync_offer_to_stripe(offer_id: int) -> None:
    """Create or update the offer's Stripe product and price on the connected account.

    The offer editor queues this after commit whenever a paid offer is saved. The billing work
    fills it in; until then there is no connected account to sync to.
    """
