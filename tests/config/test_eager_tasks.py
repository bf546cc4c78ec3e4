from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import django, time
django.setup()
from unittest import mock
from django.db import transaction
from accounts.models import User
from accounts import services
from django.core.management import call_command
call_command("migrate", verbosity=0)
User.objects.create_user("someone@example.com")
with mock.patch("accounts.mail.send_message", side_effect=OSError("SMTP is down")) as send:
    started = time.monotonic()
    with transaction.atomic():
        services.magic_link_request(email="someone@example.com")
    print("CALLS", send.call_count, "SECONDS", round(time.monotonic() - started, 1))
"""


def test_a_failing_task_in_process_is_tried_once_and_does_not_break_the_request(tmp_path: Path) -> None:
    """The embedded default (no broker): the email fails, the code that queued it carries on."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL", "CACHE_URL"}}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true", "DATA_DIR": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "CALLS 1 " in result.stdout
    assert "SMTP is down" in result.stderr  # logged for the operator
