"""What memberships adds to the pages and rules of the layers below it (accounts, hubs),
registered in ``MembershipsConfig.ready``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.http import HttpRequest
from django.urls import reverse

from accounts.models import User
from core.composition import Panel
from core.ids import ModelChoiceField
from hubs.models import HubGroup
from memberships import hooks, selectors, services
from memberships.models import Offer


def getting_started(*, request: HttpRequest) -> Panel:
    """The Overview's step "publish an offer", done once one is published."""
    return Panel("memberships/panels/getting_started.html", {"done": Offer.objects.published().exists()})


def paywall_offer(*, request: HttpRequest, group: HubGroup) -> Panel | None:
    """A popup upsell's offer on a private group's paywall, while it may be sold."""
    if group.upsell != HubGroup.Upsell.POPUP:
        return None
    offer = selectors.upsell_offer_on_sale(group=group)
    if offer is None:
        return None
    one_click = hooks.buy_now_link(request, offer, group)
    buy_url = one_click or reverse("memberships:offer_page", kwargs={"slug": offer.slug})
    return Panel("memberships/panels/paywall_offer.html", {"offer": offer, "buy_url": buy_url, "one_click": one_click})


def user_purchases(*, request: HttpRequest, person: User) -> Panel:
    """The Users page's "Purchases": every entitlement of the user and what it opens."""
    return Panel("memberships/panels/user_purchases.html", {"purchases": selectors.user_purchases(user=person)})


class UpsellOfferPart:
    """The group editor's "Access-granting offer" for a popup upsell, and its rule: only an
    offer that sells the group can be chosen."""

    section = "popup"

    def fields(self, *, group: HubGroup | None) -> dict[str, forms.Field]:
        offer = selectors.upsell_offer_for(group=group) if group is not None else None
        return {
            "upsell_offer": ModelChoiceField(
                label="Access-granting offer",
                queryset=Offer.objects.exclude(status=Offer.Status.ARCHIVED).order_by("title"),
                required=False,
                empty_label="Choose an offer",
                help_text="Popup: the digital offer that gives access to this group.",
                initial=offer.pk if offer is not None else None,
            )
        }

    def clean(self, *, form: forms.BaseForm, group: HubGroup | None, data: dict[str, Any]) -> None:
        if data.get("permission") != HubGroup.Permission.PRIVATE or data.get("upsell") != HubGroup.Upsell.POPUP:
            return
        offer = data.get("upsell_offer")
        if offer is None and "upsell_offer" not in form.errors:
            form.add_error("upsell_offer", "Choose the offer that gives access to this group.")
        elif offer is not None and not (group is not None and offer.hub_groups.filter(pk=group.pk).exists()):
            form.add_error(
                "upsell_offer",
                "This offer does not give access to this group yet: add the group to the offer's "
                "Community Permissions first (Digital Offers).",
            )

    def save(self, *, group: HubGroup, data: Mapping[str, Any]) -> None:
        offer = data.get("upsell_offer") if group.upsell == HubGroup.Upsell.POPUP else None
        services.group_upsell_offer_set(group=group, offer=offer)


UPSELL_OFFER_PART = UpsellOfferPart()


def users_buyers_link(*, request: HttpRequest) -> Panel:
    """The Users screen's link to the buyers and their memberships."""
    return Panel("memberships/panels/users_buyers_link.html")
