from __future__ import annotations

from django.core.management import call_command
from django.test import Client

from hubs.models import HubGroup
from memberships.models import Offer


def test_the_demo_seeds_a_published_free_offer_and_a_paid_draft_once(db: None, capsys, client: Client) -> None:
    call_command("seed_demo")
    call_command("seed_demo")
    assert "/offers/demo-free-membership/" in capsys.readouterr().out
    free = Offer.objects.get(slug="demo-free-membership")
    paid = Offer.objects.get(slug="demo-workshop-pass")
    assert (free.status, free.pricing) == ("published", "free")
    assert (paid.status, paid.price_label) == ("draft", "$29.00 / month")
    assert {g.slug for g in paid.hub_groups.all()} == {"demo-members-lounge", "demo-workshops"}
    assert (paid.resell_enabled, paid.resell_commission_percent) == (True, 20)  # members can resell it
    shared = HubGroup.objects.filter(slug__in=["demo-members-lounge", "demo-workshops"], permission="private")
    assert shared.count() == 2
    assert Offer.objects.filter(slug__startswith="demo-").count() == 2
    assert client.get("/offers/demo-free-membership/").status_code == 200
