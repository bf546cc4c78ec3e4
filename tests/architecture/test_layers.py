"""The layers hold for what import-linter cannot see: model relations and the slots."""

from __future__ import annotations

import tomllib
from pathlib import Path

from django.apps import apps

from accounts import slots as accounts_slots
from core.composition import Panel, Slot, panels
from hubs import slots as hubs_slots

ROOT = Path(__file__).resolve().parents[2]


def _layers() -> list[str]:
    """The layer order of pyproject.toml's import-linter contract, top first: one source of truth."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [contract for contract in config["contracts"] if contract["type"] == "layers"]
    return contract["layers"]


def test_every_model_relation_points_to_its_own_layer_or_one_below() -> None:
    layers = _layers()
    rank = {name: index for index, name in enumerate(layers)}  # 0 is the top
    checked = 0
    wrong = []
    for model in apps.get_models(include_auto_created=True):
        app = model._meta.app_label
        if app not in rank:
            continue  # Django's own apps
        for field in model._meta.get_fields():
            # Forward relations only: a reverse accessor is the other model's forward relation.
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            target = field.related_model._meta.app_label
            if target not in rank:
                continue
            checked += 1
            if rank[target] < rank[app]:
                wrong.append(f"{model._meta.label}.{field.name} -> {field.related_model._meta.label}")
    assert checked > 10  # the walk really sees the project's relations
    assert wrong == [], "relations pointing to a higher layer: " + ", ".join(wrong)


def test_the_layer_order_is_the_documented_one() -> None:
    assert _layers() == ["config", "affiliates", "billing", "memberships", "hubs", "accounts", "core"]


def test_higher_layers_fill_the_slots_of_lower_ones_at_startup() -> None:
    from affiliates import panels as affiliates_panels
    from affiliates import referrals
    from billing import hooks as billing_hooks
    from billing import panels as billing_panels
    from hubs import panels as hubs_panels
    from memberships import hooks as memberships_hooks
    from memberships import panels as memberships_panels
    from memberships import selectors as memberships_selectors

    assert list(accounts_slots.MEMBER_HOME) == [
        hubs_panels.member_home_communities,
        billing_panels.member_home_memberships,
        affiliates_panels.member_home_partner,
    ]
    assert billing_hooks._checkout_contributors == [referrals.checkout_contribute]
    assert memberships_hooks._buy_now_links == [billing_panels.paywall_buy_now]
    assert list(accounts_slots.DASHBOARD_GETTING_STARTED) == [
        billing_panels.getting_started,
        hubs_panels.getting_started,
        memberships_panels.getting_started,
        billing_panels.getting_started_test_purchase,
    ]
    assert list(hubs_slots.ACCESS_SOURCES) == [memberships_selectors.purchased_group_ids]
    assert memberships_panels.paywall_offer in hubs_slots.PAYWALL
    assert memberships_panels.user_purchases in hubs_slots.USER_PAGE
    assert memberships_panels.UPSELL_OFFER_PART in hubs_slots.GROUP_EDITOR
    assert memberships_selectors.offers_selling in hubs_slots.GROUP_IN_USE


def test_a_slot_keeps_its_entries_in_order_once_each_and_skips_empty_panels() -> None:
    slot: Slot = Slot("test.page")

    def second(**_: object) -> Panel:
        return Panel("b.html", {"n": 2})

    def first(**_: object) -> Panel:
        return Panel("a.html")

    def nothing(**_: object) -> None:
        return None

    slot.register(second, order=20)
    slot.register(first, order=10)
    slot.register(nothing, order=15)
    slot.register(second, order=20)  # a second ready() adds nothing
    assert list(slot) == [first, nothing, second]
    assert panels(slot, request=None) == [Panel("a.html"), Panel("b.html", {"n": 2})]
    slot.unregister(nothing)
    assert len(slot) == 2
