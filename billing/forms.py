"""Forms for billing. They validate and normalise; they write nothing."""

from __future__ import annotations

from memberships.forms import FreeClaimForm


class PaidCheckoutForm(FreeClaimForm):
    """The buyer's details on a paid offer's checkout page, before the Stripe Checkout starts:
    the same fields as a free claim."""
