from __future__ import annotations

from django.apps import AppConfig


class AffiliatesConfig(AppConfig):
    name = "affiliates"

    def ready(self) -> None:
        from accounts import slots as accounts_slots
        from affiliates import panels, referrals
        from billing import hooks as billing_hooks

        # Billing may not import affiliates: a starting paid checkout asks it for the
        # visitor's referral (an attribution, the link's code, the application fee).
        billing_hooks.checkout_contributor_register(referrals.checkout_contribute)
        accounts_slots.MEMBER_HOME.register(panels.member_home_partner, order=30)  # after My memberships
