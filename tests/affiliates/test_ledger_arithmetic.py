"""The ledger's arithmetic, in integers: the share of a commission a refund takes back, and the
waits between tries of a refused transfer."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from affiliates.commissions import FIRST_RETRY_WAIT, LONGEST_RETRY_WAIT, proportional_share, retry_wait


def test_the_share_rounds_half_up_to_the_minor_unit() -> None:
    assert proportional_share(part=999, of=1999, whole=300) == 150  # 149.92...
    assert proportional_share(part=1000, of=1999, whole=300) == 150  # 150.07...
    assert proportional_share(part=1, of=2, whole=3) == 2  # 1.5, half up
    assert proportional_share(part=1, of=4, whole=2) == 1  # 0.5, half up
    assert proportional_share(part=1, of=5, whole=2) == 0  # 0.4
    assert proportional_share(part=0, of=1999, whole=300) == 0
    assert proportional_share(part=1999, of=1999, whole=300) == 300


@given(
    whole=st.integers(min_value=1, max_value=10**9),
    of=st.integers(min_value=1, max_value=10**9),
    data=st.data(),
)
def test_the_share_is_the_exact_proportion_rounded_half_up_and_never_more_than_the_whole(whole, of, data) -> None:
    part = data.draw(st.integers(min_value=0, max_value=of))
    share = proportional_share(part=part, of=of, whole=whole)
    exact = Fraction(whole * part, of)
    assert exact - Fraction(1, 2) < share <= exact + Fraction(1, 2)
    assert 0 <= share <= whole
    assert proportional_share(part=of, of=of, whole=whole) == whole


@given(
    whole=st.integers(min_value=1, max_value=10**6),
    refunds=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=10),
)
def test_reversals_from_cumulative_refunds_only_grow_and_a_full_refund_takes_it_all(whole, refunds) -> None:
    """The ledger reverses from the total refunded so far, so partial refunds in any number
    never take back more than the commission, and together with the last one all of it."""
    of = sum(refunds)
    refunded, previous = 0, 0
    for refund in refunds:
        refunded += refund
        reversed_now = proportional_share(part=refunded, of=of, whole=whole)
        assert reversed_now >= previous
        previous = reversed_now
    assert previous == whole


def test_the_waits_between_refused_tries_double_up_to_a_day() -> None:
    waits = [retry_wait(attempts) for attempts in range(1, 12)]
    assert waits[:4] == [FIRST_RETRY_WAIT, 2 * FIRST_RETRY_WAIT, 4 * FIRST_RETRY_WAIT, 8 * FIRST_RETRY_WAIT]
    assert max(waits) == LONGEST_RETRY_WAIT == timedelta(days=1)
    assert waits == sorted(waits)


def test_the_beat_pays_commissions_and_the_hold_is_two_weeks_by_default() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["affiliates-pay-commissions"]
    assert entry["task"] == "affiliates.tasks.pay_commissions"
    assert settings.AFFILIATE_HOLD_DAYS == 14


@pytest.mark.django_db
def test_the_beats_task_runs_the_payout_job(monkeypatch) -> None:
    from affiliates import tasks

    seen: list[str] = []

    def pay_due() -> int:
        seen.append("ran")
        return 3

    monkeypatch.setattr(tasks, "commissions_pay_due", pay_due)
    assert tasks.pay_commissions.apply().get() == 3
    assert seen == ["ran"]


@pytest.mark.django_db
def test_the_payout_can_be_run_by_hand(monkeypatch) -> None:
    from io import StringIO

    from django.core.management import call_command

    from affiliates.management.commands import pay_commissions

    monkeypatch.setattr(pay_commissions, "commissions_pay_due", lambda: 2)
    out = StringIO()
    call_command("pay_commissions", stdout=out)
    assert out.getvalue().strip() == "Commissions: 2 transfer(s) queued."
