"""The sales rollup (``SalesDay``): a row per local day, offer, currency and payment state,
kept in the transaction that records or changes a payment (docs/METRICS.md).

A payment's contribution moves as increments (``F() + n``) on the rows of its state before and
after the change, so two payments of the same day written at once both count: the row's lock
queues the second increment, and neither reads a total to write it back. The caller holds the
payment itself (``select_for_update`` or just created), so one payment's changes never
interleave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, Case, Count, F, Q, Sum, Value, When
from django.db.models.functions import TruncDate

from billing.models import Payment, SalesDay
from core.figures import figures_forget


@dataclass(frozen=True, order=True)
class Share:
    """What one payment adds to the rollup, under which key."""

    day: date
    offer_id: int
    currency: str
    is_test: bool
    refunded: bool
    dispute_status: str
    amount: int
    amount_refunded: int
    application_fee_amount: int
    stripe_fee_amount: int

    @property
    def key(self) -> dict[str, object]:
        return {
            "day": self.day,
            "offer_id": self.offer_id,
            "currency": self.currency,
            "is_test": self.is_test,
            "refunded": self.refunded,
            "dispute_status": self.dispute_status,
        }


def share_of(payment: Payment) -> Share | None:
    """The payment's share as it stands (none without Stripe's time: no period holds it)."""
    if payment.paid_at is None:
        return None
    return Share(
        day=payment.paid_at.astimezone(ZoneInfo(settings.TIME_ZONE)).date(),
        offer_id=payment.offer_id,
        currency=payment.currency,
        is_test=payment.is_test,
        refunded=payment.amount_refunded > 0,
        dispute_status=payment.dispute_status,
        amount=payment.amount,
        amount_refunded=payment.amount_refunded,
        application_fee_amount=payment.application_fee_amount,
        stripe_fee_amount=payment.stripe_fee_amount,
    )


def _add(share: Share, sign: int) -> None:
    SalesDay.objects.bulk_create([SalesDay(**share.key)], ignore_conflicts=True)
    SalesDay.objects.filter(**share.key).update(
        payments=F("payments") + sign,
        amount=F("amount") + sign * share.amount,
        amount_refunded=F("amount_refunded") + sign * share.amount_refunded,
        application_fee_amount=F("application_fee_amount") + sign * share.application_fee_amount,
        stripe_fee_amount=F("stripe_fee_amount") + sign * share.stripe_fee_amount,
    )


def sales_day_move(*, before: Share | None, after: Share | None) -> None:
    """Move a payment's share from its state ``before`` a change to the one ``after`` (either
    may be none: recorded, or never counted). Rows are touched in key order, so two moves
    between the same two rows cannot deadlock."""
    if before == after:
        return
    assert transaction.get_connection().in_atomic_block, "the rollup moves with the payment's own transaction"
    changes = [(share, sign) for share, sign in ((before, -1), (after, 1)) if share is not None]
    for share, sign in sorted(changes, key=lambda change: sorted(change[0].key.items(), key=str)):
        _add(share, sign)
    figures_forget()


def _recomputed(zone: str) -> list[dict[str, Any]]:
    rows = (
        Payment.objects.filter(paid_at__isnull=False)
        .annotate(
            day=TruncDate("paid_at", tzinfo=ZoneInfo(zone)),
            refunded=Case(
                When(amount_refunded__gt=0, then=Value(True)), default=Value(False), output_field=BooleanField()
            ),
        )
        .values("day", "offer_id", "currency", "is_test", "refunded", "dispute_status")
        .annotate(
            payments=Count("pk"),
            amount=Sum("amount"),
            amount_refunded_total=Sum("amount_refunded"),
            application_fee_amount_total=Sum("application_fee_amount"),
            stripe_fee_amount_total=Sum("stripe_fee_amount"),
        )
        .order_by()
    )
    return [dict(row) for row in rows]


def sales_days_rebuild() -> int:
    """Recompute the whole rollup from the payments, in one transaction. Returns the number of
    rows."""
    rows = _recomputed(settings.TIME_ZONE)
    with transaction.atomic():
        SalesDay.objects.all().delete()
        SalesDay.objects.bulk_create(
            [
                SalesDay(
                    day=row["day"],
                    offer_id=row["offer_id"],
                    currency=row["currency"],
                    is_test=row["is_test"],
                    refunded=row["refunded"],
                    dispute_status=row["dispute_status"],
                    payments=row["payments"],
                    amount=row["amount"],
                    amount_refunded=row["amount_refunded_total"],
                    application_fee_amount=row["application_fee_amount_total"],
                    stripe_fee_amount=row["stripe_fee_amount_total"],
                )
                for row in rows
            ],
            batch_size=2000,
        )
    return len(rows)


def sales_days_differences() -> list[str]:
    """Where the rollup and the payments disagree, one line each (none when it is right):
    what ``manage.py sales_days_rebuild --check`` and the tests compare."""
    expected = {
        (str(row["day"]), row["offer_id"], row["currency"], row["is_test"], row["refunded"], row["dispute_status"]): (
            row["payments"],
            row["amount"],
            row["amount_refunded_total"],
            row["application_fee_amount_total"],
            row["stripe_fee_amount_total"],
        )
        for row in _recomputed(settings.TIME_ZONE)
    }
    stored = {
        (str(row.day), row.offer_id, row.currency, row.is_test, row.refunded, row.dispute_status): (
            row.payments,
            row.amount,
            row.amount_refunded,
            row.application_fee_amount,
            row.stripe_fee_amount,
        )
        for row in SalesDay.objects.exclude(
            Q(payments=0, amount=0, amount_refunded=0, application_fee_amount=0, stripe_fee_amount=0)
        )
    }
    lines = []
    for key in sorted(expected.keys() | stored.keys(), key=str):
        if expected.get(key) != stored.get(key):
            lines.append(f"{key}: payments say {expected.get(key)}, the rollup says {stored.get(key)}")
    return lines
