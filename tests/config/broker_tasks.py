"""Tasks for tests/config/test_broker_restart.py, loaded only by the worker that test starts.

They leave files behind instead of results, so the test can see what ran without depending on
the result backend, which lives on the Redis the test kills.
"""

from __future__ import annotations

import time
from pathlib import Path

from celery import shared_task


@shared_task(name="tests.broker.hold", acks_late=True)
def hold(marker: str, seconds: float) -> None:
    """Start, say so, and keep the task unacknowledged for ``seconds``."""
    Path(marker).write_text("started")
    time.sleep(seconds)


@shared_task(name="tests.broker.touch", acks_late=True)
def touch(marker: str) -> None:
    Path(marker).write_text("done")
