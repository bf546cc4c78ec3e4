"""What a higher layer plugs into billing, which may not import it.

*Checkout contributors* (affiliates fills this in ``AffiliatesConfig.ready``) are called when a
paid checkout starts: the attempt is created and committed, the Checkout Session's parameters
are built, and Stripe has not been called yet. A contributor may record its own rows about the
attempt and add to the parameters (metadata, an application fee); the session is created with
what they hold afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

    from billing.models import CheckoutAttempt

# contributor(request, attempt, params): may change ``params`` in place.
CheckoutContributor = Callable[["HttpRequest", "CheckoutAttempt", dict[str, Any]], None]

_checkout_contributors: list[CheckoutContributor] = []


def checkout_contributor_register(contributor: CheckoutContributor) -> None:
    if contributor not in _checkout_contributors:
        _checkout_contributors.append(contributor)


def checkout_contribute(request: HttpRequest | None, attempt: CheckoutAttempt, params: dict[str, Any]) -> None:
    """Let every registered contributor add to a starting checkout (none without a request:
    a checkout started elsewhere than a buyer's browser has no visitor to attribute)."""
    if request is None:
        return
    for contributor in _checkout_contributors:
        contributor(request, attempt, params)
