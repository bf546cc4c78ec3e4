"""The commission ledger end to end, through the sandbox and the live server's webhooks: the
application fee Stripe took recorded once per payment, held, transferred to the partner's
account by the payout job, and reduced or reversed by refunds and disputes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from affiliates.models import Commission
from billing.models import WebhookEvent
from tests.affiliates import commission_helpers as c
from tests.billing import lifecycle_helpers as h
from tests.billing.test_stripe_flows import _deliver, _events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def one_time(owner, partner_user, stripe_sandbox, live_server, celery_worker) -> c.World:
    return c.world(
        owner=owner, partner_user=partner_user, sandbox=stripe_sandbox, live_server=live_server, amount=1999, percent=15
    )


@pytest.fixture
def monthly(owner, partner_user, stripe_sandbox, live_server, celery_worker) -> c.World:
    return c.world(
        owner=owner,
        partner_user=partner_user,
        sandbox=stripe_sandbox,
        live_server=live_server,
        recurring=True,
        amount=2500,
        percent=30,
    )


def test_a_one_time_sale_records_the_fee_stripe_took_then_pays_it_after_the_hold(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    [commission] = c.commissions_of(attempt)
    [payment] = c.payments_of(attempt)
    # 15% of 19.99 is 2.9985: Stripe took 3.00, and that is what the ledger holds.
    assert (payment.application_fee_amount, commission.amount, commission.currency) == (300, 300, "usd")
    assert commission.status == Commission.Status.PENDING
    assert commission.hold_until == payment.paid_at + timedelta(days=14)
    assert commission.partner.user == one_time.partner_user

    # Before the hold is over nothing is paid.
    assert c.pay_due(one_time, at=commission.hold_until - timedelta(minutes=1)) == 0
    assert c.transfers(one_time) == []

    assert c.pay_due(one_time) == 1
    commission.refresh_from_db()
    [transfer] = c.transfers(one_time)
    assert (transfer["amount"], transfer["currency"], transfer["destination"]) == (
        300,
        "usd",
        one_time.partner_account.account_id,
    )
    assert transfer["transfer_group"] == f"commission-{commission.pk}"
    assert (commission.status, commission.transfer_id, commission.paid) == ("paid", transfer["id"], 300)

    # Paying again finds nothing to pay.
    assert c.pay_due(one_time) == 0
    assert len(c.transfers(one_time)) == 1


def test_three_renewals_each_earn_the_rate_fixed_at_the_sale(monthly) -> None:
    attempt = c.referred_purchase(monthly)
    monthly.offer.resell_commission_percent = 50  # a later change: for sales made after it
    monthly.offer.save(update_fields=["resell_commission_percent"])
    for _ in range(3):
        h.advance_past_period_end(monthly.sandbox, attempt.stripe_subscription_id)
    payments = c.payments_of(attempt)
    assert [payment.is_renewal for payment in payments] == [False, True, True, True]
    ledger = c.commissions_of(attempt)
    # 30% of 25.00, on the first invoice and on each renewal: the fee Stripe took each time.
    assert [commission.amount for commission in ledger] == [750, 750, 750, 750]
    assert [commission.payment for commission in ledger] == payments
    assert {commission.attribution.commission_percent for commission in ledger} == {30}


def test_the_same_invoice_paid_delivered_three_times_is_one_commission(monthly) -> None:
    attempt = c.referred_purchase(monthly)
    [event] = _events(monthly.sandbox, monthly.creator.account_id, "invoice.paid")  # the one purchase
    WebhookEvent.objects.filter(event_id=event["id"]).delete()  # as if it had never arrived
    for _ in range(3):
        assert _deliver(_live_webhook(monthly), event) == 200
    h.settle(monthly.sandbox)
    assert len(c.commissions_of(attempt)) == 1
    assert Commission.objects.count() == 1


def _live_webhook(w: c.World) -> str:
    return str(w.sandbox._control("GET", "/config")["webhook_url"])
