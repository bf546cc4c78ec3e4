"""Offers on Stripe: each paid offer's product and current price on the connected account."""

from __future__ import annotations

from django.db import transaction

from billing import stripe_gateway as gateway
from billing.models import OfferStripePrice, StripeAccount
from core.tasks import enqueue_on_commit
from memberships.models import Offer


def offer_changed(offer: Offer) -> None:
    """An offer was created, saved or published (``memberships.hooks``): sync a paid offer's
    product and price to Stripe once the change commits."""
    if not offer.is_free:
        enqueue_on_commit("billing.tasks.sync_offer_to_stripe", offer.pk)


def offer_price_matches(price: gateway.Price, offer: Offer) -> bool:
    wanted = offer.stripe_recurring
    same_recurring = (price.recurring is None and wanted is None) or (
        price.recurring is not None
        and wanted is not None
        and price.recurring == (wanted["interval"], wanted["interval_count"])
    )
    return (
        price.active
        and price.amount == offer.price_amount
        and price.currency == offer.currency.lower()
        and same_recurring
    )


def offer_stripe_sync(*, offer_id: int) -> OfferStripePrice | None:
    """Make the offer's Stripe product and price on the connected account match the offer.

    Creates the product the first time, renames it when the title changes, and when the
    price, currency or interval changed creates a new price and archives the old one (Stripe
    prices are immutable). Retries are safe: creations carry idempotency keys derived from the
    offer's state. Returns the offer's Stripe ids, or None when there is nothing to sync.
    """
    offer = Offer.objects.filter(pk=offer_id).first()
    account = StripeAccount.objects.creator().first()
    if offer is None or account is None or offer.is_free:
        return None
    ids = OfferStripePrice.objects.filter(offer=offer).first() or OfferStripePrice(offer=offer)
    # The old price is part of the key: if it was archived in Stripe's dashboard since, the
    # replacement is a new request, not a replay of the answer that returned the old price.
    key = f"offer-{offer.pk}-{account.account_id}-{int(offer.updated_at.timestamp() * 1000)}-{ids.price_id or 'none'}"
    metadata = {"offer_id": str(offer.pk), "offer_slug": offer.slug}
    product_id = ids.product_id
    old_price_id = ids.price_id
    if old_price_id:
        current: gateway.Price | None
        try:
            current = gateway.price_retrieve(account_id=account.account_id, price_id=old_price_id)
        except gateway.StripeGatewayError as exc:
            if exc.code != "resource_missing":
                raise
            # Made on an account that is no longer connected: start afresh on this one.
            product_id, old_price_id, current = "", "", None
        if current is not None and offer_price_matches(current, offer):
            gateway.product_upsert(
                account_id=account.account_id, product_id=product_id, name=offer.title, metadata=metadata, key=key
            )
            return ids
    try:
        product_id = gateway.product_upsert(
            account_id=account.account_id, product_id=product_id, name=offer.title, metadata=metadata, key=key
        )
    except gateway.StripeGatewayError as exc:
        if exc.code != "resource_missing":
            raise
        product_id = gateway.product_upsert(
            account_id=account.account_id, product_id="", name=offer.title, metadata=metadata, key=key
        )
    price_id = gateway.price_create(
        account_id=account.account_id,
        product_id=product_id,
        amount=offer.price_amount,
        currency=offer.currency.lower(),
        recurring=offer.stripe_recurring,
        metadata=metadata,
        key=key,
    )
    ids = offer_stripe_ids_set(offer=offer, product_id=product_id, price_id=price_id)
    if old_price_id and old_price_id != price_id:
        gateway.price_archive(account_id=account.account_id, price_id=old_price_id)
    return ids


def offer_stripe_price_ensure(*, offer: Offer, account_id: str) -> str:
    """The id of a Stripe price that matches the offer, synced now if the editor's sync lags."""
    price_id = OfferStripePrice.objects.filter(offer=offer).values_list("price_id", flat=True).first()
    if price_id:
        price: gateway.Price | None
        try:
            price = gateway.price_retrieve(account_id=account_id, price_id=price_id)
        except gateway.StripeGatewayError as exc:
            if exc.code != "resource_missing":
                raise
            price = None
        if price is not None and offer_price_matches(price, offer):
            return price_id
    synced = offer_stripe_sync(offer_id=offer.pk)
    if synced is None or not synced.price_id:
        raise gateway.StripeGatewayError("the offer has no Stripe price")
    return synced.price_id


@transaction.atomic
def offer_stripe_ids_set(*, offer: Offer, product_id: str, price_id: str) -> OfferStripePrice:
    # Billing's own row: the offer itself is not saved, so its ``updated_at`` (the key of the
    # next sync) stays, and no offer change is announced (which would queue another sync).
    ids, _ = OfferStripePrice.objects.update_or_create(
        offer=offer, defaults={"product_id": product_id, "price_id": price_id}
    )
    return ids
