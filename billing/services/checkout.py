"""Checkout: a buyer's attempt, its price snapshot, and the Stripe Checkout Session."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from billing import hooks
from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, OfferStripePrice, StripeAccount, browser_key_hash
from billing.services.catalog import offer_stripe_price_ensure
from billing.services.connect import stripe_account_refresh_from_stripe
from memberships.models import Offer

logger = logging.getLogger(__name__)

# How long after paying the buyer's browser may be logged in automatically.
AUTO_LOGIN_WINDOW = timedelta(hours=1)


@transaction.atomic
def checkout_attempt_create(
    *, offer: Offer, account: StripeAccount, email: str, full_name: str, browser_key: str, is_test: bool = False
) -> CheckoutAttempt:
    """Start an attempt with a snapshot of the price the buyer is shown (``is_test``: from a
    creator's test link)."""
    price_id = OfferStripePrice.objects.filter(offer=offer).values_list("price_id", flat=True).first()
    return CheckoutAttempt.objects.create(
        is_test=is_test,
        offer=offer,
        stripe_account_id=account.account_id,
        stripe_price_id=price_id or "",
        amount=offer.price_amount,
        currency=offer.currency.lower(),
        pricing=offer.pricing,
        interval=offer.interval,
        email=email,
        full_name=full_name,
        browser_key=browser_key_hash(browser_key),
    )


@transaction.atomic
def checkout_attempt_open(*, attempt: CheckoutAttempt, session_id: str) -> None:
    CheckoutAttempt.objects.filter(pk=attempt.pk, status=CheckoutAttempt.Status.STARTED).update(
        stripe_session_id=session_id, status=CheckoutAttempt.Status.OPEN
    )


@transaction.atomic
def checkout_attempt_fail(*, attempt: CheckoutAttempt, error: str) -> None:
    CheckoutAttempt.objects.filter(
        pk=attempt.pk, status__in=[CheckoutAttempt.Status.STARTED, CheckoutAttempt.Status.OPEN]
    ).update(status=CheckoutAttempt.Status.FAILED, error=error[:2000])


def checkout_session_params(*, attempt: CheckoutAttempt, success_url: str, cancel_url: str) -> dict[str, Any]:
    metadata = {"checkout_attempt": str(attempt.pk), "offer_id": str(attempt.offer_id)}
    params: dict[str, Any] = {
        "line_items": [{"price": attempt.stripe_price_id, "quantity": 1}],
        "client_reference_id": str(attempt.pk),
        "customer_email": attempt.email,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata,
    }
    if attempt.pricing == Offer.Pricing.RECURRING:
        params["mode"] = "subscription"
        # On the subscription, so that a renewal's invoice leads back to this attempt.
        params["subscription_data"] = {"metadata": metadata}
    else:
        params["mode"] = "payment"
        params["customer_creation"] = "always"
        # Save the card for one-click purchases later (a subscription saves it already).
        params["payment_intent_data"] = {"metadata": metadata, "setup_future_usage": "off_session"}
    return params


def checkout_session_start(
    *,
    offer: Offer,
    account: StripeAccount,
    email: str,
    full_name: str,
    browser_key: str,
    site_url: str,
    request: HttpRequest | None = None,
) -> tuple[CheckoutAttempt, str]:
    """Open a Stripe Checkout Session for a buyer; returns the attempt and the URL to send them to.

    Not atomic: the attempt (with its price snapshot) is committed first, then Stripe is
    called outside any transaction with the attempt's idempotency key, then the session is
    recorded. A failure marks the attempt failed and raises the gateway's error. The checkout
    contributors (``billing.hooks``) see the buyer's ``request`` and add to the parameters
    before Stripe is called.
    """
    offer_stripe_price_ensure(offer=offer, account_id=account.account_id)
    attempt = checkout_attempt_create(
        offer=offer, account=account, email=email, full_name=full_name, browser_key=browser_key
    )
    return attempt, checkout_session_open(attempt=attempt, account=account, site_url=site_url, request=request)


def checkout_session_open(
    *, attempt: CheckoutAttempt, account: StripeAccount, site_url: str, request: HttpRequest | None = None
) -> str:
    """Create the Checkout Session of a committed attempt and record it; returns its URL.

    Outside any transaction. A failure marks the attempt failed and raises the gateway's error.
    """
    kwargs = {"attempt_id": attempt.pk}
    params = checkout_session_params(
        attempt=attempt,
        success_url=f"{site_url}{reverse('billing:checkout_return', kwargs=kwargs)}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=site_url + reverse("billing:checkout_cancel", kwargs=kwargs),
    )
    hooks.checkout_contribute(request, attempt, params)
    try:
        session = gateway.checkout_session_create(
            account_id=account.account_id, params=params, idempotency_key=f"checkout-{attempt.pk}"
        )
    except gateway.StripeGatewayError as exc:
        logger.warning("checkout session for attempt %s failed: %s", attempt.pk, exc)
        checkout_attempt_fail(attempt=attempt, error=str(exc))
        if isinstance(exc, gateway.StripeAccountNotReady):
            try:  # so that the dashboard shows it and paid offers cannot be published meanwhile
                stripe_account_refresh_from_stripe(account_id=account.account_id)
            except gateway.StripeGatewayError:
                logger.warning("the Stripe account %s could not be refreshed", account.account_id)
        raise
    checkout_attempt_open(attempt=attempt, session_id=session.session_id)
    return session.url


@transaction.atomic
def checkout_attempt_login_use(*, attempt: CheckoutAttempt) -> bool:
    """Use up the one automatic login an attempt gives. Exactly one caller gets True."""
    return (
        CheckoutAttempt.objects.filter(pk=attempt.pk, login_used_at__isnull=True).update(login_used_at=timezone.now())
        == 1
    )


def checkout_attempt_auto_login(
    *, attempt: CheckoutAttempt, browser_bound: bool, viewer: User | AnonymousUser
) -> User | None:
    """The buyer to log in on return from a paid checkout, or None; uses the login up.

    Only in the browser that started the attempt (``browser_bound``), only for a viewer who is
    logged out, and only into an account the purchase created and nothing has touched since
    (an existing account logs in itself: its owner gets an email with a login link).
    """
    buyer = attempt.user
    if (
        browser_bound
        and buyer is not None
        and attempt.user_created
        # Untouched since the purchase made it: once the address's owner has proved it (or
        # logged in, or chosen a password) the account is theirs, and once anything else was
        # attached to it (its sessions were ended) this browser would gain what someone else
        # added. Either way a paying browser cannot enter it.
        and buyer.email_verified_at is None
        and buyer.session_generation == 0
        and buyer.last_login is None
        and not buyer.has_usable_password()
        and attempt.paid_at is not None
        and timezone.now() - attempt.paid_at < AUTO_LOGIN_WINDOW
        and buyer.is_active
        and not buyer.is_staff
        and not viewer.is_authenticated
        and checkout_attempt_login_use(attempt=attempt)
    ):
        return buyer
    return None
