"""Reads for billing."""

from __future__ import annotations


def stripe_connected() -> bool:
    """Whether the creator has connected a Stripe account that can take payments.

    Paid offers cannot be published without one. The billing work replaces this with the
    connected account's real state; until then no account counts as connected.
    """
    return False
