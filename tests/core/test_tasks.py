from __future__ import annotations

import subprocess
import sys

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


def test_a_task_is_found_by_its_name_before_anything_imported_its_module() -> None:
    # A fresh process, as a web worker is: no module has imported accounts.tasks yet.
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.test_settings'; django.setup()\n"
        "import sys; from unittest import mock; from celery import current_app\n"
        "assert 'accounts.tasks' not in sys.modules\n"
        "from core.tasks import task_send\n"
        "with mock.patch('celery.app.task.Task.delay') as delay:\n"
        "    task_send('accounts.tasks.send_magic_link_email', 1)\n"
        "assert delay.call_args.args == (1,), delay.call_args\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_robust_task_queued_while_the_broker_is_down_logs_one_line_and_no_traceback(caplog) -> None:
    from unittest import mock

    from kombu.exceptions import OperationalError

    RAN.clear()
    down = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    with mock.patch("celery.app.task.Task.delay", side_effect=down), transaction.atomic():
        enqueue_on_commit("tests.core.record", 9, robust=True)
    assert RAN == []
    assert [(r.levelname, r.exc_info) for r in caplog.records] == [("WARNING", None)]
    assert "tests.core.record" in caplog.records[0].getMessage()
    assert "Error 111" in caplog.records[0].getMessage()
