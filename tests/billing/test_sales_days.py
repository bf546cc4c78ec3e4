"""The sales rollup the figures read (``billing.SalesDay``, docs/METRICS.md): moved by the services
that record and change payments, checked and rebuilt by ``manage.py sales_days_rebuild``.

The lifecycle property test (test_lifecycle_property.py) also compares it with the payments at
every check, whatever the order of Stripe's events."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from billing import metrics
from billing import stripe_gateway as gateway
from billing.models import Payment, SalesDay
from billing.services import lifecycle
from billing.services.sales_days import sales_day_move, sales_days_differences, share_of
from tests import factories
from tests.billing.metrics_history import TIME_ZONE, pay

pytestmark = pytest.mark.django_db


def totals(**filters: Any) -> list[tuple[str, int, int, int, int, int]]:
    return [
        (one.currency, one.gross, one.refunds, one.disputes, one.net, one.payments)
        for one in metrics.revenue_totals(metrics.sales_days(**filters))
    ]


def store_charge(
    payment: Payment, *, refunded: int = 0, dispute: str = "", read_at: datetime, fee: int = 0, fee_currency: str = ""
) -> None:
    """What the webhook handlers do once they have read the payment's charge from Stripe."""
    charge = gateway.Charge(
        charge_id=f"ch_{payment.pk}",
        payment_intent_id=payment.stripe_object_id,
        amount=payment.amount,
        amount_refunded=refunded,
        currency=payment.currency,
        card_last4="4242",
        created=payment.paid_at,
        disputed=bool(dispute),
        stripe_fee=fee,
        stripe_fee_currency=fee_currency,
    )
    found = gateway.Dispute(
        dispute_id=f"dp_{payment.pk}", charge_id=charge.charge_id, payment_intent_id="", status=dispute
    )
    lifecycle.payment_charge_store(
        payment_pk=payment.pk, charge=charge, dispute=found if dispute else None, read_at=read_at
    )


def test_a_refund_and_a_dispute_move_the_payment_between_the_rows_of_its_day() -> None:
    course = factories.paid_offer(amount=5000)
    buyer = factories.buyer(course)
    paid_at = datetime(2026, 3, 5, 15, tzinfo=UTC)
    payment = pay(buyer, course, paid_at)
    pay(factories.buyer(course, "second@example.com"), course, paid_at)
    assert totals() == [("usd", 10000, 0, 0, 10000, 2)]

    store_charge(payment, refunded=2000, read_at=datetime(2026, 3, 6, tzinfo=UTC))
    assert totals() == [("usd", 10000, 2000, 0, 8000, 2)]
    assert totals(status=metrics.Status.REFUNDED) == [("usd", 5000, 2000, 0, 3000, 1)]
    assert totals(status=metrics.Status.PAID) == [("usd", 5000, 0, 0, 5000, 1)]

    store_charge(payment, refunded=2000, dispute="lost", read_at=datetime(2026, 3, 7, tzinfo=UTC))
    assert totals() == [("usd", 10000, 2000, 3000, 5000, 2)]
    # An older read of the charge arriving late changes nothing, in the payment or the rollup.
    store_charge(payment, read_at=datetime(2026, 3, 6, 12, tzinfo=UTC))
    assert totals() == [("usd", 10000, 2000, 3000, 5000, 2)]
    assert sales_days_differences() == []
    assert SalesDay.objects.filter(day="2026-03-05").count() == 3  # plain, refunded, refunded and lost


def test_the_day_is_the_deployments_local_day(settings: Any) -> None:
    settings.TIME_ZONE = TIME_ZONE
    club = factories.paid_offer(recurring=True, amount=1000)
    # 22:00 in New York on Feb 28 is March 1 in UTC.
    pay(factories.buyer(club), club, datetime(2026, 3, 1, 3, tzinfo=UTC))
    assert list(SalesDay.objects.values_list("day", flat=True)) == [datetime(2026, 2, 28).date()]


def test_the_check_finds_a_wrong_row_and_the_rebuild_mends_it(capsys: pytest.CaptureFixture[str]) -> None:
    course = factories.paid_offer(amount=5000)
    pay(factories.buyer(course), course, datetime(2026, 3, 5, 15, tzinfo=UTC))
    call_command("sales_days_rebuild", "--check")
    assert "agrees with the payments" in capsys.readouterr().out

    SalesDay.objects.update(amount=4000)
    with pytest.raises(CommandError, match="1 rollup rows disagree"):
        call_command("sales_days_rebuild", "--check")
    assert "payments say (1, 5000, 0, 0, 0), the rollup says (1, 4000, 0, 0, 0)" in capsys.readouterr().out

    call_command("sales_days_rebuild")
    assert "1 rows" in capsys.readouterr().out
    assert sales_days_differences() == []


def test_after_the_time_zone_changes_the_rebuild_moves_payments_to_their_new_days(settings: Any) -> None:
    course = factories.paid_offer(amount=5000)
    pay(factories.buyer(course), course, datetime(2026, 3, 1, 3, tzinfo=UTC))  # March 1 in UTC
    settings.TIME_ZONE = TIME_ZONE
    assert len(sales_days_differences()) == 2  # counted on March 1, belongs to February 28
    call_command("sales_days_rebuild")
    assert list(SalesDay.objects.values_list("day", flat=True)) == [datetime(2026, 2, 28).date()]


@pytest.mark.django_db(transaction=True)
def test_payments_of_one_day_recorded_at_the_same_moment_are_all_counted() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time: concurrent transactions are tested on PostgreSQL")
    course = factories.paid_offer(amount=5000)
    buyers = [factories.buyer(course, f"buyer{n}@example.com") for n in range(6)]
    ready = threading.Barrier(len(buyers))
    failures: list[BaseException] = []

    def record(number: int) -> None:
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    stripe_object_id=f"pi_same_moment_{number}",
                    kind=Payment.Kind.ONE_TIME,
                    stripe_account_id=factories.ACCOUNT_ID,
                    amount=5000,
                    currency="usd",
                    user=buyers[number],
                    offer=course,
                    paid_at=datetime(2026, 3, 5, 15, tzinfo=UTC),
                )
                ready.wait(timeout=10)  # every transaction has its payment before any moves its share
                sales_day_move(before=None, after=share_of(payment))
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(number,)) for number in range(len(buyers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert totals() == [("usd", 30000, 0, 0, 30000, 6)]
    assert sales_days_differences() == []


def test_test_purchases_have_rows_of_their_own() -> None:
    course = factories.paid_offer(amount=5000)
    pay(factories.buyer(course), course, datetime(2026, 3, 5, 15, tzinfo=UTC), is_test=True)
    assert totals() == []
    assert totals(is_test=True) == [("usd", 5000, 0, 0, 5000, 1)]


def test_stripes_fee_is_recorded_in_the_payments_currency_only() -> None:
    course = factories.paid_offer(amount=5000)
    payment = pay(factories.buyer(course), course, datetime(2026, 3, 5, 15, tzinfo=UTC))
    # Settled in another currency than the charge: not added to the charge's figures.
    store_charge(payment, fee=160, fee_currency="eur", read_at=datetime(2026, 3, 5, 16, tzinfo=UTC))
    assert Payment.objects.get(pk=payment.pk).stripe_fee_amount == 0
    store_charge(payment, fee=175, fee_currency="usd", read_at=datetime(2026, 3, 5, 17, tzinfo=UTC))
    assert Payment.objects.get(pk=payment.pk).stripe_fee_amount == 175
    [usd] = metrics.revenue_totals(metrics.sales_days())
    assert (usd.stripe_fees, usd.net) == (175, 5000)  # net is before Stripe's fees
    assert sales_days_differences() == []
