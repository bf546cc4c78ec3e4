from __future__ import annotations

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # The deploy checks, and the tasks that services queue by name (core.tasks).
        from accounts import outbox
        from accounts import slots as accounts_slots
        from billing import checks, lifecycle_emails, panels, selectors, tasks  # noqa: F401
        from billing.services.catalog import offer_changed
        from hubs import slots as hubs_slots
        from memberships import hooks
        from memberships import slots as memberships_slots

        # Memberships may not import billing: billing tells it whether paid offers can be sold
        # (looked up when asked, from the connected account's row), and hears about every offer
        # change, to sync the offer's Stripe product and price after commit.
        hooks.paid_offer_check_register(lambda: selectors.stripe_connected())
        hooks.offer_changed_register(offer_changed)
        hooks.purchase_terms_register(selectors.purchase_terms)
        hooks.buy_now_link_register(panels.paywall_buy_now)
        accounts_slots.DASHBOARD_OVERVIEW.register(panels.overview_insights, order=10)
        accounts_slots.DASHBOARD_GETTING_STARTED.register(panels.getting_started, order=10)
        accounts_slots.DASHBOARD_GETTING_STARTED.register(panels.getting_started_test_purchase, order=40)
        accounts_slots.UNCOUNTED_USERS.register(selectors.checkout_test_buyer_ids)
        memberships_slots.OFFER_ACTIONS.register(panels.offer_test_purchase, order=10)
        hubs_slots.USER_PAGE.register(panels.user_memberships, order=20)  # after memberships' Purchases
        accounts_slots.MEMBER_HOME.register(panels.member_home_memberships, order=20)  # after Your communities
        for name, builder in lifecycle_emails.BUILDERS.items():
            outbox.email_builder_register(name, builder)

        # The Stripe writes that committed changes require, carried out by the outbox.
        from billing.services import lifecycle

        outbox.action_register(lifecycle.REFUND_ACTION, lifecycle.perform_refund)
        outbox.action_register(lifecycle.CANCEL_ACTION, lifecycle.perform_cancel)
        outbox.action_register(lifecycle.CANCEL_AT_PERIOD_END_ACTION, lifecycle.perform_cancel_at_period_end)
