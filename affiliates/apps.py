from __future__ import annotations

from django.apps import AppConfig


class AffiliatesConfig(AppConfig):
    name = "affiliates"

    def ready(self) -> None:
        from accounts import outbox
        from accounts import slots as accounts_slots
        from affiliates import commissions, panels, referrals
        from billing import hooks as billing_hooks

        # Billing may not import affiliates: a starting paid checkout asks it for the
        # visitor's referral (an attribution, the link's code, the application fee).
        billing_hooks.checkout_contributor_register(referrals.checkout_contribute)
        accounts_slots.MEMBER_HOME.register(panels.member_home_partner, order=30)  # after My memberships
        # The commission ledger follows every payment billing stores (recorded, refunded,
        # disputed), and pays partners through the outbox's Stripe writes.
        billing_hooks.payment_listener_register(commissions.commission_sync)
        outbox.action_register(commissions.TRANSFER_ACTION, commissions.perform_transfer)
        outbox.action_register(commissions.REVERSAL_ACTION, commissions.perform_transfer_reversal)
        outbox.action_register(commissions.STOP_ACTION, commissions.perform_fee_stop)
