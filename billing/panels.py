"""Billing's panels on lower layers' pages (``core.composition``), registered in ``BillingConfig.ready``."""

from __future__ import annotations

from django.http import HttpRequest

from core.composition import Panel


def getting_started(*, request: HttpRequest) -> Panel:
    """The dashboard Overview's first step: paid offers need a connected Stripe account."""
    return Panel("billing/panels/getting_started.html")


def member_home_memberships(*, request: HttpRequest) -> Panel:
    """The member home's link to *My memberships* (receipts, card, cancelling)."""
    return Panel("billing/panels/member_home_memberships.html")
