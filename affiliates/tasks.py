"""Affiliates' tasks: doors into its services."""

from __future__ import annotations

from celery import shared_task

from affiliates.commissions import commissions_pay_due


@shared_task
def pay_commissions() -> int:
    """Periodic: queue the transfers of the commissions whose hold is over."""
    return commissions_pay_due()
