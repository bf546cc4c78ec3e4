"""The rollups of docs/METRICS.md are filled in from the history already recorded when the
migrations that add them run."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [
    ("accounts", "0005_outboxmessage_stripe"),
    ("billing", "0009_merge_one_click_and_test_purchases"),
    ("memberships", "0007_merge_test_entitlements_and_descriptions"),
]
AFTER = [("billing", "0011_member_joins_from_first_payments")]


def _migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_rollup_and_the_member_joins_are_built_from_the_recorded_history(settings: Any) -> None:
    settings.TIME_ZONE = "America/New_York"
    try:
        old = _migrate(BEFORE)
        user_model = old.get_model("accounts", "User")
        ana, ben, tess = (user_model.objects.create(email=f"{name}@example.com") for name in ("ana", "ben", "tess"))
        offer = old.get_model("memberships", "Offer").objects.create(
            title="Course", slug="course", pricing="one_time", price_amount=5000
        )
        entitlements = old.get_model("memberships", "Entitlement").objects
        entitlements.create(user=ana, offer=offer, source="purchase", started_at=datetime(2026, 3, 10, tzinfo=UTC))
        entitlements.create(
            user=tess, offer=offer, source="purchase", is_test=True, started_at=datetime(2026, 3, 1, tzinfo=UTC)
        )
        payments = old.get_model("billing", "Payment").objects
        common = {"kind": "one_time", "stripe_account_id": "acct_1", "amount": 5000, "currency": "usd", "offer": offer}
        # Ana's payment was recorded late: Stripe charged on March 1 at 03:00 UTC (Feb 28 in New York).
        payments.create(stripe_object_id="pi_1", user=ana, paid_at=datetime(2026, 3, 1, 3, tzinfo=UTC), **common)
        payments.create(
            stripe_object_id="pi_2",
            user=ben,
            paid_at=datetime(2026, 3, 2, 15, tzinfo=UTC),
            amount_refunded=5000,
            **{**common},
        )
        payments.create(
            stripe_object_id="pi_3", user=tess, paid_at=datetime(2026, 3, 2, 16, tzinfo=UTC), is_test=True, **common
        )

        new = _migrate(AFTER)
        rows = new.get_model("billing", "SalesDay").objects.order_by("day", "is_test", "refunded")
        assert [
            (row.day, row.is_test, row.refunded, row.payments, row.amount, row.amount_refunded) for row in rows
        ] == [
            (date(2026, 2, 28), False, False, 1, 5000, 0),
            (date(2026, 3, 2), False, True, 1, 5000, 5000),
            (date(2026, 3, 2), True, False, 1, 5000, 0),
        ]
        joins = new.get_model("memberships", "MemberJoin").objects.order_by("user_id")
        assert [(join.user_id, join.joined_at) for join in joins] == [
            (ana.pk, datetime(2026, 3, 1, 3, tzinfo=UTC)),  # the payment, earlier than the entitlement
            (ben.pk, datetime(2026, 3, 2, 15, tzinfo=UTC)),  # a payment and no entitlement left
        ]  # Tess made test purchases only
    finally:
        executor = MigrationExecutor(connection)
        _migrate(executor.loader.graph.leaf_nodes())
