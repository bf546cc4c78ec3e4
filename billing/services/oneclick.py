"""One-click purchases: a member buys a private group's popup upsell with the card saved at an
earlier purchase on the same connected account.

The confirmation page's form carries a key made when the page was shown. The purchase row is
created with it (unique) before Stripe is called, so a double submit finds the first row and
charges nothing more, and Stripe's idempotency key is made from it, so a retried call charges
once too. Stripe is called outside any transaction: the card is looked up among the customers
of the member's earlier purchases, then charged without the member (``off_session``): a
one-time offer as a PaymentIntent confirmed at once, a recurring one as a subscription on the
card. Stripe's answer is fulfilled at once through ``checkout_attempt_fulfil``, as its webhooks
are later (which then change nothing). A decline, or a bank that asks for the member
(``authentication_required``), leaves the member to pay through Checkout.

One-click purchases carry no referral: the member buys from inside the community.
"""

from __future__ import annotations

import logging
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from billing import selectors
from billing import stripe_gateway as gateway
from billing.models import CheckoutAttempt, OneClickPurchase, StripeAccount
from billing.services import lifecycle
from billing.services.catalog import offer_stripe_price_ensure
from billing.services.checkout import checkout_attempt_create, checkout_attempt_fail
from billing.services.fulfilment import checkout_attempt_fulfil
from hubs.models import HubGroup
from memberships.models import Offer

logger = logging.getLogger(__name__)

# What Stripe answers when the bank wants the cardholder to authenticate a charge made without
# them: a PaymentIntent's code, and what an invoice's payment may be refused with.
AUTHENTICATION_CODES = frozenset({"authentication_required", "invoice_payment_intent_requires_action"})


def saved_card_find(*, user: User, account_id: str) -> gateway.SavedCard | None:
    """The member's card on file on the account: the newest unexpired card of the customers of
    their earlier purchases there, or None. Calls Stripe."""
    now = timezone.now()
    for customer_id in selectors.stripe_customers_of(user=user, account_id=account_id):
        try:
            cards = gateway.customer_cards(account_id=account_id, customer_id=customer_id)
        except gateway.StripeGatewayError as exc:
            if exc.code == "resource_missing":  # the customer was deleted in Stripe
                continue
            raise
        for card in cards:
            if not card.expired(now):
                return card
    return None


@transaction.atomic
def one_click_purchase_create(
    *, key: uuid.UUID, user: User, offer: Offer, account: StripeAccount, group: HubGroup | None
) -> tuple[OneClickPurchase, bool]:
    """The purchase named by ``key``, and whether this call made it, with its attempt (the
    price snapshot). Another call with the same key finds the first one's: the unique key
    decides, so two submits racing each other make one purchase."""
    try:
        with transaction.atomic():
            attempt = checkout_attempt_create(
                offer=offer, account=account, email=user.email, full_name=user.full_name, browser_key=""
            )
            CheckoutAttempt.objects.filter(pk=attempt.pk).update(user=user)
            purchase = OneClickPurchase.objects.create(key=key, user=user, offer=offer, attempt=attempt, group=group)
    except IntegrityError:
        return OneClickPurchase.objects.select_related("attempt").get(key=key), False
    return purchase, True


@transaction.atomic
def one_click_purchase_card_set(*, purchase: OneClickPurchase, card: gateway.SavedCard) -> None:
    OneClickPurchase.objects.filter(pk=purchase.pk).update(
        card_label=card.label[:60], stripe_customer_id=card.customer_id, payment_method_id=card.payment_method_id
    )
    CheckoutAttempt.objects.filter(pk=purchase.attempt_id).update(stripe_customer_id=card.customer_id)


@transaction.atomic
def one_click_purchase_charged(*, purchase: OneClickPurchase, stripe_object_id: str) -> None:
    OneClickPurchase.objects.filter(pk=purchase.pk, status=OneClickPurchase.Status.CHARGING).update(
        status=OneClickPurchase.Status.CHARGED, stripe_object_id=stripe_object_id
    )


@transaction.atomic
def one_click_purchase_fall_back(*, purchase: OneClickPurchase, status: OneClickPurchase.Status, error: str) -> None:
    """Nothing was charged: the member pays through Checkout instead. ``error`` is for them."""
    OneClickPurchase.objects.filter(pk=purchase.pk, status=OneClickPurchase.Status.CHARGING).update(
        status=status, error=error[:2000]
    )
    checkout_attempt_fail(attempt=purchase.attempt, error=error)


def one_click_purchase_start(
    *, key: uuid.UUID, user: User, offer: Offer, account: StripeAccount, group: HubGroup | None
) -> tuple[OneClickPurchase, bool]:
    """Make the purchase named by ``key`` and charge the member's saved card for it; returns it
    as it stands afterwards, and whether this call made it (a second submit of the same form
    finds the first one's and charges nothing). Not atomic: Stripe is called between writes.
    Raises the gateway's error only when the offer's price cannot be read from Stripe, before
    anything is written."""
    offer_stripe_price_ensure(offer=offer, account_id=account.account_id)
    purchase, created = one_click_purchase_create(key=key, user=user, offer=offer, account=account, group=group)
    if created:
        _charge(purchase)
        purchase.refresh_from_db()
    return purchase, created


def _charge(purchase: OneClickPurchase) -> None:
    attempt = purchase.attempt
    account_id = attempt.stripe_account_id
    Status = OneClickPurchase.Status
    try:
        card = saved_card_find(user=purchase.user, account_id=account_id)
    except gateway.StripeGatewayError as exc:
        logger.warning("one-click purchase %s: the saved cards could not be read: %s", purchase.key, exc)
        one_click_purchase_fall_back(purchase=purchase, status=Status.FAILED, error=exc.user_message)
        return
    if card is None:
        one_click_purchase_fall_back(purchase=purchase, status=Status.NO_CARD, error="No card is saved any more.")
        return
    one_click_purchase_card_set(purchase=purchase, card=card)
    metadata = {"checkout_attempt": str(attempt.pk), "offer_id": str(attempt.offer_id), "one_click": str(purchase.key)}
    idempotency_key = f"one-click-{purchase.key}"
    recurring = attempt.pricing == Offer.Pricing.RECURRING
    try:
        if recurring:
            subscription = gateway.subscription_create_on_saved_card(
                account_id=account_id,
                card=card,
                price_id=attempt.stripe_price_id,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
            stripe_object_id = subscription.subscription_id
        else:
            intent = gateway.payment_intent_charge_saved_card(
                account_id=account_id,
                card=card,
                amount=attempt.amount,
                currency=attempt.currency,
                description=attempt.offer.title,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
            stripe_object_id = intent.payment_intent_id
    except gateway.StripeCardDeclined as exc:
        logger.info("one-click purchase %s declined: %s", purchase.key, exc)
        status = Status.AUTHENTICATION_REQUIRED if exc.code in AUTHENTICATION_CODES else Status.DECLINED
        one_click_purchase_fall_back(purchase=purchase, status=status, error=exc.user_message)
        return
    except gateway.StripeGatewayError as exc:
        logger.warning("one-click purchase %s failed: %s", purchase.key, exc)
        one_click_purchase_fall_back(purchase=purchase, status=Status.FAILED, error=exc.user_message)
        return
    one_click_purchase_charged(purchase=purchase, stripe_object_id=stripe_object_id)
    # Stripe took the money: record it now. Should a read fail, the webhooks record it.
    try:
        if recurring:
            _fulfil_subscription(attempt, subscription.subscription_id)
        else:
            _fulfil_payment_intent(attempt, intent)
    except gateway.StripeGatewayError as exc:
        logger.warning("one-click purchase %s is left to its webhooks: %s", purchase.key, exc)


def _fulfil_payment_intent(attempt: CheckoutAttempt, intent: gateway.PaymentIntent) -> None:
    if not intent.succeeded:  # still processing: its payment_intent.succeeded fulfils it
        return
    account_id = attempt.stripe_account_id
    charge = lifecycle.charge_facts(account_id=account_id, payment_intent_id=intent.payment_intent_id)
    checkout_attempt_fulfil(
        attempt_id=attempt.pk, paid=intent.paid(), payment_intent_id=intent.payment_intent_id, charge=charge
    )


def _fulfil_subscription(attempt: CheckoutAttempt, subscription_id: str) -> None:
    account_id = attempt.stripe_account_id
    facts = lifecycle.subscription_facts(account_id=account_id, subscription_id=subscription_id)
    if not facts.subscription.latest_invoice_id:
        return
    invoice = gateway.invoice_retrieve(account_id=account_id, invoice_id=facts.subscription.latest_invoice_id)
    if invoice.status != "paid":  # its invoice.paid fulfils it
        return
    payment_intent_id = gateway.invoice_payment_intent_id(account_id=account_id, invoice_id=invoice.invoice_id)
    charge = (
        lifecycle.charge_facts(account_id=account_id, payment_intent_id=payment_intent_id)
        if payment_intent_id
        else None
    )
    checkout_attempt_fulfil(
        attempt_id=attempt.pk,
        paid=invoice.paid(),
        payment_intent_id=payment_intent_id,
        charge=charge,
        subscription=facts,
    )
