from __future__ import annotations

from django.apps import AppConfig


class MembershipsConfig(AppConfig):
    name = "memberships"

    def ready(self) -> None:
        from accounts import outbox
        from accounts import slots as accounts_slots
        from hubs import slots as hubs_slots
        from memberships import panels, selectors, services

        accounts_slots.DASHBOARD_GETTING_STARTED.register(panels.getting_started, order=30)
        hubs_slots.ACCESS_SOURCES.register(selectors.purchased_group_ids)
        hubs_slots.PAYWALL.register(panels.paywall_offer, order=10)
        hubs_slots.USER_PAGE.register(panels.user_purchases, order=10)
        hubs_slots.USERS_LINKS.register(panels.users_buyers_link)
        hubs_slots.GROUP_EDITOR.register(panels.UPSELL_OFFER_PART)
        hubs_slots.GROUP_IN_USE.register(selectors.offers_selling)
        outbox.email_builder_register("offer_confirmation", services.confirmation_email_build)
