"""What billing plugs into memberships (memberships.hooks), seen from memberships' side."""

from __future__ import annotations

from unittest import mock

import pytest

from memberships import hooks
from memberships.models import Offer
from memberships.selectors import offer_destination
from memberships.services import offer_publish_problems

pytestmark = pytest.mark.django_db


def _paid_offer() -> Offer:
    return Offer.objects.create(title="Paid", slug="paid", pricing=Offer.Pricing.ONE_TIME, price_amount=900)


def test_without_any_check_registered_paid_offers_cannot_be_sold() -> None:
    with mock.patch.object(hooks, "_paid_offer_checks", []):
        assert not hooks.paid_offers_sellable()
        fields = [problem.field for problem in offer_publish_problems(offer=_paid_offer())]
    assert "pricing" in fields


def test_every_registered_check_must_agree() -> None:
    with mock.patch.object(hooks, "_paid_offer_checks", []):
        hooks.paid_offer_check_register(lambda: True)
        assert hooks.paid_offers_sellable()
        hooks.paid_offer_check_register(lambda: False)
        assert not hooks.paid_offers_sellable()


def test_billing_hears_of_every_offer_change_inside_the_writers_transaction(django_capture_on_commit_callbacks) -> None:
    from memberships import services

    seen: list[str] = []
    with mock.patch.object(hooks, "_offer_changed", []):
        hooks.offer_changed_register(lambda offer: seen.append(offer.title))
        services.offer_create(fields=services.OfferFields(title="Told"), hub_groups=[])
    assert seen == ["Told"]


def test_a_custom_link_is_the_destination_and_the_groups_are_not_read() -> None:
    offer = Offer(title="Out", redirect_enabled=True, redirect_url="https://example.com/thanks")
    groups = mock.MagicMock()
    destination = offer_destination(offer=offer, groups=groups)
    assert (destination.url, destination.is_custom_link) == ("https://example.com/thanks", True)
    groups.__iter__.assert_not_called()
