"""The commission ledger end to end, through the sandbox and the live server's webhooks: the
application fee Stripe took recorded once per payment, held, transferred to the partner's
account by the payout job, and reduced or reversed by refunds and disputes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from affiliates import commissions, services
from affiliates.models import Commission, Partner
from billing import stripe_gateway as gateway
from billing.models import StripeAccount, WebhookEvent
from billing.services import lifecycle
from memberships.models import Offer
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


# --- Refunds ------------------------------------------------------------------------------------
def test_a_full_refund_before_payout_reverses_the_pending_commission(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    [payment] = c.payments_of(attempt)
    c.refund(one_time, payment)
    [commission] = c.commissions_of(attempt)
    assert (commission.amount, commission.amount_reversed, commission.status) == (300, 300, "reversed")
    assert c.pay_due(one_time) == 0
    assert c.transfers(one_time) == []


def test_a_partial_refund_before_payout_reduces_what_is_paid(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    [payment] = c.payments_of(attempt)
    c.refund(one_time, payment, amount=999)  # 999 of 1999: 149.92... of the 300 fee, so 150
    [commission] = c.commissions_of(attempt)
    assert (commission.amount_reversed, commission.payable) == (150, 150)
    assert c.pay_due(one_time) == 1
    [transfer] = c.transfers(one_time)
    assert transfer["amount"] == 150
    commission.refresh_from_db()
    assert (commission.status, commission.paid, commission.pending) == ("paid", 150, 0)


def test_the_creators_refund_from_the_platform_refunds_the_fee_in_proportion(one_time, owner) -> None:
    attempt = c.referred_purchase(one_time)
    [payment] = c.payments_of(attempt)
    with h.deliveries_held(one_time.sandbox):
        lifecycle.payment_refund_request(payment=payment, amount=1000, by=owner, request_key="refund-1")
    h.settle(one_time.sandbox)
    fee = one_time.sandbox.client().v1.application_fees.retrieve(payment.application_fee_id)
    # 1000 of 1999 is 150.07... of the 300 fee: Stripe gives the platform 150 back.
    assert (fee.amount, fee.amount_refunded) == (300, 150)
    [commission] = c.commissions_of(attempt)
    assert commission.amount_reversed == 150


def test_a_full_refund_after_payout_reverses_the_transfer(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    c.pay_due(one_time)
    [payment] = c.payments_of(attempt)
    c.refund(one_time, payment)
    [transfer] = c.transfers(one_time)
    assert (transfer["amount"], transfer["amount_reversed"], transfer["reversed"]) == (300, 300, True)
    [commission] = c.commissions_of(attempt)
    assert (commission.transferred, commission.transfer_reversed, commission.status) == (300, 300, "reversed")
    assert (commission.paid, commission.pending) == (0, 0)


def test_partial_refunds_after_payout_reverse_the_transfer_in_proportion_once_each(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    c.pay_due(one_time)
    [payment] = c.payments_of(attempt)
    c.refund(one_time, payment, amount=500)  # 75.03...: 75 of the fee
    c.refund(one_time, payment, amount=500)  # 1000 of 1999 in all: 150
    [transfer] = c.transfers(one_time)
    reversals = one_time.sandbox.client().v1.transfers.reversals.list(transfer["id"]).data
    assert sorted(reversal.amount for reversal in reversals) == [75, 75]
    assert transfer["amount_reversed"] == 150
    [commission] = c.commissions_of(attempt)
    assert (commission.amount_reversed, commission.transfer_reversed, commission.paid) == (150, 150, 150)
    assert commission.status == "paid"
    # Events about the refund delivered again change nothing.
    for event in _events(one_time.sandbox, one_time.creator.account_id, "charge.refunded"):
        WebhookEvent.objects.filter(event_id=event["id"]).delete()
        assert _deliver(_live_webhook(one_time), event) == 200
    h.settle(one_time.sandbox)
    assert len(one_time.sandbox.client().v1.transfers.reversals.list(transfer["id"]).data) == 2


# --- Disputes -----------------------------------------------------------------------------------
def test_a_dispute_freezes_the_commission_until_won(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    [payment] = c.payments_of(attempt)
    dispute = one_time.sandbox.create_dispute(payment.payment_intent_id)
    h.settle(one_time.sandbox)
    [commission] = c.commissions_of(attempt)
    assert (commission.frozen, commission.status) == (True, "frozen")
    assert c.pay_due(one_time) == 0
    assert c.transfers(one_time) == []

    one_time.sandbox.close_dispute(dispute["id"], status="won")
    h.settle(one_time.sandbox)
    commission.refresh_from_db()
    assert (commission.frozen, commission.amount_reversed) == (False, 0)
    assert c.pay_due(one_time) == 1
    assert [transfer["amount"] for transfer in c.transfers(one_time)] == [300]


def test_a_lost_dispute_after_payout_takes_the_whole_commission_back(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    c.pay_due(one_time)
    [payment] = c.payments_of(attempt)
    dispute = one_time.sandbox.create_dispute(payment.payment_intent_id)
    h.settle(one_time.sandbox)
    one_time.sandbox.close_dispute(dispute["id"], status="lost")
    h.settle(one_time.sandbox)
    [commission] = c.commissions_of(attempt)
    assert (commission.amount_reversed, commission.transfer_reversed, commission.status) == (300, 300, "reversed")
    [transfer] = c.transfers(one_time)
    assert transfer["reversed"] is True


# --- The partner's account, and transfers Stripe refuses ---------------------------------------------
def test_a_partner_who_disconnected_is_paid_after_reconnecting(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    old_account = one_time.partner_account.account_id
    client = Client()
    client.force_login(one_time.partner_user)
    with h.deliveries_held(one_time.sandbox):  # Stripe's deauthorization event waits for the write
        assert client.post("/partners/stripe/disconnect/").status_code == 302
    assert not StripeAccount.objects.partner_of(one_time.partner_user.pk).exists()
    h.settle(one_time.sandbox)

    assert c.pay_due(one_time) == 0  # held: nowhere to pay it
    [commission] = c.commissions_of(attempt)
    assert (commission.status, commission.transfer_id) == ("pending", "")
    assert c.transfers(one_time) == []

    with h.deliveries_held(one_time.sandbox):
        c.oauth("/partners/stripe/connect/", one_time.partner_user, one_time.sandbox, email="pat@example.com")
    new_account = one_time.partner_account.account_id
    assert new_account != old_account
    h.settle(one_time.sandbox)
    assert c.pay_due(one_time) == 1
    [transfer] = c.transfers(one_time)
    assert (transfer["destination"], transfer["amount"]) == (new_account, 300)


def test_a_restricted_partner_account_holds_the_commission(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    one_time.sandbox.update_account(one_time.partner_account.account_id, payouts_enabled=False)
    h.settle(one_time.sandbox)  # account.updated: the platform reads the account again
    assert StripeAccount.objects.partner_of(one_time.partner_user.pk).get().payouts_enabled is False
    assert c.pay_due(one_time) == 0
    one_time.sandbox.update_account(one_time.partner_account.account_id, payouts_enabled=True)
    h.settle(one_time.sandbox)
    assert c.pay_due(one_time) == 1
    assert [transfer["amount"] for transfer in c.transfers(one_time)] == [300]
    assert c.commissions_of(attempt)[0].status == "paid"


def test_a_deauthorization_that_never_arrived_is_caught_up_with_at_the_refused_transfer(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    account_id = one_time.partner_account.account_id
    one_time.sandbox.set_delivery(drop=1)  # account.application.deauthorized is lost
    try:
        gateway.oauth_deauthorize(account_id=account_id)
        h.settle(one_time.sandbox)
    finally:
        one_time.sandbox.set_delivery()
    assert StripeAccount.objects.partner_of(one_time.partner_user.pk).exists()  # not known here yet

    assert c.pay_due(one_time) == 1
    [commission] = c.commissions_of(attempt)
    assert (commission.status, commission.attempts) == ("pending", 1)
    assert "No such destination" in commission.last_error
    # Stripe was asked: the account is disconnected here too, so the next runs hold it.
    assert not StripeAccount.objects.partner_of(one_time.partner_user.pk).exists()
    assert c.pay_due(one_time, at=commission.next_attempt_at) == 0
    assert c.transfers(one_time) == []


def test_a_refused_transfer_is_recorded_then_retried_after_the_wait_and_paid_once(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    [commission] = c.commissions_of(attempt)
    first_try = commission.hold_until + timedelta(minutes=1)
    one_time.sandbox.refuse_transfers()
    try:
        assert c.pay_due(one_time, at=first_try) == 1
        commission.refresh_from_db()
        assert commission.attempts == 1
        assert "balance is too low" in commission.last_error
        assert commission.next_attempt_at == first_try + commissions.FIRST_RETRY_WAIT
        assert (commission.status, commission.transfer_id) == ("pending", "")
        # Not before its wait is over.
        assert c.pay_due(one_time, at=first_try + timedelta(minutes=5)) == 0
        # Refused again: the wait doubles.
        second_try = first_try + commissions.FIRST_RETRY_WAIT
        assert c.pay_due(one_time, at=second_try) == 1
        commission.refresh_from_db()
        assert commission.attempts == 2
        assert commission.next_attempt_at == second_try + 2 * commissions.FIRST_RETRY_WAIT
    finally:
        one_time.sandbox.refuse_transfers(False)
    assert c.transfers(one_time) == []
    assert c.pay_due(one_time, at=commission.next_attempt_at) == 1
    commission.refresh_from_db()
    assert (commission.status, commission.last_error, commission.paid) == ("paid", "", 300)
    assert c.pay_due(one_time, at=commission.next_attempt_at or first_try + timedelta(days=2)) == 0
    assert len(c.transfers(one_time)) == 1


def test_a_transfer_made_by_a_try_that_died_before_recording_it_is_found_not_repeated(one_time) -> None:
    attempt = c.referred_purchase(one_time)
    [commission] = c.commissions_of(attempt)
    # The transfer went through at Stripe, then the process died before writing it down.
    gateway.transfer_create(
        amount=300,
        currency="usd",
        destination=one_time.partner_account.account_id,
        transfer_group=commissions.transfer_group(commission),
        metadata={},
        idempotency_key="an-earlier-process",
    )
    assert c.pay_due(one_time) == 1
    commission.refresh_from_db()
    assert commission.status == "paid"
    assert len(c.transfers(one_time)) == 1


# --- Stop commissions, and a removed partner ---------------------------------------------------------
def test_stop_commissions_sets_the_fee_to_zero_from_the_next_invoice(monthly) -> None:
    attempt = c.referred_purchase(monthly)
    partner = Partner.objects.get(user=monthly.partner_user)
    with h.deliveries_held(monthly.sandbox):
        assert commissions.partner_commissions_stop(partner=partner) == 1
    h.settle(monthly.sandbox)
    subscription = h.subscription(monthly.sandbox, attempt.stripe_subscription_id)
    assert subscription["application_fee_percent"] in (0, 0.0, None)
    h.advance_past_period_end(monthly.sandbox, attempt.stripe_subscription_id)
    assert [payment.application_fee_amount for payment in c.payments_of(attempt)] == [750, 0]
    assert [commission.amount for commission in c.commissions_of(attempt)] == [750]  # the one earned stays


def test_a_removed_partners_existing_subscription_keeps_paying_commission(monthly) -> None:
    attempt = c.referred_purchase(monthly)
    partner = Partner.objects.get(user=monthly.partner_user)
    services.partner_status_set(partner=partner, status=Partner.Status.REMOVED)
    h.advance_past_period_end(monthly.sandbox, attempt.stripe_subscription_id)
    assert [commission.amount for commission in c.commissions_of(attempt)] == [750, 750]


def test_resell_rights_turned_off_leave_existing_subscriptions_paying_commission(monthly) -> None:
    attempt = c.referred_purchase(monthly)
    Offer.objects.filter(pk=monthly.offer.pk).update(resell_enabled=False, resell_commission_percent=None)
    h.advance_past_period_end(monthly.sandbox, attempt.stripe_subscription_id)
    assert [commission.amount for commission in c.commissions_of(attempt)] == [750, 750]


# --- Rounding -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "percent"), [(1999, 15), (1990, 15), (50, 33), (101, 1), (9999, 90), (2501, 7), (1010, 5)]
)
def test_the_ledger_holds_the_fee_stripe_took_at_odd_amounts(
    owner, partner_user, stripe_sandbox, live_server, celery_worker, amount, percent
) -> None:
    w = c.world(
        owner=owner,
        partner_user=partner_user,
        sandbox=stripe_sandbox,
        live_server=live_server,
        recurring=True,
        amount=amount,
        percent=percent,
    )
    attempt = c.referred_purchase(w)
    [payment] = c.payments_of(attempt)
    fee = stripe_sandbox.client().v1.application_fees.retrieve(payment.application_fee_id)
    [commission] = c.commissions_of(attempt)
    assert commission.amount == fee.amount
    # Stripe's rounding of the percent, half up to the minor unit.
    assert fee.amount == (amount * percent * 2 + 100) // 200
