"""What a higher layer plugs into billing, which may not import it.

*Checkout contributors* (affiliates fills this in ``AffiliatesConfig.ready``) are called when a
paid checkout starts: the attempt is created and committed, the Checkout Session's parameters
are built, and Stripe has not been called yet. A contributor may record its own rows about the
attempt and add to the parameters (metadata, an application fee); the session is created with
what they hold afterwards.

*Payment listeners* (affiliates: the commission ledger) are called whenever billing stores
Stripe's state of a payment's charge: the payment recorded, refunded, disputed, a dispute
closed. They run inside that transaction, with the payment locked, and may write their own
rows from it (and record outbox rows); they may not call Stripe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

    from billing.models import CheckoutAttempt, Payment

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


# listener(payment): the payment as just stored, locked for the rest of the transaction.
PaymentListener = Callable[["Payment"], object]

_payment_listeners: list[PaymentListener] = []


def payment_listener_register(listener: PaymentListener) -> None:
    if listener not in _payment_listeners:
        _payment_listeners.append(listener)


def payment_changed(payment: Payment) -> None:
    for listener in _payment_listeners:
        listener(payment)
