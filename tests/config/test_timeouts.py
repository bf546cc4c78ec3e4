"""The broker's visibility timeout, the task time limit and the beat intervals, chosen together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from billing.services.webhooks import RECONCILE_WINDOW
from config.celery import app
from core.tasks import ReliableTask

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json
from django.conf import settings
from config.celery import app
print(json.dumps({
    "time_limit": app.conf.task_time_limit,
    "soft_time_limit": app.conf.task_soft_time_limit,
    "visibility_timeout": app.conf.broker_transport_options["visibility_timeout"],
    "schedule": {name: entry["schedule"] for name, entry in app.conf.beat_schedule.items()},
}))
"""


def _load(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "CACHE_URL"}}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + SCRIPT],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", "DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_healthy_task_is_never_delivered_twice_by_default() -> None:
    """The longest a healthy worker holds a message: the longest retry countdown, then the run."""
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert ReliableTask.retry_backoff_max == settings.TASK_RETRY_WAIT_MAX
    assert visibility > ReliableTask.retry_backoff_max + app.conf.task_time_limit
    assert visibility > 2 * app.conf.task_time_limit
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit


def test_the_beat_runs_the_sweep_well_within_the_visibility_timeout_and_reconciles_within_its_window() -> None:
    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert schedule["billing.tasks.sweep_webhook_events"] == 120
    assert schedule["billing.tasks.sweep_webhook_events"] <= visibility / 2
    assert schedule["billing.tasks.reconcile_webhook_events"] == 900
    assert RECONCILE_WINDOW.total_seconds() >= 4 * 12 * 60 * 60  # the largest interval allowed


def test_the_timeouts_come_from_the_environment(tmp_path: Path) -> None:
    result = _load(
        tmp_path,
        CELERY_TASK_TIME_LIMIT="600",
        CELERY_VISIBILITY_TIMEOUT="1800",
        WEBHOOK_SWEEP_INTERVAL="60",
        WEBHOOK_RECONCILE_INTERVAL="1200",
        AFFILIATE_PAYOUT_INTERVAL="300",
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["time_limit"] == 600
    assert loaded["soft_time_limit"] == 540
    assert loaded["visibility_timeout"] == 1800
    assert loaded["schedule"] == {
        "billing-sweep-webhook-events": 60.0,
        "billing-reconcile-webhook-events": 1200.0,
        "affiliates-pay-commissions": 300.0,
    }


def test_short_limits_keep_a_clean_stop_before_the_kill_and_the_visibility_timeout_above_both(
    tmp_path: Path,
) -> None:
    result = _load(tmp_path, CELERY_TASK_TIME_LIMIT="60", CELERY_RETRY_WAIT_MAX="30", CELERY_VISIBILITY_TIMEOUT="121")
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert (loaded["time_limit"], loaded["soft_time_limit"], loaded["visibility_timeout"]) == (60, 45, 121)
    result = _load(tmp_path, CELERY_TASK_TIME_LIMIT="60", CELERY_RETRY_WAIT_MAX="90", CELERY_VISIBILITY_TIMEOUT="121")
    assert "CELERY_VISIBILITY_TIMEOUT must be at least 151" in result.stderr


def test_a_visibility_timeout_a_healthy_task_could_outlive_stops_the_process(tmp_path: Path) -> None:
    result = _load(tmp_path, CELERY_TASK_TIME_LIMIT="600", CELERY_VISIBILITY_TIMEOUT="900")
    assert result.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT must be at least 1201" in result.stderr


def test_a_sweep_slower_than_half_the_visibility_timeout_stops_the_process(tmp_path: Path) -> None:
    result = _load(tmp_path, WEBHOOK_SWEEP_INTERVAL="600")
    assert result.returncode != 0
    assert "WEBHOOK_SWEEP_INTERVAL must be at most 450" in result.stderr
