"""The popup upsell's offer moved from hubs.HubGroup to memberships.GroupUpsellOffer with its data."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("hubs", "0002_community"), ("memberships", "0002_offer_editor_fields")]
AFTER = [("hubs", "0003_remove_hubgroup_upsell_offer"), ("memberships", "0003_group_upsell_offer")]


def _migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_upsell_offer_moves_to_memberships_and_back() -> None:
    try:
        old = _migrate(BEFORE)
        offer = old.get_model("memberships", "Offer").objects.create(title="Pass", slug="pass")
        group_model = old.get_model("hubs", "HubGroup")
        sold = group_model.objects.create(name="Inner", slug="inner", upsell="popup", upsell_offer=offer)
        group_model.objects.create(name="Open", slug="open")

        new = _migrate(AFTER)
        links = new.get_model("memberships", "GroupUpsellOffer").objects.values_list("group_id", "offer_id")
        assert list(links) == [(sold.pk, offer.pk)]

        old = _migrate(BEFORE)
        rows = old.get_model("hubs", "HubGroup").objects.order_by("slug").values_list("slug", "upsell_offer_id")
        assert list(rows) == [("inner", offer.pk), ("open", None)]
    finally:
        executor = MigrationExecutor(connection)
        _migrate(executor.loader.graph.leaf_nodes())  # every app back to its latest state
