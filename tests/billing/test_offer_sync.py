"""The offer's Stripe product and price on the connected account follow the offer."""

from __future__ import annotations

from typing import Any

import pytest

from billing import stripe_gateway as gateway
from billing.models import OfferStripePrice
from billing.tasks import sync_offer_to_stripe
from memberships.models import Offer
from tests import factories

pytestmark = pytest.mark.django_db


class Catalog:
    """Products and prices as Stripe would hold them on the connected account."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.products: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, dict[str, Any]] = {}
        self.keys: list[str] = []
        monkeypatch.setattr(gateway, "product_upsert", self.product_upsert)
        monkeypatch.setattr(gateway, "price_create", self.price_create)
        monkeypatch.setattr(gateway, "price_retrieve", self.price_retrieve)
        monkeypatch.setattr(gateway, "price_archive", self.price_archive)

    def product_upsert(self, *, account_id: str, product_id: str, name: str, metadata: dict, key: str) -> str:
        if product_id:
            self.products[product_id]["name"] = name
            return product_id
        product_id = f"prod_{len(self.products) + 1}"
        self.products[product_id] = {"name": name, "metadata": metadata}
        return product_id

    def price_create(self, *, account_id: str, product_id: str, amount: int, currency: str, recurring, metadata, key):
        self.keys.append(key)
        price_id = f"price_{len(self.prices) + 1}"
        self.prices[price_id] = {
            "id": price_id,
            "product": product_id,
            "unit_amount": amount,
            "currency": currency,
            "recurring": recurring,
            "active": True,
        }
        return price_id

    def price_retrieve(self, *, account_id: str, price_id: str) -> gateway.Price:
        if price_id not in self.prices:
            raise gateway.StripeGatewayError("No such price", code="resource_missing")
        return gateway.Price.from_stripe(self.prices[price_id])

    def price_archive(self, *, account_id: str, price_id: str) -> None:
        self.prices[price_id]["active"] = False


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> Catalog:
    return Catalog(monkeypatch)


def _offer(*, stripe_ids: tuple[str, str] | None = None, **extra: Any) -> Offer:
    fields: dict[str, Any] = {
        "title": "Inner Circle",
        "slug": "inner-circle",
        "pricing": Offer.Pricing.RECURRING,
        "interval": Offer.Interval.QUARTER,
        "price_amount": 2500,
        **extra,
    }
    offer = Offer.objects.create(**fields)
    if stripe_ids:
        OfferStripePrice.objects.create(offer=offer, product_id=stripe_ids[0], price_id=stripe_ids[1])
    return offer


def test_the_first_sync_creates_the_product_and_price(catalog) -> None:
    factories.stripe_account()
    offer = _offer()
    sync_offer_to_stripe.delay(offer.pk)
    offer.refresh_from_db()
    assert offer.stripe_price.product_id == "prod_1"
    assert offer.stripe_price.price_id == "price_1"
    assert catalog.products["prod_1"]["name"] == "Inner Circle"
    price = catalog.prices["price_1"]
    assert (price["unit_amount"], price["currency"]) == (2500, "usd")
    assert price["recurring"] == {"interval": "month", "interval_count": 3}


def test_a_new_price_replaces_and_archives_the_old_one(catalog) -> None:
    factories.stripe_account()
    offer = _offer()
    sync_offer_to_stripe.delay(offer.pk)
    offer.refresh_from_db()
    offer.price_amount = 3000
    offer.title = "Inner Circle Plus"
    offer.save()
    sync_offer_to_stripe.delay(offer.pk)
    offer.refresh_from_db()
    assert offer.stripe_price.product_id == "prod_1"
    assert offer.stripe_price.price_id == "price_2"
    assert catalog.prices["price_2"]["unit_amount"] == 3000
    assert catalog.prices["price_1"]["active"] is False
    assert catalog.products["prod_1"]["name"] == "Inner Circle Plus"
    assert catalog.keys[0] != catalog.keys[1]


def test_an_unchanged_offer_makes_no_new_price(catalog) -> None:
    factories.stripe_account()
    offer = _offer()
    sync_offer_to_stripe.delay(offer.pk)
    sync_offer_to_stripe.delay(offer.pk)
    assert list(catalog.prices) == ["price_1"]


def test_prices_from_a_previously_connected_account_are_replaced(catalog) -> None:
    factories.stripe_account()
    offer = _offer(stripe_ids=("prod_old", "price_old"))
    catalog.products["prod_old"] = {"name": "x"}  # the product lookup works, the price is gone
    sync_offer_to_stripe.delay(offer.pk)
    offer.refresh_from_db()
    assert offer.stripe_price.price_id == "price_1"
    assert offer.stripe_price.product_id != "prod_old"
    assert catalog.prices["price_1"]["product"] == offer.stripe_price.product_id


def test_nothing_is_synced_without_a_connected_account_or_for_free_offers(catalog) -> None:
    paid = _offer()
    sync_offer_to_stripe.delay(paid.pk)
    factories.stripe_account()
    free = _offer(slug="free", pricing=Offer.Pricing.FREE, interval="", price_amount=0)
    sync_offer_to_stripe.delay(free.pk)
    assert catalog.prices == {}
