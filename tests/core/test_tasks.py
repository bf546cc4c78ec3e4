from __future__ import annotations

import pytest
from celery import shared_task
from django.db import transaction

from core.tasks import enqueue_on_commit

RAN: list[int] = []


@shared_task(name="tests.core.record")
def record(value: int) -> None:
    RAN.append(value)


@pytest.mark.django_db(transaction=True)
def test_a_task_named_by_a_service_runs_only_after_the_commit() -> None:
    RAN.clear()
    with transaction.atomic():
        enqueue_on_commit("tests.core.record", 7)
        assert RAN == []  # nothing runs while the transaction may still roll back
    assert RAN == [7]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_queues_nothing() -> None:
    RAN.clear()
    with transaction.atomic():
        enqueue_on_commit("tests.core.record", 8)
        transaction.set_rollback(True)
    assert RAN == []
